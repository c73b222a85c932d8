"""``advlab zoo compare``: two evaluations of the first test images, image by image."""

from __future__ import annotations

import json

import pytest

from advlab.cli import main
from advlab.zoo import compare, outcomes


@pytest.fixture(scope="module")
def two_evals(tmp_path_factory):
    """``advlab eval --json`` of mnist-linf on 16 images: "fast" (PGD) and "lite" (with APGD
    and Square), both real runs."""
    d = tmp_path_factory.mktemp("evals")
    for strength in ("fast", "lite"):
        rc = main(["eval", "--zoo", "mnist-linf", "--n", "16", "--threats", "linf,l2",
                   "--strength", strength, "--json", str(d / f"{strength}.json"),
                   "--no-progress"])
        assert rc == 0
    return d / "fast.json", d / "lite.json"


def test_eval_json_keeps_outcomes_that_give_its_accuracies(two_evals):
    entry = json.loads(two_evals[0].read_text())["models"][0]
    survive = outcomes.unpack(entry["outcomes"])
    assert set(survive) == {"clean", "linf", "l2"} and survive["clean"].numel() == 16
    got = outcomes.accuracies(survive)
    for k in ("clean", "linf", "l2"):
        assert got[k] == pytest.approx(entry["accuracy"][k])
    assert got["union_lp"] == pytest.approx(entry["accuracy"]["union"])  # l_inf and l_2 only


def test_the_differences_account_for_the_accuracy_gap(two_evals):
    a, b = compare.load(str(two_evals[0])), compare.load(str(two_evals[1]))
    table = compare.rows(a, b)
    assert [r["name"] for r in table] == ["clean", "linf", "l2", "union_lp"]
    for r in table:  # acc_a - acc_b = (only B breaks - only A breaks) / n, image by image
        gap = (len(r["only_b_breaks"]) - len(r["only_a_breaks"])) / r["n"]
        assert r["a"] - r["b"] == pytest.approx(gap)
    same = compare.rows(a, a)
    assert all(not r["only_a_breaks"] and not r["only_b_breaks"] for r in same)


def test_compare_uses_the_shared_first_images(two_evals, tmp_path, capsys):
    stored = "docs/experiments/results/mnist-msd-madry.json"  # 1000 images, with outcomes
    rc = main(["zoo", "compare", stored, str(two_evals[1])])
    assert rc == 0
    text = capsys.readouterr().out
    assert "compared on the first 16 MNIST test images" in text
    assert "(strong, first 1000)" in text and "(lite, first 16)" in text
    lines = {line.split()[0]: line.split() for line in text.splitlines()[5:] if line.strip()}
    assert set(lines) >= {"clean", "linf", "l2", "union_lp"} and "l1" not in lines


def test_compare_says_what_is_missing(two_evals, tmp_path, capsys):
    both = tmp_path / "two.json"
    data = json.loads(two_evals[0].read_text())
    data["models"].append({**data["models"][0], "model": "other"})
    both.write_text(json.dumps(data))
    assert main(["zoo", "compare", str(two_evals[0]), str(both)]) == 2
    assert "pick one with --model NAME" in capsys.readouterr().err
    assert main(["zoo", "compare", str(two_evals[0]), str(both), "--model", "other"]) == 0
    capsys.readouterr()
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"clean": 0.9, "linf": 0.5, "n": 100}))
    assert main(["zoo", "compare", str(old), str(two_evals[0])]) == 2
    assert "holds no per-image outcomes" in capsys.readouterr().err
    assert main(["zoo", "compare", "mnist-nonesuch", str(two_evals[0])]) == 2
    assert "neither a file nor a shipped zoo model" in capsys.readouterr().err
