"""docs/experiments/README.md's recipe -> cost -> accuracy table is the code's, not typed in."""

from __future__ import annotations

from advlab.zoo import available, experiments


def test_experiments_table_is_current():
    assert experiments.main(["--check"]) == 0, "run python -m advlab.zoo.experiments"


def test_every_shipped_model_has_a_row_with_its_cost():
    rows = {r["run"]: r for r in experiments.rows()}
    for name in available():
        assert name in rows, name
        assert rows[name]["minutes"] > 0 and 0 <= rows[name]["union_lp"] <= rows[name]["linf"]
    assert any(r["status"] == "not shipped" for r in rows.values())


def test_a_stale_table_is_detected(tmp_path, monkeypatch):
    doc = tmp_path / "README.md"
    doc.write_text(experiments.DOC.read_text().replace("| `mnist-linf` |", "| `mnist-linf?` |"))
    monkeypatch.setattr(experiments, "DOC", doc)
    assert experiments.main(["--check"]) == 1
    assert experiments.main([]) == 0 and experiments.main(["--check"]) == 0


def test_zoo_evaluation_keeps_per_example_outcomes_that_rederive_its_numbers(mnist_test):
    from advlab.zoo import load, outcomes
    from advlab.zoo.table import COLUMNS, evaluate_model, stored_rows

    x, y = mnist_test
    res = evaluate_model(load("mnist-linf"), (x[:24], y[:24]), "fast", keep_outcomes=True)
    again = outcomes.accuracies(outcomes.unpack(res["outcomes"]))
    for c in COLUMNS:
        assert abs(again[c] - res[c]) < 1e-6, c
    for row in stored_rows():  # stored results that carry outcomes agree with their numbers
        if "outcomes" in row:
            again = outcomes.accuracies(outcomes.unpack(row["outcomes"]))
            assert all(abs(again[c] - row[c]) < 1e-6 for c in COLUMNS), row["model"]


def test_stack_changes_account_for_every_image_the_new_attacks_broke():
    from advlab.zoo.table import stored_result

    changes = experiments.stack_changes()
    assert changes, "no stored result keeps its previous row"
    for c in changes:
        res = stored_result(c["model"])
        for t in ("linf", "l1", "l2", "union_lp"):  # stronger attacks never raise a number
            assert c["now"][t] <= c["before"][t] + 1e-9, (c["model"], t)
        if res.get("extended") and "reused" in res:  # only appended attacks, on the survivors
            for t in res["extended"]:
                fell = round(res["n"] * (c["before"][t] - c["now"][t]))
                assert fell == c["first_breaks"][t], (c["model"], t)
            assert set(c["added"]) == set(res["extended"])
    assert "→" in experiments.changes_markdown(changes)


def test_each_change_of_the_stack_is_tabled_from_the_stored_history():
    """The boundary attack's change (an older one) and FAB-T 4-9's (the last one) each get a
    table, from the "previous" rows nested in the stored results."""
    for block, attack in experiments.CHANGE_BLOCKS.items():
        changes = experiments.stack_changes(attack)
        assert changes, f"no stored history holds the change that brought {attack} ({block})"
        for c in changes:
            assert any(a == attack or a.startswith(attack + " ")  # not "... x eps with L0 sparsity"
                       for got in c["added"].values() for a in got)
            for t in ("linf", "l1", "l2", "union_lp"):
                assert c["now"][t] <= c["before"][t] + 1e-9, (block, c["model"], t)
            assert f"`{c['model']}`" in experiments.changes_markdown(attack=attack)
    # every stored history in which the boundary attack joined is found, however far back
    from advlab.zoo.table import stored_result

    boundary = {c["model"] for c in experiments.stack_changes("BoundaryL1")}
    for name in available():
        row, seen = stored_result(name), False
        while row.get("previous"):
            older = row["previous"]
            if ("BoundaryL1" in row["attacks"] and "BoundaryL1" not in older["attacks"]
                    and older.get("n") == 1000):
                seen = True
            row = older
        assert seen == (name in boundary), name


def test_every_attack_description_survives_the_stack_text():
    """The stored results quote a stack as "threat: attack, attack; threat: ...", and the
    re-measurement and these tables split it there: no attack's name may hold ", ", "; " or
    ": " (a name with a comma would be cut in two, and its counts dropped at a merge)."""
    from advlab.evaluation.presets import attacks
    from advlab.evaluation.strengths import NAMES
    from advlab.zoo.measure import describe_attack, stack_description, threat_attacks

    for strength in NAMES:
        stacks = attacks("mnist", strength)
        parsed = threat_attacks(stack_description(strength))
        assert list(parsed) == list(stacks), strength
        for t, stack in stacks.items():
            names = [describe_attack(a) for a in stack]
            assert parsed[t].split(", ") == names, (strength, t)
            assert len(set(names)) == len(names), (strength, t, names)
            assert not any(sep in n for n in names for sep in (", ", "; ", ": ")), names
