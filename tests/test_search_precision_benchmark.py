"""benchmarks/search_precision.py: float32 and bfloat16 searches of the same stack, for real
(mnist-linf, a few test images), and its refusals."""

import json

import pytest
from benchmark_module import load

sp = load("search_precision")


def test_both_sides_on_the_same_images_and_the_table(tmp_path):
    out, table = tmp_path / "r.json", tmp_path / "r.md"
    assert sp.main(["--model", "mnist-linf", "--n", "24", "--threats", "linf,l2",
                    "--strength", "fast", "--out", str(out), "--table", str(table)]) == 0
    saved = json.loads(out.read_text())
    assert [r["threat"] for r in saved["rows"]] == ["linf", "l2"]
    linf, l2 = saved["rows"]
    assert linf["float32"] > 50 and l2["float32"] < linf["float32"]  # an l_inf-trained model
    for r in saved["rows"]:
        assert r["n"] == 24 and r["cpu_seconds_float32"] > 0 and r["ratio"] > 0
        only = len(r["only_bfloat16_breaks"]) - len(r["only_float32_breaks"])
        assert round(r["float32"] - r["bfloat16"], 1) == round(100 * only / 24, 1)
    text = table.read_text()
    assert text.count("\n| ") == 3 and "bfloat16" in text and "--n 24" in text


@pytest.mark.parametrize("argv, msg", [(["--model", "mnist-nope"], "unknown zoo model"),
                                       (["--threats", "l3"], "unknown threats"),
                                       (["--n", "0"], "1..10000")])
def test_bad_arguments_say_what_to_do(argv, msg, capsys):
    with pytest.raises(SystemExit):
        sp.parse(argv)
    assert msg in capsys.readouterr().err
