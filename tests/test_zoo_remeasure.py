"""``python -m advlab.zoo.remeasure``: the zoo measured again in slices that survive a stop."""

from __future__ import annotations

import json

import pytest

from advlab.zoo import outcomes, remeasure
from advlab.zoo.measure import measure, stack_description


def _run(tmp_path, *extra):
    return remeasure.main(["mnist-linf", "--n", "12", "--slices", "3", "--strength", "fast",
                           "--work", str(tmp_path / "work"), "--results",
                           str(tmp_path / "results"), "--threads", "1", *extra])


def test_workers_fill_the_slices_and_the_last_one_merges(tmp_path, capsys):
    # a result without outcomes or of other attacks (the old ones) is stale
    results, work = tmp_path / "results", tmp_path / "work"
    results.mkdir()
    (results / "mnist-linf.json").write_text(json.dumps({"clean": 1.0, "attacks": "old"}))
    assert remeasure.stale("mnist-linf", "fast", results)
    assert _run(tmp_path, "--worker", "1/3") == 0  # slice 1 only, as if stopped there
    assert sorted(p.name for p in work.iterdir()) == ["mnist-linf.shard-1-of-3.json"]
    assert json.loads((results / "mnist-linf.json").read_text())["attacks"] == "old"
    assert _run(tmp_path, "--worker", "0/3") == 0  # slice 0; slice 2 still missing
    slices = [json.loads(remeasure.slice_path(work, "mnist-linf", k, 3).read_text())
              for k in (0, 1)]
    _run(tmp_path, "--status")
    assert "2 of 3 slices" in capsys.readouterr().out
    assert _run(tmp_path, "--worker", "2/3") == 0  # the last slice, then the merge
    assert not list(work.iterdir())
    res = json.loads((results / "mnist-linf.json").read_text())
    assert res["attacks"] == stack_description("fast") and res["shards"] == 3
    # the row it replaced, kept with the attacks that measured it (docs/experiments tables it)
    assert res["previous"] == {"attacks": "old", "n": None, "clean": 1.0}
    # CPU time kept beside wall time, summed over the slices (the card quotes it)
    assert 0 < res["cpu_seconds"] <= res["seconds"] * 1.5 + 1
    assert res["cpu_seconds"] >= max(p["cpu_seconds"] for p in slices)
    assert not remeasure.stale("mnist-linf", "fast", results)
    # a slice is measured reproducibly, so the last one can be measured again here
    slices.append(measure("mnist-linf", 12, "fast", (2, 3)))
    merged = outcomes.unpack(res["outcomes"])
    for k, part in enumerate(slices):  # each slice's images in place
        for name, v in outcomes.unpack(part["outcomes"]).items():
            assert (merged[name][4 * k:4 * k + 4] == v).all(), (k, name)
    derived = outcomes.accuracies(merged)
    for c in ("clean", "linf", "l1", "l2", "union_lp"):
        assert abs(res[c] - derived[c]) < 1e-6, c
    for t, counts in res["breaks"].items():  # each attack's first breaks, summed over slices
        assert counts == {a: sum(p["breaks"][t][a] for p in slices) for a in counts}
        assert sum(counts.values()) == round(12 * (res["clean"] - res[t])), t
    assert "merged 3 slices" in capsys.readouterr().out
    assert _run(tmp_path) == 0  # up to date: nothing measured
    assert "slice" not in capsys.readouterr().out


def test_only_the_threats_whose_attacks_changed_are_measured_again(tmp_path):
    """A stored result whose l_inf and l_2 attacks are no longer today's: those two alone are
    measured again, the other threats' outcomes are kept as they were, an image the earlier
    attacks broke stays broken, and the numbers follow the outcomes."""
    results = tmp_path / "results"
    assert _run(tmp_path) == 0
    first = json.loads((results / "mnist-linf.json").read_text())
    parts = first["attacks"].split("; ")
    first["attacks"] = "; ".join(f"{p.split(': ')[0]}: old" if p.startswith(("l2: ", "linf: "))
                                 else p for p in parts)
    old = outcomes.unpack(first["outcomes"])
    old["l2"] = old["clean"].clone()  # as if the old l_2 attacks had broken nothing
    standing = old["linf"].nonzero().flatten()
    assert len(standing) >= 1
    old["linf"][standing[0]] = False  # ... and the old l_inf ones one more image than today's
    first["outcomes"] = outcomes.pack(old)
    (results / "mnist-linf.json").write_text(json.dumps(first))
    assert remeasure.stale("mnist-linf", "fast", results)
    assert _run(tmp_path) == 0
    res = json.loads((results / "mnist-linf.json").read_text())
    assert res["attacks"] == stack_description("fast") and res["reused"] == ["l1", "rt"]
    new = outcomes.unpack(res["outcomes"])
    for t in ("clean", "linf", "l1", "rt"):
        assert (new[t] == old[t]).all(), t
    assert res["earlier_breaks"] == {"linf": 1, "l2": 0}
    fresh = outcomes.unpack(measure("mnist-linf", 12, "fast", include=["l2"])["outcomes"])
    assert (new["l2"] == fresh["l2"]).all() and not (new["l2"] == old["l2"]).all()
    derived = outcomes.accuracies(new)
    for c in ("linf", "l2", "union_lp", "union_all"):
        assert abs(res[c] - derived[c]) < 1e-6, c
    for t in ("l1", "rt"):  # the reused threats: their counts as the stored result had them
        assert res["breaks"][t] == first["breaks"][t], t


def test_a_stack_that_only_grows_runs_the_new_attacks_on_the_images_left(tmp_path,
                                                                           monkeypatch):
    """Today's l_1 stack = the stored one plus an appended attack (here the boundary attack
    added to "fast"): only that attack runs, only on the images the stored attacks left
    standing under l_1; every other threat and the stored breaks are kept."""
    from advlab.evaluation.strengths import STRENGTHS

    results = tmp_path / "results"
    assert _run(tmp_path) == 0
    first = json.loads((results / "mnist-linf.json").read_text())
    old = outcomes.unpack(first["outcomes"])
    assert old["l1"].sum() >= 1  # something left for the new attack
    grown = {**STRENGTHS["fast"], "boundary": ("l1",), "boundary_steps": 10,
             "boundary_restarts": 1}
    monkeypatch.setitem(STRENGTHS, "fast", grown)
    assert stack_description("fast").split("; ")[1] == (
        first["attacks"].split("; ")[1] + ", BoundaryL1 10 steps")
    assert remeasure.stale("mnist-linf", "fast", results)
    assert _run(tmp_path) == 0
    res = json.loads((results / "mnist-linf.json").read_text())
    assert res["attacks"] == stack_description("fast")
    assert res["extended"] == ["l1"] and res["reused"] == ["l2", "linf", "rt"]
    new = outcomes.unpack(res["outcomes"])
    for t in ("clean", "linf", "l2", "rt"):
        assert (new[t] == old[t]).all(), t
    assert (new["l1"] <= old["l1"]).all()  # the appended attack can only break more
    l1 = res["breaks"]["l1"]
    assert l1["PGD 50 steps"] == first["breaks"]["l1"]["PGD 50 steps"]
    assert l1["BoundaryL1 10 steps"] == int((old["l1"] & ~new["l1"]).sum())
    assert l1["BoundaryL1 10 steps"] >= 1  # an l_inf model's l_1 survivors do not last
    assert abs(res["l1"] - outcomes.accuracies(new)["l1"]) < 1e-6
    assert not remeasure.stale("mnist-linf", "fast", results)


def test_previous_from_records_the_row_a_git_revision_held(tmp_path):
    import subprocess

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,
                       check=True, capture_output=True)

    git("init", "-q")
    folder = tmp_path / "results"
    folder.mkdir()
    path = folder / "m.json"
    path.write_text(json.dumps({"attacks": "l1: A", "n": 10, "clean": 0.9, "l1": 0.5}))
    git("add", ".")
    git("commit", "-q", "-m", "old")
    path.write_text(json.dumps({"attacks": "l1: A, B", "n": 10, "clean": 0.9, "l1": 0.4}))
    assert remeasure.previous_from("HEAD", ["m", "absent"], folder) == ["m"]
    now = json.loads(path.read_text())
    assert now["previous"] == {"attacks": "l1: A", "n": 10, "clean": 0.9, "l1": 0.5}
    assert now["l1"] == 0.4  # the stored row itself untouched
    assert remeasure.previous_from("HEAD", ["m"], folder) == []  # recorded already
    git("add", ".")
    git("commit", "-q", "-m", "new")
    # same attacks at that revision: nothing to record, the earlier record is kept
    assert remeasure.previous_from("HEAD", ["m"], folder) == []
    assert json.loads(path.read_text())["previous"]["l1"] == 0.5
    with pytest.raises(SystemExit, match="not a commit"):  # a typo: said, nothing written
        remeasure.previous_from("no-such-rev", ["m"], folder)


def test_previous_row_keeps_the_history_newest_first():
    first = {"attacks": "l1: A", "n": 10, "l1": 0.5}
    second = {"attacks": "l1: A, B", "n": 10, "l1": 0.4,
              "previous": remeasure.previous_row(first, {"attacks": "l1: A, B"})}
    now = {"attacks": "l1: A, B, C", "n": 10, "l1": 0.3}
    row = remeasure.previous_row(second, now)
    assert row["attacks"] == "l1: A, B" and row["l1"] == 0.4
    assert row["previous"] == {"attacks": "l1: A", "n": 10, "l1": 0.5}  # nothing dropped
    # a re-merge with the same attacks passes the history through unchanged
    assert remeasure.previous_row({**now, "previous": row}, now) == row
    assert remeasure.previous_row(first, {"attacks": "l1: A, B"}) == {"attacks": "l1: A",
                                                                        "n": 10, "l1": 0.5}
