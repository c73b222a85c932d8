"""``python -m advlab.zoo.remeasure``: the zoo measured again in slices that survive a stop."""

from __future__ import annotations

import json

from advlab.zoo import outcomes, remeasure
from advlab.zoo.measure import measure, stack_description


def _run(tmp_path, *extra):
    return remeasure.main(["mnist-linf", "--n", "12", "--slices", "3", "--strength", "fast",
                           "--work", str(tmp_path / "work"), "--results",
                           str(tmp_path / "results"), "--threads", "1", *extra])


def test_two_workers_fill_the_slices_and_the_last_one_merges(tmp_path, capsys):
    # a result of today's stack is never stale; one without outcomes (the old ones) is
    results = tmp_path / "results"
    results.mkdir()
    (results / "mnist-linf.json").write_text(json.dumps({"clean": 1.0, "attacks": "old"}))
    assert remeasure.stale("mnist-linf", "fast", results)
    assert _run(tmp_path, "--worker", "1/2") == 0  # slice 1 only
    work = tmp_path / "work"
    assert sorted(p.name for p in work.iterdir()) == ["mnist-linf.shard-1-of-3.json"]
    assert json.loads((results / "mnist-linf.json").read_text())["attacks"] == "old"
    middle = outcomes.unpack(json.loads((work / "mnist-linf.shard-1-of-3.json").read_text())
                             ["outcomes"])
    _run(tmp_path, "--status")
    assert "1 of 3 slices" in capsys.readouterr().out
    assert _run(tmp_path, "--worker", "0/2") == 0  # slices 0 and 2, then the merge
    assert not list(work.iterdir())
    res = json.loads((results / "mnist-linf.json").read_text())
    assert res["attacks"] == stack_description("fast") and res["shards"] == 3
    assert not remeasure.stale("mnist-linf", "fast", results)
    # the merged record holds each slice's images in place, and its numbers are theirs
    merged = outcomes.unpack(res["outcomes"])
    assert all(merged[k].numel() == 12 and (merged[k][4:8] == v).all() for k, v in middle.items())
    derived = outcomes.accuracies(merged)
    for k in ("clean", "linf", "l1", "l2", "union_lp"):
        assert abs(res[k] - derived[k]) < 1e-6, k
    assert measure("mnist-linf", 12, "fast", (1, 3))["outcomes"] == \
        json.loads(json.dumps(outcomes.pack(middle)))  # a slice is measured reproducibly
    assert "merged 3 slices" in capsys.readouterr().out
    assert _run(tmp_path) == 0  # up to date: nothing measured
    assert "slice" not in capsys.readouterr().out
