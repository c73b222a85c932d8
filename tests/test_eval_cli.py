"""``advlab eval``, the README's main job, end to end on real MNIST (small sizes)."""

from __future__ import annotations

import json

from advlab.cli import build_parser, main
from advlab.cli.eval import DEFAULT_N, plan, trusted_command


def _args(*argv: str):
    return build_parser("eval").parse_args(["eval", *argv])


def test_no_arguments_means_the_linf_model_and_the_best_union_model():
    from advlab.zoo.table import best_model, stored_result

    args = _args()
    todo = plan(args)
    best = best_model("union_lp")
    assert todo["models"] == ["mnist-linf", best] and best != "mnist-linf"
    assert todo["threats"] == ["linf", "l1", "l2", "rt"]
    assert args.n == DEFAULT_N and args.strength == "lite"
    assert stored_result(best)["union_lp"] > stored_result("mnist-linf")["union_lp"]
    assert trusted_command(args, todo) == (f"advlab eval --zoo mnist-linf,{best} "
                                           "--strength strong --n 1000")


def test_eval_of_a_zoo_model_beside_its_stored_and_published_rows(tmp_path, capsys):
    out = tmp_path / "acc.json"
    rc = main(["eval", "--zoo", "mnist-linf", "--n", "12", "--threats", "linf,l1,l2",
               "--strength", "fast", "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "MNIST, first 12 test images, fast attacks" in text
    live = next(line for line in text.splitlines() if line.startswith("mnist-linf "))
    assert "live: fast, first 12" in live
    assert "stored: strong, first 1000" in text and "published: P_inf (Maini et al.)" in text
    from advlab.zoo.table import stored_result

    stored_line = next(line for line in text.splitlines() if "stored: strong" in line)
    want = [f"{100 * stored_result('mnist-linf')[k]:.1f}" for k in ("linf", "l1", "l2", "union_lp")]
    assert stored_line.split()[-4:] == want
    assert "upper bounds" in text and "Maini, Wong & Kolter (2020)" in text
    assert "advlab eval --zoo mnist-linf --strength strong --n 1000 --threats linf,l1,l2" in text
    got = json.loads(out.read_text())
    assert got["n"] == 12 and got["strength"] == "fast"
    acc = got["models"][0]["accuracy"]
    assert got["models"][0]["model"] == "mnist-linf"
    assert set(acc) == {"clean", "linf", "l1", "l2", "union", "union_lp"}
    assert set(got["models"][0]["outcomes"]["survive"]) == {"clean", "linf", "l1", "l2"}
    assert acc["clean"] > 0.9 and acc["linf"] > 0.5  # an l_inf-robust model
    assert acc["union_lp"] == acc["union"] <= min(acc["linf"], acc["l1"], acc["l2"]) + 1e-9


def test_eval_train_trains_first_then_attacks(tmp_path, capsys):
    out = tmp_path / "acc.json"
    rc = main(["eval", "--train", "--n", "24", "--train-n", "600", "--threats", "linf,l1",
               "--strength", "fast", "--json", str(out), "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "trained a standard CompactCNN on 600 images" in text and "upper bounds" in text
    assert "stored:" not in text and "published:" not in text  # a fresh model has neither
    assert "advlab eval --train --train-n 600 --strength strong --n 1000" in text
    acc = json.loads(out.read_text())["models"][0]["accuracy"]
    assert set(acc) == {"clean", "linf", "l1", "union"}
    assert acc["clean"] > 0.5  # one epoch on 600 images learns something
    assert acc["union"] <= min(acc["linf"], acc["l1"]) + 1e-9
    assert acc["linf"] < 0.2  # a standard model has no l_inf robustness at eps 0.3


def test_eval_refuses_an_unknown_threat(capsys):
    assert main(["eval", "--n", "8", "--train", "--threats", "linf,l7"]) == 2
    err = capsys.readouterr().err
    assert "unknown threats ['l7']" in err and "trained" not in err
