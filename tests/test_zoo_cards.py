"""The shipped model cards are what ``advlab.zoo.publish`` generates from today's recipes,
logs and stored results (regenerate with ``python -m advlab.zoo.publish NAME``)."""

import pytest

import advlab.zoo as zoo
from advlab.zoo.publish import CARDS, card_text


@pytest.mark.parametrize("name", zoo.available())
def test_card_is_up_to_date(name):
    path = CARDS / f"{name}.md"
    assert path.is_file(), f"{name} ships without a card: python -m advlab.zoo.publish {name}"
    assert path.read_text() == card_text(name), (
        f"{path} is stale: regenerate it with `python -m advlab.zoo.publish {name}`")


def test_a_remeasured_row_quotes_its_cpu_time():
    """Slices measured on a loaded machine: the card quotes CPU time, which load does not
    inflate, and the wall time beside it."""
    from advlab.zoo.model_card import _how_measured

    res = {"shards": 8, "n": 1000, "seconds": 1800.0, "cpu_seconds": 1200.0, "timing": "sum"}
    text = _how_measured("mnist-msd", res)
    assert "`python -m advlab.zoo.remeasure mnist-msd` (8 slices of 125 images" in text
    assert "20.0 minutes of CPU time" in text and "30.0 minutes of wall time" in text
    res["partly_reused"] = ["l1"]
    assert "those of l1 on some slices kept from an earlier" in _how_measured("mnist-msd", res)
    res["earlier_breaks"] = {"linf": 2, "l2": 0}
    assert "count as broken: 2 under linf that" in _how_measured("mnist-msd", res)
    del res["cpu_seconds"]
    assert "30.0 minutes of one core" in _how_measured("mnist-msd", res)


def test_a_card_quotes_its_own_stored_numbers_in_its_notes():
    """Notes quote the stored row through fields, so a re-measurement rewrites their prose."""
    from advlab.zoo.model_card import _filled
    from advlab.zoo.table import best_model, stored_result

    res = {"l1": 0.0623, "union_lp": 0.0615}
    assert _filled("trusted: {l1} and {union_lp}.", res) == "trusted: 6.2% and 6.2%."
    best = best_model("union_lp")
    union = f"{100 * stored_result(best)['union_lp']:.1f}%"
    assert _filled("best: {best}, {best_union}", res) == f"best: `{best}`, {union}"
    with pytest.raises(KeyError):
        _filled("the {l7} column", res)  # a field no row has is an error, not blank prose
    with pytest.raises(ValueError, match="none"):
        _filled("{l1}", None)
    # the shipped cards: every note's numbers are the card's own row
    text = card_text("mnist-max")
    row = stored_result("mnist-max")
    assert f"the trusted evaluation in the table above gives {100 * row['l1']:.1f}% and " in text
    assert "{" not in text.split("## Measured")[1].split("Also measured")[0]
