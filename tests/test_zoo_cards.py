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
