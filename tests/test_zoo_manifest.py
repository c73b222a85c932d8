"""The zoo manifest (advlab/zoo/manifest.json) is the one description of each zoo model, and
advlab.zoo.published the one home of the published numbers."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import advlab.zoo as zoo
from advlab.zoo import published

ROOT = Path(__file__).resolve().parent.parent


def test_the_manifest_round_trips_byte_for_byte(tmp_path):
    copy = zoo.write_manifest(zoo.read_manifest(), tmp_path / "manifest.json")
    assert copy.read_bytes() == zoo.MANIFEST_PATH.read_bytes()


def test_the_registry_views_are_the_manifest():
    entries = zoo.read_manifest()
    assert zoo.MANIFEST == entries
    assert zoo.REGISTRY == {n: e for n, e in entries.items() if e.status == "shipped"}
    assert zoo.available() == [n for n, e in entries.items() if e.status == "shipped"]
    assert list(zoo.PLANNED) == [n for n, e in entries.items() if e.status != "not shipped"]
    assert all(zoo.PLANNED[n] == entries[n].description for n in zoo.PLANNED)
    assert {e.status for e in entries.values()} <= set(zoo.STATUSES)


def test_every_entry_names_its_recipe_architecture_and_published_row():
    from advlab.train.recipes import RECIPES

    for name, e in zoo.MANIFEST.items():
        assert e.recipe in RECIPES, name
        assert e.arch == RECIPES[e.recipe].arch, name
        assert e.published is None or e.published in published.ROWS, name
        assert e.description, name
        if e.status == "shipped":
            assert (zoo.WEIGHTS / e.file).is_file(), name
        else:
            assert not (zoo.WEIGHTS / e.file).exists(), name


def test_a_model_that_did_not_ship_says_so():
    gone = [n for n, e in zoo.MANIFEST.items() if e.status == "not shipped"]
    assert gone, "the manifest keeps the trained models that did not ship"
    with pytest.raises(zoo.ZooError, match="do not ship"):
        zoo.load(gone[0])


def test_publish_updates_a_copy_of_the_manifest_and_writes_no_python(tmp_path, monkeypatch):
    from advlab.zoo.publish import register_weights

    copy = tmp_path / "manifest.json"
    shutil.copyfile(zoo.MANIFEST_PATH, copy)
    real = zoo.MANIFEST_PATH.read_bytes()
    shipped = dict(zoo.REGISTRY)
    written = []
    original = Path.write_text

    def spy(self, *args, **kwargs):
        written.append(Path(self).resolve())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", spy)
    register_weights("mnist-test-model", "0" * 64, manifest=copy)
    register_weights("mnist-test-model", "1" * 64, manifest=copy)  # a new sha256, same entry
    register_weights("mnist-linf", "2" * 64, manifest=copy)  # an existing model, retrained
    monkeypatch.undo()
    assert set(written) == {copy.resolve()}  # the copy only: no Python source, not the real one

    before, after = zoo.read_manifest(zoo.MANIFEST_PATH), zoo.read_manifest(copy)
    assert list(after) == [*before, "mnist-test-model"]  # order kept, the new model last
    new = after["mnist-test-model"]
    assert (new.sha256, new.status, new.recipe, new.published) == ("1" * 64, "shipped",
                                                                   "mnist-test-model", None)
    linf = after["mnist-linf"]
    assert linf.sha256 == "2" * 64
    assert linf.as_json() == {**before["mnist-linf"].as_json(), "sha256": "2" * 64}
    assert all(after[n] == e for n, e in before.items() if n != "mnist-linf")
    # what publish wrote reads back and writes again to the same bytes
    again = zoo.write_manifest(zoo.read_manifest(copy), tmp_path / "again.json")
    assert again.read_bytes() == copy.read_bytes()
    # the package's manifest and registry are untouched
    assert zoo.MANIFEST_PATH.read_bytes() == real and zoo.REGISTRY == shipped
    assert not re.search(r"[0-9a-f]{64}", (zoo.HERE / "__init__.py").read_text())


def test_a_malformed_manifest_is_refused(tmp_path):
    bad = tmp_path / "manifest.json"
    text = zoo.MANIFEST_PATH.read_text()
    bad.write_text(text.replace('"status": "shipped"', '"status": "shiped"', 1))
    with pytest.raises(ValueError, match="status"):
        zoo.read_manifest(bad)
    bad.write_text(text.replace('"published": null,', "", 1))
    with pytest.raises(ValueError, match="keys"):
        zoo.read_manifest(bad)


def test_the_manifest_ships_as_package_data():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "manifest.json" in config["tool"]["setuptools"]["package-data"]["advlab.zoo"]


def test_the_published_numbers_have_one_home():
    from advlab import course_figures
    from advlab.zoo import table

    assert table.PUBLISHED is published.PUBLISHED and table.HEADLINE is published.HEADLINE
    assert table.MAINI is published.MAINI and table.TRAMER is published.TRAMER
    assert course_figures.CITATIONS is published.CITATIONS
    assert course_figures.Citation is published.Citation is table.Published
    assert course_figures.published_citation("mnist-linf") is published.PUBLISHED["mnist-linf"]
    assert course_figures.CITATIONS["tramer_boneh_headline"] is published.HEADLINE
    # zoo model -> counterpart, as the manifest says, in the order of ROWS
    assert published.PUBLISHED == {e.name: published.ROWS[e.published]
                                   for e in sorted((e for e in zoo.MANIFEST.values()
                                                    if e.published),
                                                   key=lambda e: list(published.ROWS)
                                                   .index(e.published))}
    # no second copy: neither the sources nor a value of a published row in another module
    rows = [*published.ROWS.values(), *published.CITATIONS.values()]
    home = Path(published.__file__).resolve()
    for path in sorted((ROOT / "advlab").rglob("*.py")):
        if path.resolve() == home:
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("arXiv:1904.13000", "Union of Multiple Perturbation", "merely 50%"):
            assert needle not in text, f"{path.relative_to(ROOT)} has a copy of {needle!r}"
        for row in rows:  # a copy of a row: two of its values written as column: value
            copied = [f"{column} {value}" for column, value in row.values.items()
                      if value is not None and re.search(
                          rf"""["']?\b{column}\b["']?\s*[:=]\s*{re.escape(str(value))}\b""", text)]
            assert len(copied) < min(2, len(row.values)), (
                f"{path.relative_to(ROOT)} has a copy of {row.label}: {copied}")


def test_a_manifest_naming_an_unknown_published_row_is_refused():
    entry = next(iter(zoo.MANIFEST.values()))
    wrong = {entry.name: zoo.ZooEntry(entry.name, entry.sha256, entry.arch, entry.description,
                                      entry.recipe, entry.status, "no-such-paper-row")}
    with pytest.raises(KeyError, match="no-such-paper-row"):
        published.counterparts(wrong)
