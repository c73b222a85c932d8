"""Training attacks, schedules, fine-tuning, early stopping and data-parallel resume."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from advlab.threats import L1, L2, Linf
from advlab.train import AttackSpec, Recipe, get_recipe, train
from advlab.train.recipes import RECIPES


@pytest.fixture(scope="module")
def data(mnist_train_small):
    x, y = mnist_train_small
    return x[:64], y[:64]


@pytest.mark.parametrize("name,threat", [("linf", Linf(0.3)), ("l2", L2(2.0)), ("l1", L1(10.0))])
def test_apgd_training_attack_stays_in_its_threat_model(standard_model, data, name, threat):
    x, y = data
    attack = AttackSpec(name, "apgd", steps=5).build()
    res = attack(standard_model, x, y, generator=torch.Generator().manual_seed(0))
    d = (res.x_adv - x).flatten(1)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    norm = {"linf": d.abs().amax(1), "l2": d.norm(dim=1), "l1": d.abs().sum(1)}[name]
    assert (norm <= threat.eps * (1 + 1e-4)).all()
    assert res.success.float().mean() > 0.3  # a standard model falls to 5 APGD steps
    # the training run's generator drives it: same stream, same output
    again = attack(standard_model, x, y, generator=torch.Generator().manual_seed(0))
    assert torch.equal(res.x_adv, again.x_adv)


def test_apgd_kind_refuses_a_step_size():
    with pytest.raises(ValueError, match="APGD adapts its own step size"):
        AttackSpec("linf", "apgd", step_size=0.1)
    with pytest.raises(ValueError, match="kind must be one of"):
        AttackSpec("linf", "apgd2")


def test_wide_l0_apgd_training_attack_stays_in_the_ball_and_reaches_the_attack(
        standard_model, data):
    x, y = data
    spec = AttackSpec("l1", "apgd", steps=6, eps_scales=(5, 3, 1), sparsity="l0")
    attack = spec.build()
    assert attack.eps_scales == (5.0, 3.0, 1.0) and attack.sparsity == "l0"
    res = attack(standard_model, x, y, generator=torch.Generator().manual_seed(0))
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert ((res.x_adv - x).flatten(1).abs().sum(1) <= 10.0 * (1 + 1e-4)).all()
    # during eps warm-up the whole schedule shrinks with the budget
    half = spec.build(scale=0.5)
    assert half.threat.eps == 5.0 and half.eps_scales == (5.0, 3.0, 1.0)


def test_apgd_options_are_checked_and_recorded_only_where_set():
    with pytest.raises(ValueError, match="APGD options"):
        AttackSpec("l1", "pgd", eps_scales=(3, 1))
    with pytest.raises(ValueError, match="decrease and end at 1"):
        AttackSpec("l1", "apgd", eps_scales=(1, 3))
    with pytest.raises(ValueError, match="dense steps"):
        AttackSpec("linf", "apgd", sparsity="l0")
    for steps in (2, 4):  # 30% + 30% of 4 steps, rounded up, leave the last stage none
        with pytest.raises(ValueError, match="at least one step each"):
            AttackSpec("l1", "apgd", steps=steps, eps_scales=(5, 3, 1))
    AttackSpec("l1", "apgd", steps=3, eps_scales=(5, 3, 1)).build()
    with pytest.raises(ValueError, match="sparsity must be 'mass'"):
        AttackSpec("l1", "apgd", sparsity="dense")
    # a recipe without them records what it did before they existed (older checkpoints resume)
    old = get_recipe("mnist-eat-apgd-l1ft").as_dict()
    assert all(set(a) == {"threat", "kind", "steps", "step_size", "k", "dataset"}
               for a in old["attacks"])
    wide = get_recipe("mnist-eat-apgd-l0ft")
    assert wide.as_dict()["attacks"][1]["eps_scales"] == [5.0, 3.0, 1.0]
    assert wide.same_as(wide.as_dict()) and not wide.same_as(old | {"name": wide.name})
    assert "30 steps, budget 5-3-1 x eps, l0 sparsity" in wide.describe()
    assert wide.attacks[1].options_text() == "budget 5-3-1 x eps, l0 sparsity"
    assert wide.attacks[0].options_text() == ""


def test_apgd_kind_works_in_every_strategy(data):
    x, y = data
    specs = [AttackSpec("linf", "apgd", steps=2), AttackSpec("l1", "apgd", steps=2)]
    for strategy in ("avg", "max", "eat"):
        r = Recipe(f"tiny-{strategy}", strategy, tuple(specs), epochs=1, batch_size=32,
                   warmup_epochs=0.0, monitor=0)
        res = train(r, data=(x, y), progress=False, log=lambda _: None)
        assert len(res.history) == 1 and res.history[0]["loss"] > 0


def test_lr_schedules():
    step = Recipe("s", epochs=10, lr=1e-3, schedule="step")
    assert step.lr_at(0, 100) == 1e-3 and step.lr_at(499, 100) == 1e-3
    assert step.lr_at(500, 100) == pytest.approx(1e-4)
    tri = Recipe("t", epochs=15, lr=1e-3, schedule="triangle", peak_epoch=6.0)
    assert tri.lr_at(0, 100) == 0 and tri.lr_at(600, 100) == pytest.approx(1e-3)
    assert tri.lr_at(300, 100) == pytest.approx(5e-4) and tri.lr_at(1500, 100) == 0
    assert tri.lr_at(1050, 100) == pytest.approx(5e-4)
    cos = Recipe("c", epochs=2, lr=1e-3)
    assert cos.lr_at(0, 10) == 1e-3 and cos.lr_at(10, 10) == pytest.approx(5e-4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        Recipe("x", schedule="linear")
    with pytest.raises(ValueError, match="peak_epoch"):
        Recipe("x", schedule="triangle", epochs=5, peak_epoch=0.0)


def test_eps_schedules():
    lin = Recipe("l", warmup_epochs=2.0)
    assert lin.eps_scale_at(0, 10) == pytest.approx(0.05) and lin.eps_scale_at(19, 10) == 1.0
    third = Recipe("t", warmup_epochs=1.0, eps_schedule="third")
    assert third.eps_scale_at(0, 10) == pytest.approx(1 / 3)
    assert third.eps_scale_at(9, 10) == pytest.approx(1 / 3) and third.eps_scale_at(10, 10) == 1
    assert Recipe("n", warmup_epochs=0.0).eps_scale_at(0, 10) == 1.0


def test_fine_tuning_starts_from_the_zoo_model(data):
    from advlab.zoo import load

    r = Recipe("ft", "standard", init="mnist-linf", lr=0.0, epochs=1, batch_size=32,
               warmup_epochs=0.0, monitor=0)
    res = train(r, data=data, progress=False, log=lambda _: None)
    zoo = load("mnist-linf")
    for k, v in zoo.state_dict().items():
        assert torch.equal(res.model.state_dict()[k].contiguous(), v.contiguous()), k
    assert "fine-tuned from the zoo model mnist-linf" in r.describe()


def test_monitor_uses_the_lite_stack_and_keeps_the_best_epoch(tmp_path, data, mnist_test):
    from safetensors import safe_open

    x_t, y_t = mnist_test
    r = Recipe("tiny-best", "max", (AttackSpec("linf", "apgd", steps=2),
                                    AttackSpec("l2", "apgd", steps=2)),
               epochs=2, batch_size=32, warmup_epochs=0.0)
    lines = []
    res = train(r, out=tmp_path, data=data, test_data=(x_t[:12], y_t[:12]), progress=False,
                log=lines.append)
    h = res.history
    assert {"test_clean", "test_linf", "test_l2", "test_union"} <= set(h[0])
    for e in h:  # the union can never beat a single threat
        assert e["test_union"] <= min(e["test_linf"], e["test_l2"]) + 1e-9
    best = max(range(2), key=lambda i: (h[i]["test_union"], -i))
    with safe_open(str(tmp_path / "best.safetensors"), "pt") as f:
        assert int(f.metadata()["epoch"]) == best + 1
    assert any("best so far" in line for line in lines)


def test_paper_recipes_name_their_source():
    for name in ("mnist-max-tb", "mnist-avg-tb", "mnist-msd-maini"):
        r = RECIPES[name]
        assert r.arch == "madry-cnn" and r.batch_size == 100 and r.source
        assert "source:" in r.describe()
    assert get_recipe("mnist-msd-maini").msd_steps == 100


_SCRIPT = textwrap.dedent('''
    import sys, torch
    from advlab.data import mnist_tensors
    from advlab.train import AttackSpec, Recipe, train
    torch.set_num_threads(1)
    x, y = mnist_tensors(96, train=True)
    r = Recipe("tiny-ddp", "max", (AttackSpec("linf", steps=1), AttackSpec("l2", steps=1)),
               epochs=2, batch_size=32, warmup_epochs=0.5, monitor=0)
    stop = int(sys.argv[2]) if sys.argv[2] != "none" else None
    train(r, out=sys.argv[1], resume=True, data=(x, y), device="cpu", progress=False,
          stop_after_iterations=stop)
''')


def test_data_parallel_run_resumes_mid_epoch_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")

    def run(out, stop):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", str(script), str(out), stop]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]

    run(tmp_path / "full", "none")
    run(tmp_path / "part", "2")  # stops in epoch 1 after batch 2 of 3
    state = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and state["iteration"] == 2
    assert (tmp_path / "part" / "checkpoint.rank1.pt").exists()
    run(tmp_path / "part", "none")
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert "resumed" in (tmp_path / "part" / "train.log").read_text()


def test_publish_ships_the_best_epoch_when_the_run_kept_one(tmp_path):
    from advlab.zoo.publish import run_weights

    with pytest.raises(FileNotFoundError, match="has the run"):
        run_weights(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"last")
    assert run_weights(tmp_path).name == "model.safetensors"
    (tmp_path / "best.safetensors").write_bytes(b"best")
    assert run_weights(tmp_path).name == "best.safetensors"
    assert run_weights(tmp_path, "last").name == "model.safetensors"
    with pytest.raises(ValueError, match="'best' or 'last'"):
        run_weights(tmp_path, "first")
