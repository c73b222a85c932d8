"""benchmarks/vs_autoattack.py's bookkeeping (no AutoAttack needed): a resumed run keeps only the
rows measured with today's advlab stack, and the union and markdown rows follow the bits."""

import json
from pathlib import Path

import torch
from benchmark_module import load

from advlab.zoo.outcomes import pack_bits

vs = load("vs_autoattack")


def _row(model, threat, ours, theirs, attacks):
    ours, theirs = torch.tensor(ours, dtype=torch.bool), torch.tensor(theirs, dtype=torch.bool)
    return {"model": model, "threat": threat, "n": ours.numel(),
            "advlab": ours.float().mean().item(), "autoattack": theirs.float().mean().item(),
            "both": (ours & theirs).float().mean().item(),
            "only_autoattack_breaks": (ours & ~theirs).nonzero().flatten().tolist(),
            "only_advlab_breaks": (~ours & theirs).nonzero().flatten().tolist(),
            "cpu_seconds_advlab": 1.0, "cpu_seconds_autoattack": 4.0,
            "advlab_survive": pack_bits(ours), "autoattack_survive": pack_bits(theirs),
            "independent_l1": vs.L1Side().label if threat == "l1" else None,
            **({"advlab_attacks": attacks} if attacks is not None else {})}


def test_resume_drops_rows_of_another_stack(tmp_path):
    today = vs.advlab_stack("linf")
    assert "APGDT 9 targets x 100 steps" in today
    rows = [_row("a", "linf", [1, 1, 0, 1], [1, 0, 0, 1], today),
            _row("b", "linf", [1, 1, 0, 1], [1, 1, 0, 1], today.replace("x 100", "x 50")),
            _row("c", "linf", [1, 1, 0, 1], [1, 1, 0, 1], None)]
    out = tmp_path / "vs.json"
    out.write_text(json.dumps({"suite": "original", "n": 4, "rows": rows}))
    kept = vs.previous_rows(out, 4, "original")
    assert [r["model"] for r in kept] == ["a"]


def test_union_and_markdown_rows_follow_the_bits():
    rows = [_row("m", t, ours, theirs, vs.advlab_stack(t)) for t, ours, theirs in (
        ("linf", [1, 1, 0, 1], [1, 0, 0, 1]), ("l2", [1, 1, 1, 0], [1, 1, 1, 0]),
        ("l1", [1, 1, 1, 1], [0, 1, 1, 1]))]
    (u,) = vs.union_rows(rows)
    assert u["advlab"] == 0.5 and u["autoattack"] == 0.0 and u["only_autoattack_breaks"] == [0, 1]
    table = vs.markdown(rows, [u])
    assert "| m | linf | 75.0 | 50.0 | 50.0 | 1 of 4 | 0 of 4 | – | 1 | 4 | 0.25 |" in table
    assert "| m | union | 50.0 | 0.0 | 0.0 | 2 of 4 | | – |" in table  # m: no stored row
    assert "*" not in table  # today's stack: nothing marked


def test_against_the_stored_zoo_row():
    """AutoAttack's breaks counted against the zoo's stored per-image outcomes."""
    from advlab.zoo import outcomes
    from advlab.zoo.measure import RESULTS

    name, n = "mnist-eat-apgd-l1ft", 40
    stored = outcomes.unpack(json.loads((RESULTS / f"{name}.json").read_text())["outcomes"])
    standing = stored["linf"][:n]
    assert 0 < int(standing.sum()) < n
    rows = [_row(name, t, [1] * n, [0] * n if t == "linf" else [1] * n, None)
            for t in ("linf", "l2", "l1")]
    assert vs.against_stored(name, "linf", n, rows) == f"{int(standing.sum())} of {n}"
    assert vs.against_stored(name, "l2", n, rows) == f"0 of {n}"
    union = outcomes.unions(stored)["union_lp"][:n]
    assert vs.against_stored(name, "union_lp", n, rows) == f"{int(union.sum())} of {n}"
    assert vs.against_stored(name, "union_lp", n, rows[:2]) == "–"  # l_1 not measured


def test_table_command_measures_the_kept_rows_too(tmp_path):
    """The command a table quotes reproduces every row in it, not only this run's models."""
    rows = [_row("mnist-msd", "linf", [1], [1], None), _row("mnist-linf", "l1", [1], [1], None),
            _row("mnist-msd", "l2", [1], [1], None)]
    args = vs.argparse.Namespace(n=200, suite="original", queries=None, ead_steps=200,
                                 fmn_steps=100, bb_steps=200, threads=1,
                                 out=Path(vs.__file__).parents[1] / "benchmarks" / "r.json",
                                 table=None, splice=[tmp_path / "README.md"])
    cmd = vs.table_command(args, rows)
    assert "--models mnist-msd,mnist-linf --n 200 --threats linf,l2,l1 --threads 1" in cmd
    assert "--out benchmarks/r.json --resume" in cmd  # relative to the repository
    assert cmd.endswith(f"--splice {tmp_path / 'README.md'}")


def test_the_docs_quote_the_stored_benchmark():
    """docs/evaluation.md's table is the one the stored rows give (rerun with --splice)."""
    root = Path(__file__).parents[1]
    stored = json.loads((root / "benchmarks" / "results" / "vs_autoattack_n200.json").read_text())
    rows = stored["rows"] + stored.get("stale_rows", [])  # as --rewrite shows them
    table = vs.markdown(rows, vs.union_rows(rows))
    readme = (root / "docs" / "evaluation.md").read_text()
    rerun = (f"docs/evaluation.md's benchmark table is stale (its rows, or the zoo's stored "
             f"results it compares with, changed): run `{stored['command']}` (it measures "
             "nothing new)")
    assert table in readme, rerun
    assert f"`{stored['command']}`" in readme, rerun


def test_a_stale_row_keeps_its_autoattack_side(tmp_path):
    """advlab's stack changed: the row is measured again, but AutoAttack's side is reused (from
    the row, or from the file's autoattack_kept after an interrupted rerun)."""
    today = vs.advlab_stack("linf")
    rows = [_row("a", "linf", [1, 1, 0, 1], [1, 0, 0, 1], today.replace("x 100", "x 50")),
            {**_row("b", "l1", [1, 0, 1, 1], [1, 1, 1, 1], vs.advlab_stack("l1")),
             "independent_l1": "EAD 100 iterations x 9 searches"}]
    for r in rows:
        r.update(autoattack_invalid=0, seconds_autoattack=5.0)
    out = tmp_path / "vs.json"
    kept = [{**{k: rows[0][k] for k in ("autoattack_survive", "autoattack_invalid",
                                       "seconds_autoattack", "cpu_seconds_autoattack")},
             "model": "c", "threat": "l2", "independent_l1": None}]
    out.write_text(json.dumps({"suite": "original", "n": 4, "rows": rows,
                               "autoattack_kept": kept}))
    assert vs.previous_rows(out, 4, "original") == []  # a stale stack; EAD alone for l_1
    earlier = vs.earlier_autoattack(out, 4, "original")
    assert set(earlier) == {("a", "linf"), ("c", "l2")}  # l_1 by other attacks: not reused
    assert earlier[("a", "linf")]["autoattack_survive"] == rows[0]["autoattack_survive"]
    assert vs.earlier_autoattack(out, 4, "torchattacks") == {}


def test_rewrite_measures_nothing_and_keeps_every_row(tmp_path):
    """--rewrite: the table from the file's rows as they are (even a row of an older stack,
    which --resume would measure again), with the file's own command."""
    stale = vs.advlab_stack("linf").replace("x 100", "x 50")
    rows = [_row("mnist-linf", "linf", [1, 1, 0, 1], [1, 0, 0, 1], stale)]
    out, table = tmp_path / "vs.json", tmp_path / "t.md"
    command = "python benchmarks/vs_autoattack.py --models mnist-linf --n 4 --resume"
    out.write_text(json.dumps({"command": command, "suite": "original", "n": 4, "rows": rows}))
    before = out.read_text()
    assert vs.main(["--models", "mnist-linf", "--out", str(out), "--rewrite", "--table",
                    str(table)]) == 0
    assert out.read_text() == before  # nothing measured, nothing rewritten
    text = table.read_text()
    assert text.startswith(f"Produced by `{command}`; first 4 MNIST test images")
    assert vs.markdown(rows, vs.union_rows(rows)) in text
    missing = tmp_path / "none.json"
    try:
        vs.main(["--out", str(missing), "--rewrite"])
    except SystemExit as e:
        assert "does not exist" in str(e)
    else:
        raise AssertionError("--rewrite without a file must fail")


def test_a_stopped_rerun_keeps_the_stale_rows_until_measured_again(tmp_path):
    """A resumed run that stops before it measures a stale row again leaves that row in the
    file's stale_rows: the next --resume still knows it (and its AutoAttack side), and --rewrite
    still shows it, marked as measured with an older stack."""
    today, older = vs.advlab_stack("linf"), vs.advlab_stack("linf").replace("x 100", "x 50")
    rows = [_row("mnist-linf", "linf", [1, 1, 0, 1], [1, 0, 0, 1], today)]
    waiting = [{**_row("mnist-msd", "linf", [1, 0, 0, 1], [1, 0, 0, 1], older),
                "autoattack_invalid": 0, "seconds_autoattack": 5.0}]
    out, table = tmp_path / "vs.json", tmp_path / "t.md"
    out.write_text(json.dumps({"command": "c", "suite": "original", "n": 4, "rows": rows,
                               "stale_rows": waiting}))
    assert vs.previous_rows(out, 4, "original") == rows
    assert vs.stale_rows(out, 4, "original") == waiting
    assert ("mnist-msd", "linf") in vs.earlier_autoattack(out, 4, "original")
    assert vs.main(["--out", str(out), "--rewrite", "--table", str(table)]) == 0
    text = table.read_text()
    assert "| mnist-linf | linf | 75.0 |" in text and "| mnist-msd | linf* | 50.0 |" in text
    assert "older stack than today's" in text


def test_a_finished_run_of_some_models_keeps_the_stale_rows_of_the_others(tmp_path,
                                                                          mnist_test):
    """--models A --resume, A's rows all measured already: the run finishes without measuring
    (no AutoAttack needed) and must not drop model B's stale row from the file or the table."""
    today, older = vs.advlab_stack("linf"), vs.advlab_stack("linf").replace("x 100", "x 50")
    rows = [{**_row("mnist-linf", "linf", [1, 1, 0, 1], [1, 0, 0, 1], today),
             "seconds_advlab": 1.0, "seconds_autoattack": 4.0}]
    waiting = [{**_row("mnist-msd", "linf", [1, 0, 0, 1], [1, 0, 0, 1], older),
                "autoattack_invalid": 0, "seconds_autoattack": 5.0}]
    out, table = tmp_path / "vs.json", tmp_path / "t.md"
    out.write_text(json.dumps({"command": "c", "suite": "original", "n": 4, "rows": rows,
                               "stale_rows": waiting}))
    assert vs.main(["--models", "mnist-linf", "--threats", "linf", "--n", "4", "--resume",
                    "--out", str(out), "--table", str(table)]) == 0
    saved = json.loads(out.read_text())
    assert saved["rows"] == rows and saved["stale_rows"] == waiting
    assert "mnist-msd" in saved["command"]  # the one command measures every row it keeps
    assert "| mnist-msd | linf* | 50.0 |" in table.read_text()


def test_where_the_time_goes_sums_todays_rows_per_threat():
    today = vs.advlab_stack("linf")
    first, *rest = today.split(", ")
    a = _row("a", "linf", [1, 0], [1, 0], today)
    a["seconds_per_attack_advlab"] = {first: 3.0, **{r: 1.0 / len(rest) for r in rest}}
    b = _row("b", "linf", [1, 0], [1, 0], today)
    b["seconds_per_attack_advlab"] = {first: 1.0, **{r: 3.0 / len(rest) for r in rest}}
    old = _row("c", "linf", [1, 0], [1, 0], today.replace("x 100", "x 50"))
    old["seconds_per_attack_advlab"] = {first: 100.0}  # another stack's: left out
    shares = vs.time_shares([a, b, old, _row("d", "l2", [1], [1], None)])
    assert list(shares) == ["linf"] and list(shares["linf"]) == [first, *rest]
    assert abs(shares["linf"][first] - 0.5) < 1e-9
    assert abs(sum(shares["linf"].values()) - 1.0) < 1e-9
    assert f"linf: {first} 50%" in vs.markdown([a, b], [])
    assert "Where advlab's time goes" not in vs.markdown([old], [])


def test_the_l1_side_of_each_suite_is_its_own(tmp_path):
    """An l_1 row measured with Croce & Hein's own l_1 AutoAttack is kept by a croce-hein run
    and measured again by a torchattacks run (whose l_1 side is the independent attacks)."""
    row = _row("a", "l1", [1, 1, 0, 1], [1, 0, 0, 1], vs.advlab_stack("l1"))
    row["independent_l1"] = vs.l1_label("croce-hein", vs.L1Side())
    assert row["independent_l1"] != vs.L1Side().label
    assert not vs._stale(row, None, vs.L1Side(), "croce-hein")
    assert vs._stale(row, None, vs.L1Side(), "original")
    out = tmp_path / "vs.json"
    out.write_text(json.dumps({"suite": "croce-hein", "n": 4, "rows": [row]}))
    assert [r["model"] for r in vs.previous_rows(out, 4, "croce-hein")] == ["a"]


def test_a_bfloat16_search_is_its_own_row_and_in_the_command(tmp_path):
    """Rows searched in bfloat16 are kept only by a run that searches so, and the table's
    command says it."""
    f32, b16 = vs.advlab_stack("linf"), vs.advlab_stack("linf", search_dtype="bfloat16")
    assert b16 == f32 + "; searching in bfloat16"
    rows = [_row("a", "linf", [1, 1, 0, 1], [1, 0, 0, 1], f32),
            _row("b", "linf", [1, 1, 0, 1], [1, 1, 0, 1], b16)]
    out = tmp_path / "vs.json"
    out.write_text(json.dumps({"suite": "original", "n": 4, "rows": rows}))
    assert [r["model"] for r in vs.previous_rows(out, 4, "original")] == ["a"]
    assert [r["model"] for r in vs.previous_rows(out, 4, "original", search_dtype="bfloat16")
            ] == ["b"]
    args = vs.argparse.Namespace(n=4, suite="original", queries=None, threads=None, out=out,
                                 table=None, splice=[], search_dtype="bfloat16")
    assert "--search-dtype bfloat16" in vs.table_command(args, rows[1:])


def test_a_bfloat16_row_of_todays_stack_is_not_marked_older():
    b16 = vs.advlab_stack("linf", search_dtype="bfloat16")
    rows = [_row("a", "linf", [1, 1, 0, 1], [1, 0, 0, 1], b16),
            _row("b", "linf", [1, 1, 0, 1], [1, 0, 0, 1], b16.replace("x 100", "x 50"))]
    table = vs.markdown(rows, [])
    assert "| a | linf |" in table and "| b | linf* |" in table
