"""Helpers that build faulty submissions from the solution and exercise notebooks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
EXERCISES = REPO / "exercises"


def load(path: Path) -> dict:
    """A notebook as a JSON dict."""
    return json.loads(Path(path).read_text())


def source(cell: dict) -> str:
    """A cell's source as one string."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def grade_id(cell: dict) -> str:
    """The nbgrader grade_id of a cell ('' if none)."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def index_of(nb: dict, gid: str) -> int:
    """Index of the cell with nbgrader grade_id ``gid``."""
    for i, cell in enumerate(nb["cells"]):
        if grade_id(cell) == gid:
            return i
    raise KeyError(gid)


def code_cell(src: str) -> dict:
    """A new code cell."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": src,
    }


def with_cell(nb: dict, after_gid: str | int, src: str) -> dict:
    """A copy of ``nb`` with a code cell inserted after a cell (by grade_id or index)."""
    nb = copy.deepcopy(nb)
    i = after_gid if isinstance(after_gid, int) else index_of(nb, after_gid)
    nb["cells"].insert(i + 1, code_cell(src))
    return nb


def with_source(nb: dict, gid: str, src: str) -> dict:
    """A copy of ``nb`` with the source of cell ``gid`` replaced."""
    nb = copy.deepcopy(nb)
    nb["cells"][index_of(nb, gid)]["source"] = src
    return nb


def with_solution_from(exercise_nb: dict, solution_nb: dict, gid: str) -> dict:
    """The exercise notebook with one answer cell taken from the solution notebook."""
    nb = copy.deepcopy(exercise_nb)
    nb["cells"][index_of(nb, gid)] = copy.deepcopy(solution_nb["cells"][index_of(solution_nb, gid)])
    return nb


def without_check_cells(nb: dict) -> dict:
    """A copy of ``nb`` with every graded test cell removed."""
    nb = copy.deepcopy(nb)
    nb["cells"] = [
        c for c in nb["cells"] if not c.get("metadata", {}).get("nbgrader", {}).get("grade")
    ]
    return nb


def write(nb: dict, path: Path) -> Path:
    """Write ``nb`` as JSON to ``path``."""
    path.write_text(json.dumps(nb, indent=1))
    return path
