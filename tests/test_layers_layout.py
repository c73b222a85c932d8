"""The evaluation layer, the models and the notebook aids: each a package (its modules' size and
imports: tests/test_package_layout.py), and every old flat path (``advlab.evaluate``,
``advlab.presets``, ...) is the very module of its new home, so monkeypatching, private names
and ``python -m advlab.affine_eval`` work as before."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "advlab"
OLD = {"advlab.evaluate": "advlab.evaluation.union",
       "advlab.presets": "advlab.evaluation.presets",
       "advlab.diagnose": "advlab.evaluation.diagnostics",
       "advlab.affine_eval": "advlab.evaluation.affine",
       "advlab.affine_stored": "advlab.evaluation.affine_stored",
       "advlab.masking": "advlab.models.masking",
       "advlab.viz": "advlab.notebook.viz",
       "advlab.widgets": "advlab.notebook.widgets",
       "advlab.course_figures": "advlab.notebook.figures",
       "advlab.tradeoff": "advlab.notebook.tradeoff"}


@pytest.mark.parametrize("old", sorted(OLD))
def test_an_old_path_is_the_module_of_its_new_home(old):
    assert importlib.import_module(old) is importlib.import_module(OLD[old])
    assert sys.modules[old] is sys.modules[OLD[old]]


def test_the_package_still_hands_out_its_names():
    import advlab
    import advlab.diagnose  # noqa: F401  (the module; advlab.diagnose stays the function)
    from advlab.evaluation import diagnostics, union

    assert advlab.diagnose is diagnostics.diagnose
    assert advlab.evaluate_union is union.evaluate_union
    assert advlab.presets is importlib.import_module("advlab.evaluation.presets")
    assert [name for name, _, _ in diagnostics.MODEL_CHECKS + diagnostics.ATTACK_CHECKS] == list(
        diagnostics.CHECKS)


def _imported(node) -> list[str]:
    """What an import in advlab/evaluation/ names, as absolute module paths (and module.name)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = ["advlab", "evaluation"][:3 - node.level] if node.level else []
    module = ".".join(base + ([node.module] if node.module else []))
    return [module] + [f"{module}.{a.name}" for a in node.names]


def test_the_evaluation_layer_imports_no_zoo_and_no_notebook_aid():
    for path in sorted((ROOT / "evaluation").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                bad = [m for m in _imported(node)
                       if m.startswith(("advlab.zoo", "advlab.notebook"))]
                assert not bad, f"{path.name} imports {bad}"


def test_python_m_the_old_affine_command_still_answers():
    res = subprocess.run([sys.executable, "-m", "advlab.affine_eval", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "--strength" in res.stdout and "--out" in res.stdout
