"""Rotation-translation: the grid, the transform itself, and the grid / random / affine attacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from advlab.attacks import affine_grid_attack, grid_attack, pgd, random_attack
from advlab.threats import L1, Affine, Linf, RotationTranslation


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def batch(mnist_test):
    x, y = mnist_test
    return x[40:56], y[40:56]


# ------------------------------------------------------------------------------ grid, transform


def test_paper_grid():
    grid = RotationTranslation().grid()
    assert grid.shape == (775, 3)
    assert torch.unique(grid, dim=0).shape[0] == 775
    assert ((grid == 0).all(dim=1)).sum() == 1  # the identity, exactly
    angles = torch.unique(grid[:, 0])
    torch.testing.assert_close(angles, torch.arange(-30.0, 30.5, 2.0))
    for col in (1, 2):
        torch.testing.assert_close(torch.unique(grid[:, col]),
                                   torch.tensor([-3.0, -1.5, 0.0, 1.5, 3.0]))
    assert RotationTranslation().contains_params(grid).all()


def test_grid_sizes_and_zero_budgets():
    assert RotationTranslation(n_rot=3, n_trans=3).grid().shape == (27, 3)
    assert RotationTranslation(n_rot=1, n_trans=1).grid().tolist() == [[0.0, 0.0, 0.0]]
    # a zero budget is one transform per axis, not n copies of the same one
    for rt in (RotationTranslation(0.0, 0.0), RotationTranslation().scaled(0.0)):
        assert rt.grid().tolist() == [[0.0, 0.0, 0.0]]
    only_trans = RotationTranslation(0.0, 3.0).grid()
    assert only_trans.shape == (25, 3) and (only_trans[:, 0] == 0).all()
    only_rot = RotationTranslation(30.0, 0.0).grid()
    assert only_rot.shape == (31, 3) and (only_rot[:, 1:] == 0).all()
    assert RotationTranslation().grid(dtype=torch.float64).dtype == torch.float64


def test_identity_transform_returns_the_image(batch):
    x, _ = batch
    rt = RotationTranslation()
    out = rt.perturb(x, rt.zero(x))
    assert torch.equal(out, x)


def test_transforms_move_pixels_as_promised():
    g = _gen()
    x = torch.rand(2, 1, 28, 28, generator=g)
    rt = RotationTranslation(max_rot=90.0, max_trans=5.0)
    # one whole pixel of translation is a one-pixel shift (interior exact, zero fill at the edge)
    out = rt.perturb(x, torch.tensor([[0.0, 1.0, 0.0]] * 2))
    left, right = x[..., 1:], x[..., :-1]
    assert torch.allclose(out[..., :-1], left, atol=1e-5) or torch.allclose(
        out[..., 1:], right, atol=1e-5)
    out = rt.perturb(x, torch.tensor([[0.0, 0.0, 2.0]] * 2))
    assert torch.allclose(out[..., :-2, :], x[..., 2:, :], atol=1e-5) or torch.allclose(
        out[..., 2:, :], x[..., :-2, :], atol=1e-5)
    # 90 degrees is a quarter turn of the pixel grid
    out = rt.perturb(x, torch.tensor([[90.0, 0.0, 0.0]] * 2))
    turns = [torch.rot90(x, k, dims=(2, 3)) for k in (1, -1)]
    assert any(torch.allclose(out, t, atol=1e-4) for t in turns)
    # extreme transforms stay in [0, 1]
    params = torch.tensor([[90.0, 5.0, -5.0], [-37.0, -2.3, 4.9]])
    out = rt.perturb(torch.ones(2, 1, 28, 28), params)
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6


# ---------------------------------------------------------------------------------- grid_attack


def _loss(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def test_grid_attack_is_exhaustive_and_within_budget(standard_model, batch):
    x, y = batch[0][:6], batch[1][:6]
    rt = RotationTranslation(max_rot=20.0, max_trans=2.0, n_rot=5, n_trans=3)
    grid = rt.grid()
    # tiny max_batch forces the search through many chunks
    res = grid_attack(standard_model, x, y, rt, max_batch=7, early_stop=False)
    assert rt.contains_params(res.params).all()
    assert all((grid == p).all(dim=1).any() for p in res.params)  # chosen from the grid
    torch.testing.assert_close(res.x_adv, rt.perturb(x, res.params))
    assert torch.equal(res.success, standard_model(res.x_adv).argmax(1) != y)
    # brute force: nothing in the grid beats the choice (misclassified first, then loss)
    for i in range(x.shape[0]):
        xs = rt.perturb(x[i:i + 1].expand(len(grid), -1, -1, -1), grid)
        ys = y[i].expand(len(grid))
        with torch.no_grad():
            logits = standard_model(xs)
        wrong = logits.argmax(1) != ys
        losses = F.cross_entropy(logits, ys, reduction="none")
        assert bool(res.success[i]) == bool(wrong.any())
        if not wrong.any():
            assert res.loss[i] >= losses.max() - 1e-4
    # early stopping changes the work, not who is fooled
    fast = grid_attack(standard_model, x, y, rt, max_batch=7, early_stop=True)
    assert torch.equal(fast.success, res.success)


def test_grid_attack_default_is_the_paper_grid(standard_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    res = grid_attack(standard_model, x, y)
    assert RotationTranslation().contains_params(res.params).all()
    assert res.success.float().mean() >= 0.75  # a standard CNN is not rotation-robust
    assert (res.x_adv >= 0).all() and (res.x_adv <= 1 + 1e-6).all()


def test_random_attack(standard_model, batch):
    x, y = batch
    rt = RotationTranslation()
    res = random_attack(standard_model, x, y, rt, k=8, generator=_gen())
    assert res.params.shape == (x.shape[0], 3)
    assert rt.contains_params(res.params).all()
    assert (res.params != 0).all()  # random, not the identity
    torch.testing.assert_close(res.x_adv, rt.perturb(x, res.params))
    assert torch.equal(res.success, standard_model(res.x_adv).argmax(1) != y)
    # the worst of k: never better for the model than the first single try
    single = random_attack(standard_model, x, y, rt, k=1, generator=_gen())
    assert (res.success | ~single.success).all()
    same = ~res.success & ~single.success
    assert (res.loss[same] >= single.loss[same] - 1e-5).all()
    # reproducible with a generator, and it leaves the global RNG alone
    state = torch.get_rng_state()
    again = random_attack(standard_model, x, y, rt, k=8, generator=_gen())
    assert torch.equal(again.params, res.params)
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError):
        random_attack(standard_model, x, y, rt, k=0)
    with pytest.raises(TypeError):
        random_attack(standard_model, x, y, Linf(0.3))


# ------------------------------------------------------------------------------- spatial affine


def test_affine_grid_attack_within_scaled_budgets(standard_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    rt = RotationTranslation(n_rot=5, n_trans=3)
    threat = Affine(rt, Linf(0.3), 0.5)
    res = affine_grid_attack(standard_model, x, y, threat, steps=5, random_start=True,
                             generator=_gen())
    params, noise = res.params
    srt, slin = threat.parts
    assert srt.contains_params(params).all()
    assert all((srt.grid() == p).all(dim=1).any() for p in params)
    assert threat.contains_parts(x, res.params).all()
    assert (noise.abs() <= 0.15 + 1e-6).all()
    torch.testing.assert_close(res.x_adv, threat.perturb(x, res.params))
    assert torch.equal(res.success, standard_model(res.x_adv).argmax(1) != y)
    # stronger than either half-budget part alone
    only_rt = grid_attack(standard_model, x, y, srt)
    assert res.success.sum() >= only_rt.success.sum()
    with pytest.raises(TypeError):
        affine_grid_attack(standard_model, x, y, Affine(Linf(0.3), L1(10.0)))


def test_affine_weights_0_and_1_reduce_to_single_threats(standard_model, batch):
    x, y = batch[0][:8], batch[1][:8]
    rt = RotationTranslation(n_rot=5, n_trans=3)
    # weight 1: all rotation-translation, no noise -> the grid attack
    res = affine_grid_attack(standard_model, x, y, Affine(rt, Linf(0.3), 1.0), steps=3)
    grid = grid_attack(standard_model, x, y, rt)
    assert torch.equal(res.success, grid.success)
    assert (res.params[1] == 0).all()
    # weight 0: no transform, all noise -> PGD on the l_inf threat alone (one identity transform)
    res = affine_grid_attack(standard_model, x, y, Affine(rt, Linf(0.2), 0.0), steps=5)
    assert (res.params[0] == 0).all()
    alone = pgd(standard_model, x, y, Linf(0.2), steps=5, random_start=False)
    assert torch.equal(res.success, alone.success)
    torch.testing.assert_close(res.x_adv, alone.x_adv, atol=1e-6, rtol=0)
    # l_p affine with weight 1: PGD stays inside the first threat
    lp = pgd(standard_model, x, y, Affine(Linf(0.1), L1(10.0), 1.0), steps=4, generator=_gen())
    assert Linf(0.1).contains(x, lp.x_adv).all()
    assert (lp.params[1] == 0).all()
