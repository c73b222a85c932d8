"""The course notebooks as files: structure, stored outputs, badges and the Colab install cell.

Running them is nbval's job (``pytest --nbval-lax notebooks/``) and the browser test's
(``tests/browser``); these checks are fast and need no kernel.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NB_DIR = REPO / "notebooks"
COURSE = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
MINE = ["00_welcome.ipynb", "01_adversarial_examples.ipynb", "04_tradeoff.ipynb"]
# the notebooks whose charts must show the zoo's stored trusted rows (issue #18)
CHARTS = ["02_adversarial_training.ipynb", "07_conclusions.ipynb"]


def _badges():
    spec = importlib.util.spec_from_file_location("_badges", NB_DIR / "_badges.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _src(cell) -> str:
    s = cell.get("source", "")
    return "".join(s) if isinstance(s, list) else s


def test_the_course_notebooks_exist():
    names = [p.name for p in COURSE]
    for name in MINE:
        assert name in names


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_valid_and_stored_without_heavy_outputs(path):
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.read(path, as_version=4))
    for cell in _load(path)["cells"]:
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        if "NBVAL_CHECK_OUTPUT" in _src(cell):
            # a checked cell keeps its (small, textual) expected output
            assert outputs, f"{path.name}: a checked cell has no stored output"
            for out in outputs:
                assert out["output_type"] == "stream", out["output_type"]
                assert len("".join(out["text"])) < 2000
        else:
            assert outputs == [], f"{path.name}: stored outputs in {_src(cell)[:60]!r}"
            assert cell.get("execution_count") is None


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_structure(path):
    cells = _load(path)["cells"]
    text = "\n".join(_src(c) for c in cells)
    assert "badges" in cells[0]["metadata"].get("tags", [])
    assert "colab-install" in cells[1]["metadata"].get("tags", [])
    assert cells[2]["cell_type"] == "markdown" and "Learning goals" in _src(cells[2])
    assert "## Summary" in text
    code = "\n".join(_src(c) for c in cells if c["cell_type"] == "code")
    assert 'os.environ.get("ADVLAB_FAST")' in code and "DATASET = " in code
    assert "pick_device()" in code
    assert "assert " in code  # results are checked, so a broken library fails the notebook


def test_badges_in_sync_and_point_at_each_notebook():
    badges = _badges()
    assert badges.main(["--check"]) == 0
    for path in COURSE:
        first = _src(_load(path)["cells"][0])
        rel = f"notebooks/{path.name}"
        assert badges.colab_url(rel) in first
        assert f"github/{badges.SLUG}/blob/{badges.REF}/{rel}" in first
        assert "mybinder.org/v2/gh/" + badges.SLUG in first


def test_check_mode_catches_a_stale_notebook(tmp_path, monkeypatch):
    badges = _badges()
    nb = _load(NB_DIR / MINE[0])
    nb["cells"][0]["source"] = "[![Open In Colab](old)](https://example.org/old)"
    stale = tmp_path / "notebooks" / MINE[0]
    stale.parent.mkdir()
    stale.write_text(json.dumps(nb))
    monkeypatch.setattr(badges, "REPO", tmp_path)
    assert badges.sync(stale, write=False) is True
    assert badges.sync(stale, write=True) is True
    assert badges.sync(stale, write=False) is False


def _run_install_cell(monkeypatch, in_colab: bool) -> list:
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: calls.append((a, kw)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    for path in COURSE:
        exec(_src(_load(path)["cells"][1]), {})
    return calls


def test_install_cell_does_nothing_outside_colab(monkeypatch):
    assert _run_install_cell(monkeypatch, in_colab=False) == []


def test_install_cell_installs_the_pinned_ref_in_colab(monkeypatch):
    badges = _badges()
    calls = _run_install_cell(monkeypatch, in_colab=True)
    assert len(calls) == len(COURSE)
    args, kwargs = calls[0]
    cmd = args[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"advlab @ git+https://github.com/{badges.SLUG}@{badges.REF}"
    assert kwargs.get("check") is True


def _markdown(path: Path) -> str:
    return "\n".join(_src(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown")


def _number(path: Path) -> int:
    return int(path.name[:2])


@pytest.mark.parametrize("path", COURSE[:-1], ids=lambda p: p.name)
def test_next_link_points_to_the_next_notebook(path):
    """Every notebook but the last ends with "Next: **notebook N**" for the one after it."""
    lines = [line for line in _markdown(path).splitlines() if line.startswith("Next:")]
    assert len(lines) == 1, f"{path.name}: expected one 'Next:' line, found {lines}"
    named = [int(k) for k in re.findall(r"notebook (\d+)", lines[0])]
    assert named == [_number(path) + 1], f"{path.name}: {lines[0]!r}"


def test_the_last_notebook_has_no_next_link():
    assert "Next:" not in _markdown(COURSE[-1])


def test_welcome_map_lists_every_notebook():
    """00's course map has a row "| k. Title |" for each notebook, titled as the notebook is."""
    text = _markdown(NB_DIR / "00_welcome.ipynb")
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d)\. ([^|]+)\|", text,
                                                            re.MULTILINE)}
    assert sorted(rows) == [_number(p) for p in COURSE] and len(COURSE) == 8
    for path in COURSE:
        title = next(line for line in _markdown(path).splitlines() if line.startswith("# "))
        first_word = title.split(". ", 1)[1].split()[0].rstrip(":")
        assert first_word in rows[_number(path)], (path.name, rows[_number(path)])
    assert "planned" not in text.lower()


def _chart_cells(path: Path) -> list[str]:
    return [_src(c) for c in _load(path)["cells"]
            if "trusted-chart" in c["metadata"].get("tags", [])]


@pytest.mark.parametrize("name", CHARTS)
def test_charts_beside_published_numbers_are_tagged(name):
    """A chart beside published numbers is a tagged trusted chart, or says its numbers are live
    upper bounds; the zoo's stored rows are drawn only by tagged cells."""
    cells = [c for c in _load(NB_DIR / name)["cells"] if c["cell_type"] == "code"]
    assert _chart_cells(NB_DIR / name)
    for cell in cells:
        src, tags = _src(cell), cell["metadata"].get("tags", [])
        if "plot_threat_panels(" in src or "plot_accuracy_bars(" in src:
            assert "trusted-chart" in tags or "upper bound" in src, src[:80]
        if "zoo_vs_published(" in src:
            assert "trusted-chart" in tags


def _bars(fig) -> dict[tuple[str, str], float]:
    out = {}
    for ax in fig.axes:
        for patch in ax.patches:
            gid = patch.get_gid() or ""
            if gid.startswith("ours:"):
                _, model, column = gid.split(":")
                out[(model, column)] = patch.get_width()
    return out


@pytest.mark.parametrize("path", [p for p in COURSE if _chart_cells(p)], ids=lambda p: p.name)
def test_trusted_charts_show_the_stored_results(path):
    """Run each tagged chart cell for real; every "ours" bar equals the stored trusted row."""
    pytest.importorskip("matplotlib")
    from advlab.zoo.table import best_model, stored_result

    for src in _chart_cells(path):
        code = "\n".join(line for line in src.splitlines() if not line.startswith("%"))
        ns: dict = {}
        exec(compile(code, f"{path.name}:trusted-chart", "exec"), ns)
        bars = _bars(ns["fig"])
        assert bars, f"{path.name}: the chart has no 'ours' bars"
        for (model, column), width in bars.items():
            row = stored_result(model)
            assert row["strength"] == "strong" and row["n"] == 1000
            assert width == pytest.approx(100 * row[column], abs=1e-6), (model, column)
        if path.name == "07_conclusions.ipynb":
            assert best_model("union_lp") in {m for m, _ in bars}
