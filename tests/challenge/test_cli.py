"""``advlab challenge new / grade / board`` as an instructor runs them, and the starter notebooks
students get (their baseline attack passes the grader's re-check)."""

from __future__ import annotations

import json

import nbformat
import torch

from advlab.challenge import spec, try_attack
from advlab.cli import main


def test_new_writes_the_challenge_and_working_starters(tmp_path, capsys):
    out = tmp_path / "ch"
    assert main(["challenge", "new", "demo", "-o", str(out), "--zoo", "mnist-standard",
                 "--n", "32", "--seed", "5", "--threat", "l2:2"]) == 0
    ch = spec.load(out / "challenge.json")
    assert (ch.name, ch.n, ch.seed, ch.attack.threat) == ("demo", 32, 5, "l2:2")
    assert ch.defense.strength == "strong"  # real grading uses the trusted attacks
    nb = nbformat.read(out / "student" / "attack.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[-1].metadata.get("tags") == ["skip-grading"]  # the local check is not graded
    ns: dict = {}
    exec(code[0].source + "\n" + code[1].source, ns)  # set-up and baseline, as students get them
    e = try_attack(ns["attack"], ns["model"], ns["threat"], n=32, batch_size=16)
    assert e.metrics["valid inputs"] == "32/32"
    assert e.metrics["accuracy left"] <= e.metrics["clean accuracy"]
    nbformat.validate(nbformat.read(out / "student" / "defense.ipynb", as_version=4))
    assert main(["challenge", "new", "demo", "-o", str(out)]) == 2  # exists: --force needed
    assert "--force" in capsys.readouterr().err


def test_hidden_weights_are_copied_and_hash_checked(tmp_path):
    from advlab.challenge import save_defense
    from advlab.models import CompactCNN

    w = tmp_path / "mine.safetensors"
    save_defense(CompactCNN(), w, "compact-cnn")
    out = tmp_path / "ch"
    assert main(["challenge", "new", "hidden", "-o", str(out), "--weights", str(w)]) == 0
    ch = spec.load(out / "challenge.json")
    assert ch.attack.model["weights"] == "hidden-model.safetensors"
    model, arch = spec.attack_model(ch)
    assert arch == "compact-cnn"
    with open(out / "hidden-model.safetensors", "r+b") as fh:  # tamper with one byte
        fh.seek(-1, 2)
        fh.write(b"\x01")
    try:
        spec.attack_model(ch)
    except spec.ChallengeError as exc:
        assert "changed" in str(exc)
    else:
        raise AssertionError("a modified hidden model was loaded")


def test_grade_and_board_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "ch"
    main(["challenge", "new", "demo", "-o", str(out), "--n", "16", "--seed", "1"])
    subs = tmp_path / "defenses"
    subs.mkdir()
    torch.save({"w": torch.zeros(1)}, subs / "pat.pt")
    res = tmp_path / "results"
    assert main(["challenge", "grade", str(out / "challenge.json"), "defense", str(subs),
                 "-o", str(res)]) == 0
    rows = json.loads((res / "defense.json").read_text())["rows"]
    assert rows[0]["student"] == "pat" and rows[0]["rank"] is None
    site = tmp_path / "site"
    assert main(["challenge", "board", str(res), "-o", str(site)]) == 0
    assert (site / "index.html").is_file() and (site / "defense.csv").is_file()
    assert main(["challenge", "board", str(tmp_path / "nothing")]) == 2
    assert main(["challenge", "grade", str(tmp_path / "no.json"), "attack", str(subs),
                 "-o", str(res)]) == 2
    assert "does not exist" in capsys.readouterr().err
