"""Generate student notebooks (``exercises/``) from the solution notebooks (``solutions/``).

Authors write only ``solutions/*.ipynb`` and mark answers the way nbgrader does:

- in a code cell, lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the indentation of the marker;
- in a markdown cell, the same region becomes ``YOUR ANSWER HERE``;
- lines between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` are removed.

Outputs and execution counts are cleared and cell metadata is reduced to what nbgrader and
Jupyter need, so the release is a pure function of the solutions: ``check_release`` regenerates
it in memory and reports every exercise notebook that differs from the committed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = "YOUR ANSWER HERE"
KEEP_CELL_METADATA = ("nbgrader", "tags", "editable", "deletable")
KEEP_NB_METADATA = ("kernelspec", "language_info")


class MarkerError(ValueError):
    """A solution notebook whose markers are unbalanced or nested."""


@dataclass
class Difference:
    """An exercise notebook that is missing, stale or has no solution any more."""

    name: str
    problem: str


def _marker(line: str) -> str | None:
    stripped = line.strip()
    for m in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        if stripped == m or stripped.startswith(m + " "):
            return m
    return None


def strip_source(source: str, cell_type: str, where: str = "a cell") -> str:
    """The student version of one cell's source (see the module docstring for the rules)."""
    out: list[str] = []
    region: str | None = None
    for lineno, line in enumerate(source.split("\n"), start=1):
        m = _marker(line)
        if m in (BEGIN_SOLUTION, BEGIN_HIDDEN):
            if region is not None:
                raise MarkerError(f"{where}, line {lineno}: {m!r} inside an open {region!r}")
            region = m
            if m == BEGIN_SOLUTION:
                out += _stub(line, cell_type)
        elif m in (END_SOLUTION, END_HIDDEN):
            expected = BEGIN_SOLUTION if m == END_SOLUTION else BEGIN_HIDDEN
            if region != expected:
                raise MarkerError(f"{where}, line {lineno}: {m!r} without {expected!r}")
            region = None
        elif region is None:
            out.append(line)
    if region is not None:
        raise MarkerError(f"{where}: {region!r} is never closed")
    return "\n".join(out).rstrip("\n")


def _stub(marker_line: str, cell_type: str) -> list[str]:
    indent = marker_line[: len(marker_line) - len(marker_line.lstrip())]
    if cell_type == "markdown":
        return [indent + MARKDOWN_STUB]
    return [indent + s for s in CODE_STUB]


def release_notebook(nb: dict, name: str = "notebook") -> dict:
    """The exercise version of a solution notebook (a JSON dict in nbformat 4)."""
    cells = []
    for i, cell in enumerate(nb.get("cells", [])):
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        kind = cell.get("cell_type", "code")
        new_src = strip_source(src, kind, f"{name}, cell {i + 1}")
        if kind == "code" and not new_src.strip() and src.strip():
            continue  # a cell that held only hidden tests disappears
        cells.append(_clean_cell(cell, new_src))
    meta = {k: nb["metadata"][k] for k in KEEP_NB_METADATA if k in nb.get("metadata", {})}
    return {
        "cells": cells,
        "metadata": meta,
        "nbformat": 4,
        "nbformat_minor": max(5, nb.get("nbformat_minor", 5)),
    }


def _clean_cell(cell: dict, source: str) -> dict:
    meta = {k: cell["metadata"][k] for k in KEEP_CELL_METADATA if k in cell.get("metadata", {})}
    lines = source.splitlines(keepends=True)  # Jupyter's own layout: one string per line
    out = {"cell_type": cell["cell_type"], "id": cell.get("id"), "metadata": meta, "source": lines}
    if out["id"] is None:
        del out["id"]
    if cell["cell_type"] == "code":
        out["execution_count"] = None
        out["outputs"] = []
    return out


def dumps(nb: dict) -> str:
    """Canonical text of a notebook: sorted keys, one-space indent, trailing newline."""
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False)
    return text + "\n"


def render_release(solutions: Path) -> dict[str, str]:
    """Exercise notebook texts by file name, for every ``*.ipynb`` in ``solutions``."""
    solutions = Path(solutions)
    if not solutions.is_dir():
        raise FileNotFoundError(
            f"solutions folder {str(solutions)!r} not found: run from the repository root or "
            f"pass --solutions PATH"
        )
    rendered = {}
    for path in sorted(solutions.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise MarkerError(f"{path.name} is not valid JSON: {exc}") from None
        rendered[path.name] = dumps(release_notebook(nb, path.name))
    if not rendered:
        raise FileNotFoundError(f"no *.ipynb in {str(solutions)!r}")
    return rendered


def write_release(solutions: Path, exercises: Path) -> list[str]:
    """Write ``exercises/`` from ``solutions/``; remove stale exercises; return written names."""
    rendered = render_release(solutions)
    exercises = Path(exercises)
    exercises.mkdir(parents=True, exist_ok=True)
    for stale in exercises.glob("*.ipynb"):
        if stale.name not in rendered:
            stale.unlink()
    for name, text in rendered.items():
        (exercises / name).write_text(text, encoding="utf-8")
    return sorted(rendered)


def check_release(solutions: Path, exercises: Path) -> list[Difference]:
    """Every way in which ``exercises/`` is out of date with ``solutions/`` (empty if none).

    Notebooks are compared as JSON, so only the formatting of the file may differ.
    """
    rendered = render_release(solutions)
    exercises = Path(exercises)
    diffs = []
    for name, text in rendered.items():
        path = exercises / name
        if not path.is_file():
            diffs.append(Difference(name, "missing from exercises/"))
            continue
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            diffs.append(Difference(name, "not valid JSON"))
            continue
        if current != json.loads(text):
            diffs.append(Difference(name, f"differs from the release of solutions/{name}"))
    for path in sorted(exercises.glob("*.ipynb")) if exercises.is_dir() else []:
        if path.name not in rendered:
            diffs.append(Difference(path.name, "has no solutions/ notebook (stale)"))
    return diffs
