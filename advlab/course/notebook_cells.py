"""The code a submitted notebook holds: its code cells' sources, minus the ungraded ones."""

from __future__ import annotations

import warnings

__all__ = ["SKIP_TAG", "read_notebook_cells"]

SKIP_TAG = "skip-grading"


def read_notebook_cells(raw: bytes) -> list[str]:
    """The code cells' sources, without cells tagged ``skip-grading``.

    Raises ValueError with a readable reason for a file that is not a notebook.
    """
    import nbformat

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text ({exc})") from None
    try:
        with warnings.catch_warnings():  # e.g. cells without ids: harmless for grading
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as exc:
        raise ValueError(f"the file is not a valid notebook: {str(exc)[:300]}") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("the notebook has no list of cells")
    sources = []
    for cell in cells:
        tags = cell.get("metadata", {}).get("tags", []) if isinstance(cell, dict) else []
        if isinstance(tags, list) and SKIP_TAG in tags:
            continue  # an ungraded, slow exploration cell (e.g. training three models)
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            sources.append("".join(src) if isinstance(src, list) else str(src))
    return sources
