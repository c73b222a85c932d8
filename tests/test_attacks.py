"""PGD / FGSM: strength on real MNIST, bookkeeping, and what attacks must leave alone."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from advlab.attacks import FGSM, PGD, affine_grid_attack, fgsm, grid_attack, pgd, random_attack
from advlab.threats import L1, L2, Affine, Linf, RotationTranslation

N = 40  # real-MNIST examples for the strength tests (kept small: CPU, 2 cores)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def tiny_cnn(channels: int = 1, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10)
    )


@pytest.fixture(scope="module")
def small_batch(mnist_test):
    x, y = mnist_test
    return x[:N], y[:N]


@pytest.fixture
def tiny():
    m = tiny_cnn()
    m(torch.zeros(1, 1, 28, 28))  # materialise the lazy layer
    return m.eval()


class Scaled(nn.Module):
    """The same classifier with logits multiplied by a power of two (exact in floating point)."""

    def __init__(self, model, scale):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x):
        return self.model(x) * self.scale


def _acc(res) -> float:
    return 1 - res.success.float().mean().item()


# ----------------------------------------------------------------------------- strength (MNIST)


def test_pgd_linf_breaks_a_standard_cnn(standard_model, small_batch):
    x, y = small_batch
    clean = (standard_model(x).argmax(1) == y).float().mean().item()
    assert clean >= 0.9
    res = pgd(standard_model, x, y, Linf(0.3), steps=20, generator=_gen())
    assert _acc(res) <= 0.05
    assert Linf(0.3).contains(x, res.x_adv).all()
    # the attack's own success agrees with the model on its outputs
    assert torch.equal(res.success, standard_model(res.x_adv).argmax(1) != y)


@pytest.mark.parametrize(
    "threat, steps, limit",
    [(L2(2.0), 20, 0.6), (L1(10.0), 25, 0.65)],
    ids=["l2", "l1"],
)
def test_pgd_l2_l1_are_strong(standard_model, small_batch, threat, steps, limit):
    x, y = small_batch[0][:24], small_batch[1][:24]
    res = pgd(standard_model, x, y, threat, steps=steps, generator=_gen())
    assert threat.contains(x, res.x_adv).all()
    acc = _acc(res)
    assert acc <= limit
    # far stronger than random noise of the same size
    noise = pgd(standard_model, x, y, threat, steps=0, generator=_gen())
    assert acc <= _acc(noise) - 0.3


def test_rt_grid_breaks_a_standard_cnn(standard_model, small_batch):
    x, y = small_batch
    res = grid_attack(standard_model, x, y)
    assert _acc(res) <= 0.2
    assert RotationTranslation().contains_params(res.params).all()


def test_l2_attack_ignores_the_logit_scale(standard_model, small_batch):
    """Scaling logits by 2**-45 scales every gradient exactly; steepest-ascent steps must not care.

    With a norm floor in the l_2 step (1e-6 or 1e-12), the scaled model's tiny gradients give
    no step at all and the model looks robust.
    """
    x, y = small_batch[0][:8], small_batch[1][:8]
    scaled = Scaled(standard_model, 2.0**-45)
    for threat in (L2(2.0), Linf(0.1), L1(5.0)):
        a = pgd(standard_model, x, y, threat, steps=5, loss="margin", generator=_gen())
        b = pgd(scaled, x, y, threat, steps=5, loss="margin", generator=_gen())
        assert torch.equal(a.success, b.success), threat
        torch.testing.assert_close(a.x_adv, b.x_adv, atol=1e-5, rtol=0)


def test_targeted_pgd_reaches_targets(standard_model, small_batch):
    x, y = small_batch[0][:16], small_batch[1][:16]
    target = (y + 1) % 10
    res = pgd(standard_model, x, target, Linf(0.3), steps=20, targeted=True, generator=_gen())
    pred = standard_model(res.x_adv).argmax(1)
    assert torch.equal(res.success, pred == target)
    assert res.success.float().mean().item() >= 0.75
    r = pgd(standard_model, x, target, L2(4.0), steps=15, targeted=True, loss="margin",
            generator=_gen())
    assert torch.equal(r.success, standard_model(r.x_adv).argmax(1) == target)
    assert r.success.float().mean().item() >= 0.5


# ---------------------------------------------------------------------------- result bookkeeping


THREATS = [Linf(0.1), L2(1.0), L1(4.0, box_projection="clip"), Affine(L1(8.0), Linf(0.2), 0.5)]


def _check_consistent(model, x, y, threat, res):
    """x_adv, success, loss and params all describe the same point."""
    with torch.no_grad():
        logits = model(res.x_adv)
    assert torch.equal(res.success, logits.argmax(1) != y)
    torch.testing.assert_close(res.loss, F.cross_entropy(logits, y, reduction="none"),
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(threat.perturb(x, res.params), res.x_adv, atol=1e-6, rtol=0)
    if isinstance(threat, Affine):
        assert threat.contains_parts(x, res.params).all()
    else:
        assert threat.contains(x, res.x_adv).all()


@pytest.mark.parametrize("threat", THREATS, ids=lambda t: repr(t)[:40])
def test_restarts_never_make_results_worse(standard_model, small_batch, threat):
    x, y = small_batch[0][:12], small_batch[1][:12]
    one = pgd(standard_model, x, y, threat, steps=3, restarts=1, generator=_gen(3))
    many = pgd(standard_model, x, y, threat, steps=3, restarts=3, generator=_gen(3))
    assert (many.success | ~one.success).all()
    both_fail = ~one.success & ~many.success
    assert (many.loss[both_fail] >= one.loss[both_fail] - 1e-6).all()
    # and the bookkeeping across restarts keeps every field in step
    _check_consistent(standard_model, x, y, threat, many)
    _check_consistent(standard_model, x, y, threat, one)


def test_restarts_find_more_on_hard_examples(standard_model, small_batch):
    x, y = small_batch[0][:24], small_batch[1][:24]
    threat = Linf(0.1)
    one = pgd(standard_model, x, y, threat, steps=2, restarts=1, generator=_gen(1))
    many = pgd(standard_model, x, y, threat, steps=2, restarts=4, generator=_gen(1))
    assert many.success.sum() >= one.success.sum()
    assert torch.equal(many.success, standard_model(many.x_adv).argmax(1) != y)


def test_per_example_eps_and_zero_steps(tiny):
    g = _gen()
    x, y = torch.rand(6, 1, 28, 28, generator=g), torch.randint(0, 10, (6,), generator=g)
    eps = torch.tensor([0.0, 0.1, 0.0, 0.3, 0.05, 0.0])
    for threat in (Linf(eps), L2(eps * 10), L1(eps * 30)):
        res = pgd(tiny, x, y, threat, steps=3, generator=_gen())
        zero = eps == 0
        assert torch.equal(res.x_adv[zero], x[zero])
        assert threat.contains(x, res.x_adv).all()
    res = pgd(tiny, x, y, Linf(0.3), steps=0, random_start=False)
    assert torch.equal(res.x_adv, x)


def test_restarts_with_per_example_budgets_and_step_sizes(tiny):
    """Restarts run on the examples not yet fooled: per-example eps/step sizes must follow them."""
    g = _gen(4)
    x = torch.rand(6, 1, 28, 28, generator=g)
    with torch.no_grad():
        y = tiny(x).argmax(1)  # all correct at first
    eps = torch.tensor([0.0, 0.3, 0.0, 0.3, 0.0, 0.3])
    for threat in (Linf(eps), L1(eps * 40), Affine(Linf(eps), L2(eps * 10), 0.5)):
        res = pgd(tiny, x, y, threat, steps=3, restarts=3, generator=_gen())
        assert not res.success[eps == 0].any() and res.success[eps > 0].any()
        assert torch.equal(res.x_adv[eps == 0], x[eps == 0])
        _check_consistent(tiny, x, y, threat, res)
    sizes = torch.tensor([0.0, 0.1, 0.0, 0.1, 0.0, 0.1])
    res = pgd(tiny, x, y, Linf(0.3), steps=3, restarts=3, step_size=sizes, random_start=False)
    assert torch.equal(res.x_adv[sizes == 0], x[sizes == 0])
    assert res.success[sizes > 0].any()
    # the spatial affine attack also runs on shrinking subsets (early stop)
    rt = RotationTranslation(n_rot=3, n_trans=3)
    threat = Affine(rt, Linf(eps), 0.5)
    res = affine_grid_attack(tiny, x, y, threat, steps=2, random_start=True, generator=_gen())
    assert threat.contains_parts(x, res.params).all()
    assert (res.params[1][eps == 0] == 0).all()


def test_fgsm_is_one_signed_step(tiny):
    g = _gen(2)
    x, y = torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)
    xr = x.clone().requires_grad_()
    F.cross_entropy(tiny(xr), y, reduction="sum").backward()
    step = (x + 0.2 * xr.grad.sign()).clamp(0, 1)
    res = fgsm(tiny, x, y, 0.2)
    for i in range(8):  # the signed step, or x itself if the step lowered the loss
        assert torch.allclose(res.x_adv[i], step[i], atol=1e-6) or torch.equal(res.x_adv[i], x[i])
    assert torch.equal(FGSM(0.2)(tiny, x, y).x_adv, res.x_adv)
    assert torch.equal(PGD(Linf(0.2), steps=1, step_size=0.2, random_start=False)(tiny, x, y).x_adv,
                       res.x_adv)


# ------------------------------------------------------------------ what attacks leave untouched


class WithTrainState(nn.Module):
    """A model whose output depends on train/eval mode (dropout, batch norm)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 5, stride=2)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(4 * 12 * 12, 10)

    def forward(self, x):
        return self.fc(self.drop(F.relu(self.bn(self.conv(x)))).flatten(1))


def _all_attacks(model, x, y, gen=None):
    rt = RotationTranslation(n_rot=3, n_trans=3)
    yield pgd(model, x, y, Linf(0.1), steps=2, generator=gen)
    yield pgd(model, x, y, L2(1.0), steps=2, generator=gen)
    yield pgd(model, x, y, L1(5.0), steps=2, generator=gen)
    yield pgd(model, x, y, Affine(Linf(0.2), L1(8.0)), steps=2, generator=gen)
    yield fgsm(model, x, y, 0.1)
    yield grid_attack(model, x, y, rt)
    yield random_attack(model, x, y, rt, k=3, generator=gen)
    yield affine_grid_attack(model, x, y, Affine(rt, Linf(0.2)), steps=2, random_start=True,
                             generator=gen)


@pytest.mark.parametrize("training", [True, False])
def test_mode_requires_grad_and_buffers_are_restored(training):
    model = WithTrainState().train(training)
    model.conv.weight.requires_grad_(False)  # a partly frozen model
    flags = [p.requires_grad for p in model.parameters()]
    stats = model.bn.running_mean.clone()
    g = _gen()
    x, y = torch.rand(4, 1, 28, 28, generator=g), torch.randint(0, 10, (4,), generator=g)
    for res in _all_attacks(model, x, y, _gen()):
        assert model.training is training
        assert [p.requires_grad for p in model.parameters()] == flags
        assert all(p.grad is None for p in model.parameters())
        assert torch.equal(model.bn.running_mean, stats)  # eval mode inside: no stat updates
        assert not res.x_adv.requires_grad
    # also restored when the attack fails half-way (labels out of range are refused inside)
    with pytest.raises(ValueError):
        pgd(model, x, torch.full((4,), 12), Linf(0.1), steps=2)
    assert model.training is training
    assert [p.requires_grad for p in model.parameters()] == flags


def test_attacks_work_inside_no_grad(tiny):
    g = _gen()
    x, y = torch.rand(4, 1, 28, 28, generator=g), torch.randint(0, 10, (4,), generator=g)
    outside = list(_all_attacks(tiny, x, y, _gen(5)))
    with torch.no_grad():
        inside = list(_all_attacks(tiny, x, y, _gen(5)))
        assert not torch.is_grad_enabled()
    for a, b in zip(outside, inside, strict=True):
        assert torch.equal(a.x_adv, b.x_adv)


def test_generator_leaves_global_rng_alone(tiny):
    g = _gen()
    x, y = torch.rand(4, 1, 28, 28, generator=g), torch.randint(0, 10, (4,), generator=g)
    state = torch.get_rng_state()
    first = list(_all_attacks(tiny, x, y, _gen(7)))
    assert torch.equal(torch.get_rng_state(), state)
    again = list(_all_attacks(tiny, x, y, _gen(7)))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.x_adv, b.x_adv)
    other = pgd(tiny, x, y, L2(1.0), steps=1, generator=_gen(8))
    assert not torch.equal(other.x_adv, first[1].x_adv)


def test_pgd_object_without_generator_seeds_its_own(tiny):
    # evaluate_union calls its attacks without a generator: PGD must then be as reproducible as
    # APGD and Square (before, it drew its random start from the global RNG, and two trusted
    # evaluations of the same model could disagree by an image)
    g = _gen()
    x, y = torch.rand(6, 1, 28, 28, generator=g), torch.randint(0, 10, (6,), generator=g)
    for threat in (Linf(0.3), L2(2.0), L1(10.0)):
        state = torch.get_rng_state()
        a = PGD(threat, steps=2)(tiny, x, y)
        assert torch.equal(torch.get_rng_state(), state)
        torch.rand(3)  # moving the global RNG changes nothing
        b = PGD(threat, steps=2)(tiny, x, y)
        assert torch.equal(a.x_adv, b.x_adv)
        c = PGD(threat, steps=2, seed=1)(tiny, x, y)
        assert not torch.equal(a.x_adv, c.x_adv)


def test_fit_draws_a_new_random_start_per_batch(tiny):
    # fit passes one running generator to the attack: two batches of the same shape start from
    # different noise (an attack seeded per call would repeat it)
    from advlab.train.basic import fit

    starts = []

    def spy(model, x, y, generator=None):
        assert generator is not None, "fit called the attack without its generator"
        starts.append(torch.rand(1, generator=generator).item())
        return PGD(Linf(0.1), steps=1)(model, x, y, generator=generator)

    g = _gen()
    x, y = torch.rand(8, 1, 28, 28, generator=g), torch.randint(0, 10, (8,), generator=g)
    fit(tiny, x, y, epochs=1, batch_size=4, attack=spy)
    assert len(starts) == 2 and starts[0] != starts[1]


def test_float64_stays_float64(tiny):
    model = tiny.double()
    g = _gen()
    x = torch.rand(3, 1, 28, 28, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (3,), generator=g)
    for res in _all_attacks(model, x, y, _gen()):
        assert res.x_adv.dtype == torch.float64
        assert res.loss.dtype == torch.float64


def test_channels_last_stays_channels_last():
    model = tiny_cnn(channels=3)
    model(torch.zeros(1, 3, 28, 28))
    model.eval()
    g = _gen()
    x = torch.rand(3, 3, 28, 28, generator=g).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (3,), generator=g)
    for res in _all_attacks(model, x, y, _gen()):
        assert res.x_adv.is_contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------- refusals


def test_pgd_refuses_what_it_cannot_attack(tiny):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    with pytest.raises(TypeError, match="grid_attack"):
        pgd(tiny, x, y, RotationTranslation())
    with pytest.raises(TypeError):
        pgd(tiny, x, y, 0.3)
    with pytest.raises(ValueError):
        pgd(tiny, x, y, Linf(0.3), steps=-1)
    with pytest.raises(ValueError):
        pgd(tiny, x, y, Linf(0.3), restarts=0)
    with pytest.raises(ValueError, match="loss"):
        pgd(tiny, x, y, Linf(0.3), loss="hinge")
