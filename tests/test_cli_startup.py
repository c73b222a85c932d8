"""The command line starts at once; ``import advlab`` is light; what the README and [dev] promise.

``--help`` answers before torch is imported (checked in a fresh process, so it holds on any
machine however busy); ``benchmarks/startup.py`` measures the seconds.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINE = [["--help"], ["eval", "--help"], ["train", "--help"], ["zoo", "--help"],
        ["zoo", "list", "--help"], ["zoo", "table", "--help"], ["course", "--help"],
        ["grade", "--help"], ["challenge", "--help"], []]


def _fresh(code: str, *args: str) -> str:
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


@pytest.mark.parametrize("argv", MINE, ids=[" ".join(a) or "(none)" for a in MINE])
def test_help_answers_without_importing_torch(argv):
    out = _fresh("import sys\nfrom advlab.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
                 "except SystemExit as e:\n    rc = e.code\n"
                 "print('RC', rc, 'torch' in sys.modules)", *argv)
    assert out.strip().splitlines()[-1] in ("RC 0 False", "RC 2 False"), out
    assert "usage: advlab" in out


def test_help_lists_every_command_and_the_debug_switch():
    out = _fresh("from advlab.cli import main\nmain(['--help'])")
    for cmd in ("eval", "train", "zoo", "course", "grade"):
        assert re.search(rf"^\s+{cmd}\s+\S", out, flags=re.M), cmd
    assert "--debug" in out and "ADVLAB_DEBUG=1" in out


def test_bare_import_advlab_is_light_and_reaches_every_submodule():
    out = _fresh("import sys, advlab\nprint('torch' in sys.modules)\n"
                 "m = advlab.zoo.load('mnist-linf')\nx, y = advlab.data.mnist_tensors(4)\n"
                 "print(type(m).__name__, tuple(m(x).shape), advlab.Linf(0.3).eps,"
                 " callable(advlab.diagnose), advlab.train.RECIPES['mnist-linf'].name)")
    assert out.splitlines() == ["False", "CompactCNN (4, 10) 0.3 True mnist-linf"]


def test_diagnose_stays_the_function_after_its_module_is_imported():
    out = _fresh("import sys, advlab\nfrom advlab.diagnose import diagnose as f\n"
                 "from advlab import diagnose\n"
                 "print(callable(advlab.diagnose), diagnose is f is sys.modules["
                 "'advlab.diagnose'].diagnose)")
    assert out.split() == ["True", "True"]


# ---------------------------------------------------------------------------------- README


def _section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _snippet() -> str:
    return _section("The library in ten lines").split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippet_attacks_a_zoo_model_and_uses_what_it_imports():
    code = _snippet()
    tree = ast.parse(code)
    imported = {a.asname or a.name for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) for a in node.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert imported and imported <= used, imported - used
    assert "advlab.zoo.load(" in code and len(code.strip().splitlines()) <= 10


def test_readme_snippet_prints_what_the_readme_says(capsys):
    """Run the snippet on 10 images (the README's uses 100): every row label it prints and
    the shape of its first line are what the README's sentence under it says."""
    code = _snippet()
    said = _section("The library in ten lines").split("```", 2)[2].split("\n\n- ", 1)[0]
    small = re.sub(r"mnist_tensors\((\d+)\)", "mnist_tensors(10)", code)
    assert small != code and "mnist_tensors(100)" in code
    exec(compile(small, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"PGD-40 at l_inf 0\.3 fools it on \d+% of the images", printed[0])
    assert "PGD-40 fools at l_inf 0.3" in said
    assert printed[1].startswith("threat") and printed[1].endswith("(n = 10)")
    assert "(n = 100)" in said
    labels = [line.split()[0] for line in printed[2:]]
    assert labels == ["clean", "linf", "l1", "l2", "rt", "union"]
    for label in labels:
        assert f"`{label}`" in said, label


def test_readme_setup_puts_the_cpu_wheels_tip_before_the_commands():
    setup = _section("Set-up")
    tip = setup.index("download.pytorch.org/whl/cpu")
    block = setup.index("<!-- ci: setup -->")
    assert tip < block
    assert "pip install -e . && advlab eval" in setup
    assert "benchmarks/startup.py" in setup and (REPO / "benchmarks" / "startup.py").exists()


def test_dev_extra_installs_what_the_tests_import():
    tomllib = pytest.importorskip("tomllib")
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["dev"]
    names = {re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0].lower() for d in dev}
    assert {"scipy", "pytest", "hypothesis", "nbval", "playwright"} <= names
    assert 'importorskip("scipy' in (REPO / "tests" / "test_projections.py").read_text()
