"""The leaderboard files: ranking per track, ties, unranked entries last, CSV/JSON, escaping."""

from __future__ import annotations

import csv
import json

from advlab.challenge import board, spec
from advlab.challenge.results import Entry, write_student_results


def _attack(student, left, ranked=True):
    return Entry(student, "attack", 100 - left, {"accuracy left": left, "clean accuracy": 99.0},
                 ranked=ranked, problems=[] if ranked else ["refused: a symbolic link"])


def test_attack_ranks_low_accuracy_first_ties_share_a_rank_unranked_last():
    rows = board.rank([_attack("b", 40.0), _attack("a", 12.5), _attack("c", 40.0),
                       _attack("z", 0.0, ranked=False)], "attack")
    assert [(r["rank"], r["student"]) for r in rows] == [(1, "a"), (2, "b"), (2, "c"), (None, "z")]
    assert rows[-1]["notes"].startswith("refused")


def test_defense_ranks_high_union_accuracy_first():
    es = [Entry(s, "defense", u, {"union accuracy": u}, ranked=True)
          for s, u in [("p", 20.0), ("q", 39.9), ("r", 7.1)]]
    assert [r["student"] for r in board.rank(es, "defense")] == ["q", "p", "r"]


def test_files_and_page(tmp_path):
    ch = spec.new("demo", seed=3, n=10)
    evil = "<img src=x onerror=alert(1)>"
    entries = [_attack("ann", 30.0), _attack(evil, 10.0)]
    rows = board.rank(entries, "attack")
    board.write_track_files(ch, "attack", rows, tmp_path)
    with open(tmp_path / "attack.csv") as fh:
        table = list(csv.DictReader(fh))
    assert [t["student"] for t in table] == [evil, "ann"] and table[0]["rank"] == "1"
    info = json.loads((tmp_path / "attack.json").read_text())
    assert info["order"] == "asc" and info["key"] == "accuracy left"
    page = board.write_html(tmp_path).read_text()
    assert evil not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http" not in page.split("<body>")[0]  # nothing loaded from the network
    write_student_results(entries, tmp_path / "attack", board.gradescope_leaderboard)
    gs = json.loads((tmp_path / "attack" / "ann" / "results.json").read_text())
    assert gs["leaderboard"][0] == {"name": "accuracy left (%)", "value": 30.0, "order": "asc"}
    assert gs["score"] == 70.0 and gs["max_score"] == 100.0
