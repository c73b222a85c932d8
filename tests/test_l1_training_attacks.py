"""benchmarks/l1_training_attacks.py: candidate l_1 training attacks against the stored trusted
l_1 outcomes, for real (mnist-standard, which has no l_1 training, on a few test images)."""

import json
import shlex

import pytest
from benchmark_module import load

lt = load("l1_training_attacks")

ONLY = "pgd5,apgd30-531-l0"


def test_rows_follow_the_stored_outcomes_and_the_command_runs_again(mnist_test, tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.md"
    assert lt.main(["--model", "mnist-standard", "--n", "40", "--only", ONLY, "--out", str(out),
                    "--table", str(table)]) == 0
    saved = json.loads(out.read_text())
    trusted = lt.trusted_l1("mnist-standard", 40)
    assert saved["trusted"] == round(100 * trusted.float().mean().item(), 1)
    pgd, wide = saved["rows"]
    assert (pgd["cost"], wide["cost"]) == (5, 30)
    assert wide["spec"] == {"eps_scales": [5.0, 3.0, 1.0], "sparsity": "l0", "kind": "apgd",
                            "steps": 30}
    for r in saved["rows"]:
        assert r["beats_trusted"] == []  # else the stored trusted row overclaims
        assert 0 <= r["misses"] <= round(r["robust"] * 40 / 100)
    assert saved["rows"][1]["robust"] < 60  # a standard model is not l_1 robust at eps 10
    text = table.read_text()
    assert text.count("\n| ") == 3 and "l0 sparsity" in text and text.endswith("leaves: none.\n")
    again = tmp_path / "again.json"
    argv = shlex.split(saved["command"])[2:]
    argv[argv.index("--out") + 1] = str(again)
    argv[argv.index("--table") + 1] = str(tmp_path / "again.md")
    assert lt.main(argv) == 0
    assert [r["robust"] for r in json.loads(again.read_text())["rows"]] == [
        r["robust"] for r in saved["rows"]]


def test_the_table_goes_between_the_markers_and_nowhere_else(mnist_test, tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- l1-training-attacks -->\nold\n<!-- /l1-training-attacks -->\n"
                   "after\n")
    assert lt.main(["--model", "mnist-standard", "--n", "10", "--only", "apgd10",
                    "--splice", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| l1-APGD-10 | 10 |" in text and f"--splice {doc}" in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    with pytest.raises(SystemExit):
        lt.main(["--only", "apgd10", "--splice", str(bare)])
    assert bare.read_text() == "no markers\n"  # refused before any work, file untouched


def test_bad_input_says_what_to_do():
    with pytest.raises(SystemExit, match="unknown candidates"):
        lt.main(["--only", "apgd1000"])
    with pytest.raises(SystemExit, match="pass --n 1000 or less"):
        lt.trusted_l1("mnist-standard", 5000)
    with pytest.raises(SystemExit, match="neither a file nor a shipped zoo model"):
        lt.trusted_l1("mnist-nonexistent", 10)
