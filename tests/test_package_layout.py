"""The whole package's structure rules (one place for what the layout tests of the command
line, the layers and the split modules all ask): every module of ``advlab`` short (at most
400 lines), no private name (leading underscore) imported across modules, and no switch on the
l_p threat classes outside ``advlab/threats/`` (attacks ask the threat, not its type)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "advlab"
MODULES = sorted(ROOT.rglob("*.py"))
THREAT_CLASSES = {"Linf", "L2", "L1"}


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_the_walk_sees_every_layer():
    seen = {p.relative_to(ROOT).parts[0] for p in MODULES}
    assert {"attacks", "threats", "evaluation", "notebook", "train", "course", "zoo",
            "cli", "challenge", "models"} <= seen


@pytest.mark.parametrize("path", MODULES, ids=_ids(MODULES))
def test_modules_are_short_and_import_no_private_name(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 400, f"{path.name}: {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.name}: imports {private} from {node.module}"


def _type_switches(tree) -> list[int]:
    """Lines of ``isinstance(..., Linf/L2/L1)`` (or a tuple holding one) in a module."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            kinds = node.args[1:2]
            names = [getattr(k, "id", getattr(k, "attr", None))
                     for k in (kinds[0].elts if kinds and isinstance(kinds[0], ast.Tuple)
                               else kinds)]
            if THREAT_CLASSES & set(names):
                lines.append(node.lineno)
    return lines


OUTSIDE = [p for p in MODULES if p.relative_to(ROOT).parts[0] != "threats"]


@pytest.mark.parametrize("path", OUTSIDE, ids=_ids(OUTSIDE))
def test_no_switch_on_the_threat_type_outside_threats(path):
    assert _type_switches(ast.parse(path.read_text())) == [], path.name


def test_the_switch_finder_finds_one():
    code = "if isinstance(t, (L1, Affine)):\n    pass\nisinstance(t, advlab.Linf)\n"
    assert _type_switches(ast.parse(code)) == [1, 3]
