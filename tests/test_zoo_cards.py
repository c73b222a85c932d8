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
