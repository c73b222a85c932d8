"""``advlab eval``, the README's main job, end to end on real MNIST (small sizes)."""

from __future__ import annotations

import json

from advlab.cli import main


def test_eval_trains_attacks_and_reports_the_union(tmp_path, capsys):
    out = tmp_path / "acc.json"
    rc = main(["eval", "--n", "24", "--train-n", "600", "--threats", "linf,l1",
               "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "lite attacks" in text and "upper bounds" in text
    acc = json.loads(out.read_text())["accuracy"]
    assert set(acc) == {"clean", "linf", "l1", "union"}
    assert acc["clean"] > 0.5  # one epoch on 600 images learns something
    assert acc["union"] <= min(acc["linf"], acc["l1"]) + 1e-9
    assert acc["linf"] < 0.2  # a standard model has no l_inf robustness at eps 0.3


def test_eval_refuses_an_unknown_threat(capsys):
    import pytest

    with pytest.raises(ValueError, match="unknown threats"):
        main(["eval", "--n", "8", "--train-n", "100", "--threats", "linf,l7"])
