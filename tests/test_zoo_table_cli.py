"""``advlab zoo table --stored --splice FILE``: the README's copy of the table is the code's, and
rows measured with an older stack than today's are labelled as upper bounds."""

import subprocess
import sys

from advlab.zoo.measure import stack_description
from advlab.zoo.table import format_table, older_stack


def _zoo_table(*args):
    return subprocess.run([sys.executable, "-m", "advlab", "zoo", "table", "--stored", *args],
                          capture_output=True, text=True, timeout=300)


def test_splice_replaces_only_the_text_between_the_markers(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- zoo-table -->\nold table\n<!-- /zoo-table -->\noutro\n")
    res = _zoo_table("--splice", str(doc))
    assert res.returncode == 0, res.stderr
    text = doc.read_text()
    assert text.startswith("intro\n<!-- zoo-table -->\nProduced by `advlab zoo table --stored`.")
    assert text.endswith("<!-- /zoo-table -->\noutro\n") and "old table" not in text
    assert "| mnist-linf |" in text and "Evaluation time per model:" in text
    times = next(line for line in text.splitlines() if line.startswith("Evaluation time"))
    from advlab.zoo.table import stored_rows

    for row in stored_rows():  # each model's time quoted once, grouped by what it covers
        assert times.count(f" {row['model']} ") == 1, (row["model"], times)


def test_a_file_without_markers_is_refused_before_any_work_and_kept(tmp_path):
    doc = tmp_path / "notes.md"
    doc.write_text("no markers here\n")
    res = _zoo_table("--splice", str(doc))
    assert res.returncode == 2 and "<!-- zoo-table -->" in res.stderr
    assert doc.read_text() == "no markers here\n"


def test_rows_of_an_older_stack_are_labelled():
    today = stack_description("strong")
    rows = [{"model": m, "n": 1000, "strength": "strong", "attacks": a, "clean": 0.9,
             "linf": 0.5, "l1": 0.5, "l2": 0.5, "rt": 0.0, "union_lp": 0.4, "union_all": 0.0}
            for m, a in (("new", today), ("old", today.replace("x 100 steps", "x 50 steps")))]
    assert older_stack(rows) == ["old"]
    assert "**Measured with older attacks** for old:" in format_table(rows, published=False)
    assert "older attacks" not in format_table(rows[:1], published=False)
