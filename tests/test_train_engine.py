"""The training engine: reproducible runs, checkpoints and resume (epoch and mid-epoch)."""

from __future__ import annotations

import json

import pytest
import torch

from advlab.train import AttackSpec, Recipe, fit, get_recipe, train
from advlab.train.recipes import RECIPES

TINY = Recipe("tiny-max", "max", (AttackSpec("linf", steps=1), AttackSpec("l2", steps=1)),
              epochs=2, batch_size=32, warmup_epochs=0.5, monitor=0)
TINY_EAT = TINY.with_(name="tiny-eat", strategy="eat")


@pytest.fixture(scope="module")
def data(mnist_train_small):
    x, y = mnist_train_small
    return x[:96], y[:96]


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                   b.state_dict().values(), strict=True))


def test_a_run_is_reproducible_and_leaves_the_global_rng_alone(data):
    state = torch.random.get_rng_state()
    a = train(TINY, data=data, progress=False, log=lambda _: None)
    b = train(TINY, data=data, progress=False, log=lambda _: None)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert _same(a.model, b.model)
    assert len(a.history) == 2 and set(a.history[0]["robust"]) == {"linf", "l2", "worst"}
    c = train(TINY.with_(seed=1), data=data, progress=False, log=lambda _: None)
    assert not _same(a.model, c.model)


def test_resume_after_an_epoch_gives_the_same_weights(tmp_path, data):
    full = train(TINY_EAT, data=data, progress=False, log=lambda _: None)
    out = tmp_path / "run"
    first = train(TINY_EAT, out=out, epochs=None, data=data, progress=False,
                  log=lambda _: None, stop_after_iterations=3)  # 3 batches = 1 epoch
    assert not first.finished and len(first.history) == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)  # tensors and plain types
    assert state["epoch"] == 1 and state["iteration"] == 0
    again = train(TINY_EAT, out=out, resume=True, data=data, progress=False, log=lambda _: None)
    assert again.finished and len(again.history) == 2
    assert _same(full.model, again.model)
    assert (out / "model.safetensors").exists()
    log = (out / "train.log").read_text()
    assert "resumed" in log and "epoch 2" in log


def test_resume_mid_epoch_gives_the_same_weights(tmp_path, data):
    full = train(TINY, data=data, progress=False, log=lambda _: None)
    out = tmp_path / "mid"
    part = train(TINY, out=out, data=data, progress=False, log=lambda _: None,
                 stop_after_iterations=2)
    assert not part.finished
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and state["iteration"] == 2
    part2 = train(TINY, out=out, resume=True, data=data, progress=False, log=lambda _: None,
                  stop_after_iterations=2)  # stops in epoch 2 after batch 1
    assert not part2.finished
    done = train(TINY, out=out, resume=True, data=data, progress=False, log=lambda _: None)
    assert done.finished and _same(full.model, done.model)
    assert [h["epoch"] for h in done.history] == [1, 2]
    assert abs(done.history[0]["loss"] - full.history[0]["loss"]) < 1e-6


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path, data):
    out = tmp_path / "r"
    train(TINY, out=out, epochs=1, data=data, progress=False, log=lambda _: None)
    with pytest.raises(ValueError, match="different recipe"):
        train(TINY_EAT, out=out, resume=True, data=data, progress=False, log=lambda _: None)


def test_safetensors_output_has_metadata(tmp_path, data):
    from safetensors import safe_open

    out = tmp_path / "s"
    train(get_recipe("mnist-standard").with_(monitor=0), out=out, epochs=1, data=data,
          progress=False, log=lambda _: None)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["recipe"] == "mnist-standard" and meta["arch"] == "compact-cnn"


def test_monitor_reports_test_accuracy(data):
    r = train(TINY.with_(epochs=1), data=data, test_data=(data[0][:16], data[1][:16]),
              progress=False, log=lambda _: None)
    h = r.history[0]
    assert {"test_clean", "test_linf", "test_l2"} <= set(h)


def test_every_recipe_builds_and_describes_itself():
    for name, r in RECIPES.items():
        assert r.name == name
        s = r.build_strategy()
        assert s.cost() >= 1
        assert name in r.describe()
        json.dumps(r.as_dict())
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("mnist-nope")


def test_basic_fit_still_works(data):
    from advlab.models import CompactCNN

    m = fit(CompactCNN(), *data, epochs=1, batch_size=32, seed=0)
    assert not m.training


def test_cli_trains_a_recipe(tmp_path, data, monkeypatch, capsys):
    import argparse

    from advlab.train import cli

    p = argparse.ArgumentParser()
    cli.register(p.add_subparsers())
    args = p.parse_args(["train", "--recipe", "mnist-standard", "--out", str(tmp_path / "c"),
                         "--epochs", "1", "--n-train", "64", "--test-images", "0", "--no-progress"])
    assert args.func(args) == 0
    assert (tmp_path / "c" / "model.safetensors").exists()
    args = p.parse_args(["train", "--list"])
    assert args.func(args) == 0
    assert "mnist-msd" in capsys.readouterr().out


def test_a_checkpoint_older_than_a_recipe_field_still_resumes(tmp_path, data):
    # Checkpoints store the recipe as JSON; a field added to Recipe later (monitor_strength was)
    # must not orphan the runs that were checkpointed before it existed.
    out = tmp_path / "old"
    train(TINY, out=out, data=data, progress=False, log=lambda _: None, stop_after_iterations=2)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    stored = json.loads(state["recipe"])
    del stored["monitor_strength"]
    state["recipe"] = json.dumps(stored, sort_keys=True)
    torch.save(state, out / "checkpoint.pt")
    done = train(TINY, out=out, resume=True, data=data, progress=False, log=lambda _: None)
    assert done.finished and _same(train(TINY, data=data, progress=False,
                                         log=lambda _: None).model, done.model)
    # ... but only while the new field holds its default
    assert not TINY.with_(monitor_strength="strong").same_as(stored)
    assert TINY.same_as(stored) and not TINY.with_(epochs=3).same_as(stored)


def test_a_strong_monitor_is_the_trusted_evaluation(standard_model, data):
    from advlab.evaluation.presets import attacks
    from advlab.evaluation.union import evaluate_union
    from advlab.train.monitor import monitor

    x, y = data[0][:6], data[1][:6]
    recipe = Recipe("tiny-l2", "single", (AttackSpec("l2", steps=1),), monitor=6,
                    monitor_strength="strong")
    got = monitor(standard_model, recipe, (x, y), "cpu")
    res = evaluate_union(standard_model, (x, y), attacks("mnist", "strong", include=["l2"]),
                         keep_worst=False, progress=False)
    assert got["test_l2"] == res.accuracy("l2") and got["test_union"] == res.union_accuracy
    assert "monitor: strong attacks on 6 test images" in recipe.describe()
    with pytest.raises(ValueError, match="monitor_strength"):
        recipe.with_(monitor_strength="trusted")
