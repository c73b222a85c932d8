"""The repository is ruff clean: the package, the tests, the benchmarks and the notebooks.

The rules are pyproject.toml's ``[tool.ruff]``; ``ruff`` is a dev dependency.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    return [exe]


def test_ruff_check_passes_on_the_whole_repository():
    out = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"ruff check . found problems:\n{out.stdout}{out.stderr}"


def test_ruff_reads_the_notebooks():
    """ruff's file list has the notebooks, so the check above covers them (older ruff did not
    read .ipynb files)."""
    listed = subprocess.run([*_ruff(), "check", "--no-cache", "--show-files", "."], cwd=ROOT,
                            capture_output=True, text=True).stdout
    for nb in ("notebooks/03_multiple_perturbations.ipynb", "solutions/ex1_fgsm_pgd.ipynb",
               "exercises/ex1_fgsm_pgd.ipynb"):
        assert str(ROOT / nb) in listed, f"ruff does not check {nb}"
