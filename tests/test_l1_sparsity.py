"""benchmarks/l1_sparsity.py: both l1-APGD sparsities on chosen images, for real (mnist-standard,
which is not l_1 robust, plus image 11, which only some seeds break)."""

import json
import shlex

import pytest
from benchmark_module import load

ls = load("l1_sparsity")


def test_rows_summary_and_the_recorded_command_agree(mnist_test, tmp_path):
    out = tmp_path / "s.json"
    assert ls.main(["--cases", "mnist-standard:0,2,11", "--seeds", "1", "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    rows = saved["rows"]
    assert [(r["sparsity"], r["seed"]) for r in rows] == [("mass", 0), ("l0", 0)]
    assert all(r["images"] == [0, 2, 11] for r in rows)
    for r in rows:  # images 0 and 2 fall to any l_1 attack on a model without l_1 training
        assert r["broken"][:2] == [True, True]
    s = saved["summary"]
    assert s["images"] == 3 and s["mass"] == sum(rows[0]["broken"])
    assert s["l0"] == sum(rows[1]["broken"])
    assert s["both"] == sum(a or b for a, b in zip(rows[0]["broken"], rows[1]["broken"],
                                                    strict=True))
    # the recorded command runs the same cases again, with the same outcome (seeded)
    again = tmp_path / "again.json"
    argv = shlex.split(saved["command"])[2:]
    argv[argv.index("--out") + 1] = str(again)
    assert ls.main(argv) == 0
    assert json.loads(again.read_text())["rows"] == rows


def test_cases_are_read_from_the_autoattack_results_or_refused(tmp_path):
    src = tmp_path / "aa.json"
    src.write_text(json.dumps({"rows": [
        {"model": "mnist-max", "threat": "l1", "autoattack_breaks_stored_leaves": [3, 5]},
        {"model": "mnist-avg", "threat": "l1", "autoattack_breaks_stored_leaves": []},
        {"model": "mnist-l2", "threat": "l2", "autoattack_breaks_stored_leaves": [7]}]}))
    assert ls.cases_from(src) == {"mnist-max": [3, 5]}
    assert ls.parse_cases("mnist-max:69,128;mnist-eat:134") == {"mnist-max": [69, 128],
                                                                 "mnist-eat": [134]}
    with pytest.raises(SystemExit, match="has no images"):
        ls.parse_cases("mnist-max")
    src.write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="no l_1 images"):
        ls.main(["--from", str(src)])
