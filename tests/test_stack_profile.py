"""benchmarks/stack_profile.py: each attack of the trusted stack, timed and credited, for real
(mnist-standard on a few test images, where the first attack breaks nearly everything)."""


import pytest
from benchmark_module import load

sp = load("stack_profile")


def test_each_attack_sees_what_the_ones_before_left(mnist_test, tmp_path):
    import json

    out = tmp_path / "p.json"
    assert sp.main(["--model", "mnist-standard", "--threats", "linf", "--n", "6",
                    "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    rows = saved["table"]["linf"]
    assert saved["command"].endswith("--threats linf --n 6 --out " + str(out))
    assert [r["attack"] for r in rows][0] == "APGD 100 steps" and len(rows) == 7
    for before, after in zip(rows, rows[1:], strict=False):
        assert after["attacked"] == before["attacked"] - before["broke"]
    assert abs(sum(r["share"] for r in rows) - 1.0) < 1e-9
    assert rows[0]["seconds"] > 0
    for r in rows:  # an attack left with no image to attack took no time
        assert (r["attacked"] == 0) == (r["seconds"] == 0.0), r


def test_bad_arguments_are_refused_with_the_choices():
    with pytest.raises(SystemExit):
        sp.main(["--model", "mnist-nope"])
    with pytest.raises(SystemExit):
        sp.main(["--threats", "rt"])
