"""The defense track: pickles refused unopened, tensors checked against the architecture, the
clean floor, and a gradient-masked model scored by the challenge's attacks (never by PGD alone)
and flagged by advlab.diagnose."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from advlab import evaluate_union, presets
from advlab.challenge import grading, save_defense, spec
from advlab.challenge.defense import RefusedDefense, attacks_for, build_defense, find_defenses
from advlab.masking import masked_model
from advlab.models import CompactCNN

ARCHS = list(spec.DEFAULT_ARCHITECTURES)


def _challenge(**defense) -> spec.Challenge:
    d = dict(threats=["l2"], strength="lite", clean_floor=0.5, diagnose_n=16, diagnose_queries=200)
    d.update(defense)
    return spec.new("test", seed=7, n=16, defense=spec.DefenseTrack(**d))


def test_pickles_are_refused_unopened_with_what_to_do(tmp_path, zoo_standard):
    subs = tmp_path / "subs"
    (subs / "bob").mkdir(parents=True)
    torch.save(zoo_standard.state_dict(), subs / "alice.pt")
    torch.save(zoo_standard.state_dict(), subs / "bob" / "model.pth")
    torch.save(zoo_standard.state_dict(), subs / "carol.safetensors")  # a pickle, renamed
    entries = grading.grade_track(_challenge(), "defense", subs, tmp_path / "out")
    assert {e.student for e in entries} == {"alice", "bob", "carol"}
    for e in entries:
        assert not e.ranked and e.score == 0.0
        assert "pickle" in e.problems[0] and "save_defense" in e.problems[0], e.problems
    res = json.loads((tmp_path / "out" / "defense" / "alice" / "results.json").read_text())
    assert res["score"] == 0 and "pickle" in res["output"] and res["leaderboard"] == []


def test_tensors_must_match_an_allowed_architecture(tmp_path, zoo_standard):
    path = tmp_path / "d.safetensors"
    state = {k: v.contiguous() for k, v in zoo_standard.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": "madry-cnn"})
    with pytest.raises(RefusedDefense, match="shape"):
        build_defense(path.read_bytes(), ARCHS)
    save_file(state, str(path), metadata={"architecture": "preact-resnet18"})
    with pytest.raises(RefusedDefense, match="not one of"):
        build_defense(path.read_bytes(), ARCHS)
    bad = dict(state)
    bad["1.weight"] = torch.full_like(state["1.weight"], float("nan"))
    save_file(bad, str(path), metadata={"architecture": "compact-cnn"})
    with pytest.raises(RefusedDefense, match="NaN"):
        build_defense(path.read_bytes(), ARCHS)
    save_defense(zoo_standard, path, "compact-cnn")
    model, arch = build_defense(path.read_bytes(), ARCHS)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert arch == "compact-cnn" and torch.equal(model(x), zoo_standard(x))


def test_a_model_below_the_clean_floor_is_not_ranked(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    save_defense(CompactCNN(), subs / "untrained.safetensors", "compact-cnn")  # ~10% clean
    (e,) = grading.grade_track(_challenge(clean_floor=0.9), "defense", subs)
    assert not e.ranked and e.score == 0.0 and "below" in e.problems[0]
    assert set(e.metrics) == {"clean accuracy", "architecture"}  # no attack was run


def test_a_masked_model_is_scored_by_the_challenge_attacks_and_flagged(tmp_path, zoo_standard):
    masked = masked_model(zoo_standard, levels=2)  # input binarisation: zero input gradients
    subs = tmp_path / "subs"
    subs.mkdir()
    save_defense(masked, subs / "masker.safetensors", "quantized-compact-cnn")
    ch = _challenge()
    (e,) = grading.grade_track(ch, "defense", subs, tmp_path / "out")
    x, y = spec.held_out(ch)
    loaded, _ = build_defense((subs / "masker.safetensors").read_bytes(), ARCHS)
    assert torch.equal(loaded(x), masked(x))
    pgd_only = evaluate_union(masked, (x, y), presets.attacks("mnist", "fast", include=["l2"]),
                              progress=False).union_accuracy
    trusted = evaluate_union(masked, (x, y), attacks_for(ch), progress=False).union_accuracy
    assert e.ranked and e.metrics["union accuracy"] == pytest.approx(100 * trusted)
    # the stack (APGD, PGD, gradient-free Square) never leaves more than PGD alone; whether it
    # leaves less depends on the images (input binarisation is a real l_2 defense on some)
    assert e.metrics["union accuracy"] <= 100 * pgd_only + 1e-6
    assert "gradients" in e.metrics["masking flags"]
    assert any("gradient masking" in f for f in e.flags)
    assert "NOT the trusted evaluation" in e.evaluation  # a test-sized stack says so
    rows = json.loads((tmp_path / "out" / "defense.json").read_text())["rows"]
    assert rows[0]["student"] == "masker" and rows[0]["masking flags"] == e.metrics["masking flags"]


def test_find_defenses_reads_folders_and_refuses_links(tmp_path, zoo_standard):
    subs = tmp_path / "subs"
    (subs / "dan" / "ckpt").mkdir(parents=True)
    save_defense(zoo_standard, subs / "dan" / "ckpt" / "defense.safetensors", "compact-cnn")
    save_defense(zoo_standard, tmp_path / "outside.safetensors", "compact-cnn")
    (subs / "eve.safetensors").symlink_to(tmp_path / "outside.safetensors")
    found = {s.student: s for s in find_defenses(subs, "defense.safetensors", 64)}
    assert found["dan"].raw is not None and not found["dan"].problem
    assert found["eve"].raw is None and "refused" in found["eve"].problem
