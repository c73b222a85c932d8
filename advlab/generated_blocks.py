"""Generated blocks in hand-written markdown: a table a command writes, between two markers.

A block named ``zoo-table`` is the text between ``<!-- zoo-table -->`` and ``<!-- /zoo-table -->``
(each on its own line). The command that owns the block replaces what is between them and leaves
the prose around it alone, so the README quotes the numbers the code produced, and a check can
tell a stale block (``spliced(text, name, body) != text``).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["markers", "find", "spliced", "splice"]


def markers(name: str) -> tuple[str, str]:
    """The opening and closing marker of the block ``name``."""
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def find(text: str, name: str, where: str = "the text") -> tuple[int, int]:
    """Where the block's body starts (after the opening marker's line) and ends (at the closing
    marker). Raises ``ValueError`` that says which markers to add when ``text`` lacks them."""
    begin, end = markers(name)
    a, b = text.find(begin + "\n"), text.find(end)
    if a < 0 or b < a:
        raise ValueError(f"{where} has no {begin} ... {end} markers (each on its own line) to put "
                         f"the {name} between; add them where it goes")
    return a + len(begin) + 1, b


def spliced(text: str, name: str, body: str, where: str = "the text") -> str:
    """``text`` with the block ``name`` holding ``body`` (one newline at its end)."""
    a, b = find(text, name, where)
    return text[:a] + body.rstrip("\n") + "\n" + text[b:]


def splice(path: str | Path, name: str, body: str) -> bool:
    """Write ``body`` into the block ``name`` of the file ``path``; whether the file changed."""
    path = Path(path)
    text = path.read_text()
    new = spliced(text, name, body, where=str(path))
    if new != text:
        path.write_text(new)
    return new != text
