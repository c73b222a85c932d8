"""The challenge leaderboard page in a real browser: it renders from file:// with no server, ranks
each track, and sorts by any column when its header is clicked (numbers as numbers).

Needs Debian's chromium (/usr/bin/chromium) and Python playwright; skipped with a message where
chromium is absent (failed in CI). The page is built by advlab.challenge.board from entries made
here (what the graders produce is tested in tests/challenge/).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from advlab.challenge import board, spec
from advlab.challenge.results import Entry

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (.ci/system-deps) to run the "
                "browser tests", allow_module_level=True)
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

ATTACKS = [("ann", 9.5), ("bob", 88.3), ("cy", 10.25), ("<i>dee</i>", 100.0)]
DEFENSES = [("eve", 21.2, 97.5), ("fay", 39.9, 97.1), ("gus", 0.0, 80.0)]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("board")
    ch = spec.new("demo challenge", seed=1, n=100)
    att = [Entry(s, "attack", 100 - v, {"accuracy left": v}, ranked=True) for s, v in ATTACKS]
    dfn = [Entry(s, "defense", u, {"union accuracy": u, "clean accuracy": c}, ranked=c >= 95,
                 problems=[] if c >= 95 else ["clean accuracy below the floor"])
           for s, u, c in DEFENSES]
    board.write_track_files(ch, "attack", board.rank(att, "attack"), out)
    board.write_track_files(ch, "defense", board.rank(dfn, "defense"), out)
    return board.write_html(out)


@pytest.fixture(scope="module")
def page(site):
    assert CHROMIUM.exists(), f"{CHROMIUM} is absent (CI installs it with .ci/system-deps)"
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                               args=["--no-sandbox", "--disable-gpu",
                                     "--disable-background-networking"])
        try:
            pg = b.new_page()
            pg.set_default_timeout(30_000)
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(site.as_uri())
            pg.errors = errors
            yield pg
        finally:
            b.close()


def _column(pg, table: str, name: str) -> list[str]:
    heads = pg.locator(f"table#{table} thead th").all_inner_texts()
    col = [h.strip(" \u25b2\u25bc") for h in heads].index(name)
    return pg.locator(f"table#{table} tbody tr td:nth-child({col + 1})").all_inner_texts()


def test_the_page_renders_both_tracks_ranked(page):
    assert page.title() == "demo challenge: leaderboard"
    assert _column(page, "attack", "student") == ["ann", "cy", "bob", "<i>dee</i>"]  # escaped
    assert _column(page, "attack", "rank") == ["1", "2", "3", "4"]
    assert _column(page, "defense", "student") == ["fay", "eve", "gus"]  # unranked last
    assert _column(page, "defense", "rank") == ["1", "2", ""]
    assert page.locator("table#defense tr.unranked").count() == 1
    assert page.locator("i").count() == 0  # the student's markup is text, not HTML
    assert not page.errors


def test_clicking_a_header_sorts_by_that_column(page):
    head = page.locator("table#attack thead th", has_text="accuracy left")
    head.click()
    assert _column(page, "attack", "accuracy left") == ["9.50", "10.25", "88.30", "100.00"]
    assert head.get_attribute("aria-sort") == "ascending"
    head.click()  # numbers as numbers: 100 > 88.3 > 10.25 > 9.5
    assert _column(page, "attack", "accuracy left") == ["100.00", "88.30", "10.25", "9.50"]
    page.locator("table#attack thead th", has_text="student").click()
    assert _column(page, "attack", "student") == ["<i>dee</i>", "ann", "bob", "cy"]
    page.locator("table#defense thead th", has_text="rank").click()
    assert _column(page, "defense", "rank") == ["1", "2", ""]  # the unranked stays last
    assert not page.errors
