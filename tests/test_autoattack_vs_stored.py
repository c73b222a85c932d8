"""benchmarks/autoattack_vs_stored.py's bookkeeping against the zoo's real stored rows (no
AutoAttack needed): rows, unions and the table follow the bits, a resumed run keeps only rows
of the same n and package version, and the committed results agree with today's stored rows."""

import json
from pathlib import Path

import pytest
import torch
from benchmark_module import load

from advlab.zoo import outcomes

ROOT = Path(__file__).parents[1]
bench = load("autoattack_vs_stored")

RESULTS = ROOT / "benchmarks" / "results" / "autoattack_vs_stored_n200.json"


def _aa_row(model, threat, aa, stored):
    return bench.row_for(model, threat, aa, stored, invalid=0, seconds=1.0, cpu_seconds=2.0,
                         package="0.2.0", autoattack_survive=outcomes.pack_bits(aa))


def test_rows_and_union_follow_the_stored_bits():
    n = 16
    stored = bench.stored_outcomes("mnist-msd", n)
    rows = []
    for t in ("linf", "l2", "l1"):
        aa = stored[t].clone()
        if t == "l1":  # AutoAttack breaks one image the stored row leaves standing
            first = int(stored[t].nonzero()[0])
            aa[first] = False
        rows.append(_aa_row("mnist-msd", t, aa, stored[t]))
    l1 = rows[-1]
    assert l1["autoattack_breaks_stored_leaves"] == [first]
    assert l1["stored_breaks_autoattack_leaves"] == []
    assert l1["autoattack"] == pytest.approx(l1["stored"] - 1 / n)
    (u,) = bench.union_rows(rows)
    want = stored["union_lp"].clone()
    assert u["stored"] == pytest.approx(want.float().mean().item())
    want[first] = False
    assert u["autoattack"] == pytest.approx(want.float().mean().item())
    table = bench.markdown(rows, [u])
    assert f"| mnist-msd | l1 | {100 * l1['stored']:.1f} | {100 * l1['autoattack']:.1f}" in table
    assert "breaks 1 of 48 images that the stored rows leave standing" in table


def test_the_target_allows_one_image_in_500_per_model():
    stored = bench.stored_outcomes("mnist-msd", 200)
    rows = []
    for t in ("linf", "l2", "l1"):
        aa = stored[t].clone()
        if t == "l2":  # one image AutoAttack breaks: 1 of 600 is within 1 in 500
            aa[int(stored[t].nonzero()[0])] = False
        rows.append(_aa_row("mnist-msd", t, aa, stored[t]))
    assert "met on 1 of 1 models (`mnist-msd`)." in bench.target_summary(rows)
    aa = stored["l1"].clone()
    second = stored["l1"].nonzero().flatten()[:2].tolist()
    aa[second] = False
    rows[-1] = _aa_row("mnist-msd", "l1", aa, stored["l1"])  # 3 of 600: missed
    summary = bench.target_summary(rows)
    assert "met on 0 of 1 models" in summary
    assert f"missed on `mnist-msd` (l2 {rows[1]['autoattack_breaks_stored_leaves'][0]}; " \
        f"l1 {second[0]}, {second[1]})" in summary


def test_no_union_row_before_every_threat_is_measured():
    stored = bench.stored_outcomes("mnist-standard", 8)
    rows = [_aa_row("mnist-standard", t, stored[t], stored[t]) for t in ("linf", "l1")]
    assert bench.union_rows(rows) == []


def test_resume_keeps_only_rows_of_the_same_n_and_version(tmp_path):
    stored = bench.stored_outcomes("mnist-standard", 8)
    old = _aa_row("mnist-standard", "l1", stored["l1"], stored["l1"])
    other = {**_aa_row("mnist-standard", "l2", stored["l2"], stored["l2"]), "package": "0.1.0"}
    out = tmp_path / "aa.json"
    old["stored"], old["autoattack_breaks_stored_leaves"] = 0.99, [7]  # an older stored row's
    out.write_text(json.dumps({"n": 8, "rows": [old, other]}))
    (kept,) = bench.kept_rows(out, 8, "0.2.0")
    assert kept["threat"] == "l1" and kept["package"] == "0.2.0"
    assert kept["stored"] == pytest.approx(stored["l1"].float().mean().item())  # today's
    assert kept["autoattack_breaks_stored_leaves"] == []
    with pytest.raises(SystemExit, match="another n"):
        bench.kept_rows(out, 200, "0.2.0")


def test_a_stored_row_without_outcomes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    (tmp_path / "m.json").write_text(json.dumps({"n": 1000, "l1": 0.5}))
    with pytest.raises(SystemExit, match="no per-image outcomes"):
        bench.stored_outcomes("m", 200)


@pytest.mark.skipif(not RESULTS.is_file(), reason="no committed AutoAttack results yet")
def test_committed_results_agree_with_todays_stored_rows():
    """Each committed row's 'stored' column and its images are today's stored zoo row's: a
    re-measured zoo row needs ``--rewrite`` (or a new run) before the table quotes it."""
    data = json.loads(RESULTS.read_text())
    assert data["rows"], "an empty results file"
    for r in data["rows"]:
        stored = bench.stored_outcomes(r["model"], r["n"])[r["threat"]]
        aa = outcomes.unpack_bits(r["autoattack_survive"], r["n"])
        assert r["stored"] == pytest.approx(stored.float().mean().item()), r["model"]
        assert r["autoattack_breaks_stored_leaves"] == (stored & ~aa).nonzero().flatten().tolist()
        assert r["autoattack"] == pytest.approx(aa.float().mean().item())
        assert torch.is_tensor(aa) and aa.dtype == torch.bool


@pytest.mark.skipif(not RESULTS.is_file(), reason="no committed AutoAttack results yet")
def test_the_docs_show_the_committed_results_against_todays_stored_rows():
    data = json.loads(RESULTS.read_text())
    rows = bench.kept_rows(RESULTS, data["n"], None)
    body = bench.table_body(data["command"], data["n"], rows)
    doc = (ROOT / "docs" / "evaluation.md").read_text()
    assert body in doc, ("docs/evaluation.md's AutoAttack table is stale: python "
                            "benchmarks/autoattack_vs_stored.py --rewrite ... (its command)")
