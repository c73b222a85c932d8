"""Bad input gets a clear error (or a warning), at every entry point."""

from __future__ import annotations

import warnings
from functools import partial

import pytest
import torch
from torch import nn

from advlab.attacks import PGD, affine_grid_attack, fgsm, grid_attack, pgd, random_attack
from advlab.evaluate import evaluate_union
from advlab.threats import L1, L2, Affine, Linf, RotationTranslation

SMALL_RT = RotationTranslation(n_rot=3, n_trans=3)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 5, stride=3), nn.Flatten(), nn.Linear(2 * 8 * 8, 10))


def _eval_union(model, x, y):
    return evaluate_union(model, (x, y), {"linf": PGD(Linf(0.1), steps=1)}, progress=False)


ENTRY_POINTS = {
    "pgd": lambda m, x, y: pgd(m, x, y, Linf(0.1), steps=1),
    "pgd_l1": lambda m, x, y: pgd(m, x, y, L1(2.0), steps=1),
    "fgsm": lambda m, x, y: fgsm(m, x, y, 0.1),
    "grid": lambda m, x, y: grid_attack(m, x, y, SMALL_RT),
    "random": lambda m, x, y: random_attack(m, x, y, SMALL_RT, k=2),
    "affine_grid": lambda m, x, y: affine_grid_attack(m, x, y, Affine(SMALL_RT, Linf(0.2)),
                                                      steps=1),
    "evaluate": _eval_union,
}
entry_points = pytest.mark.parametrize("run", list(ENTRY_POINTS.values()), ids=list(ENTRY_POINTS))


@pytest.fixture
def xy():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 1, 28, 28, generator=g), torch.tensor([0, 3, 7, 9])


# ------------------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("make", [Linf, L2, L1], ids=["linf", "l2", "l1"])
@pytest.mark.parametrize(
    "eps, msg",
    [(-0.1, ">= 0"), (float("nan"), "finite"), (float("inf"), "finite"),
     (torch.tensor([0.1, -0.1]), ">= 0"), (torch.tensor([0.1, float("nan")]), "finite"),
     (torch.ones(2, 2), "1-D")],
)
def test_bad_budgets_are_refused(make, eps, msg):
    with pytest.raises(ValueError, match=msg):
        make(eps)


def test_bad_threat_settings_are_refused():
    with pytest.raises(ValueError, match="max_rot"):
        RotationTranslation(max_rot=-1.0)
    with pytest.raises(ValueError, match="max_trans"):
        RotationTranslation(max_trans=float("nan"))
    with pytest.raises(ValueError):
        RotationTranslation(n_rot=0)
    with pytest.raises(ValueError, match="percentile"):
        L1(10.0, q=100.0)
    with pytest.raises(ValueError, match="box_projection"):
        L1(10.0, box_projection="round")
    for w in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="weight"):
            Affine(Linf(0.3), L2(2.0), w)
    with pytest.raises(ValueError, match="first"):
        Affine(Linf(0.3), RotationTranslation())
    with pytest.raises(TypeError):
        Affine(0.3, 2.0)
    with pytest.raises(ValueError):
        Linf(0.3).scaled(float("nan"))


def test_bad_step_sizes_and_per_example_budgets(xy):
    x, y = xy
    m = _model()
    for bad in (-0.1, float("nan"), torch.tensor([0.1, 0.1, -0.1, 0.1])):
        with pytest.raises(ValueError, match="step_size"):
            pgd(m, x, y, Linf(0.1), steps=1, step_size=bad)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        pgd(m, x, y, Linf(torch.tensor([0.1, 0.2])), steps=1)
    with pytest.raises(ValueError, match="eps"):
        fgsm(m, x, y, -0.3)


# -------------------------------------------------------------------------------------- images


@entry_points
@pytest.mark.parametrize(
    "transform",
    [lambda x: x * 255, lambda x: (x - 0.1307) / 0.3081, lambda x: x - 1e-3],
    ids=["0-255", "normalised", "slightly-negative"],
)
def test_images_outside_the_box_are_refused(run, transform, xy):
    x, y = xy
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run(_model(), transform(x), y)


@entry_points
def test_nan_images_are_refused(run, xy):
    x, y = xy
    x = x.clone()
    x[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        run(_model(), x, y)


@entry_points
def test_integer_images_are_refused(run, xy):
    x, y = xy
    with pytest.raises(TypeError, match="float"):
        run(_model(), (x * 255).to(torch.uint8), y)


@entry_points
def test_empty_batches_are_refused(run, xy):
    x, y = xy
    with pytest.raises(ValueError):
        run(_model(), x[:0], y[:0])


# -------------------------------------------------------------------------------------- labels


@entry_points
@pytest.mark.parametrize(
    "labels",
    [lambda y: y[:, None], lambda y: y[:-1], lambda y: nn.functional.one_hot(y, 10)],
    ids=["column", "short", "one-hot"],
)
def test_labels_of_the_wrong_shape_are_refused(run, labels, xy):
    x, y = xy
    with pytest.raises(ValueError, match="shape|examples"):
        run(_model(), x, labels(y))


@entry_points
@pytest.mark.parametrize("bad", [10, -1, 255])
def test_labels_out_of_range_are_refused(run, bad, xy):
    x, y = xy
    y = y.clone()
    y[2] = bad
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        run(_model(), x, y)


@entry_points
@pytest.mark.parametrize("dtype", [torch.float32, torch.bool, torch.int32, torch.uint8])
def test_labels_of_the_wrong_dtype_are_refused(run, dtype, xy):
    """Only int64 class indices; anything else fails early with a message saying so."""
    x, y = xy
    with pytest.raises(TypeError, match="int64"):
        run(_model(), x, (y % 2).to(dtype))


# ---------------------------------------------------------------------------------------- model


class Probabilities(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _model()

    def forward(self, x):
        return self.net(x).softmax(dim=1)


@entry_points
def test_a_model_returning_probabilities_warns(run, xy):
    x, y = xy
    with pytest.warns(UserWarning, match="probabilities"):
        run(Probabilities(), x, y)


def test_logits_and_log_probabilities_do_not_warn(xy):
    x, y = xy
    log_probs = nn.Sequential(_model(), nn.LogSoftmax(dim=1))
    for m in (_model(), log_probs):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pgd(m, x, y, Linf(0.1), steps=1)


@entry_points
def test_mismatched_devices_are_refused(run, xy):
    x, y = xy
    model = _model().to("meta")  # a second device that exists on every machine
    with pytest.raises(ValueError, match="device"):
        run(model, x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@entry_points
def test_mismatched_cuda_devices_are_refused(run, xy):
    x, y = xy
    with pytest.raises(ValueError, match="device"):
        run(_model().cuda(), x, y)


def test_wrong_argument_types(xy):
    x, y = xy
    m = _model()
    with pytest.raises(TypeError):
        pgd(m, x.numpy(), y, Linf(0.1))
    with pytest.raises(TypeError, match="RotationTranslation"):
        grid_attack(m, x, y, Linf(0.1))
    with pytest.raises(TypeError):
        evaluate_union(m, (x, y), {"rt": partial(grid_attack, threat=L2(1.0))}, progress=False)


# ------------------------------------------------- shapes, dtypes, budgets, attacks (issue 17)


def _cnn() -> nn.Module:
    """A real MNIST CNN (untrained weights do not matter for input checks)."""
    from advlab.models import CompactCNN

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return CompactCNN().eval()


@pytest.mark.parametrize("name", ["pgd", "evaluate"])
@pytest.mark.parametrize(
    "shape, fix",
    [((4, 28, 28), "x.unsqueeze(1) gives (4, 1, 28, 28)"),
     ((4, 784), "x.view(-1, 1, 28, 28) gives (4, 1, 28, 28)"),
     ((4, 28, 28, 1), "x.permute(0, 3, 1, 2)")],
    ids=["no-channel", "flat", "channels-last"],
)
def test_images_of_the_wrong_shape_say_the_shape_and_the_fix(name, shape, fix, xy):
    x, y = xy
    with pytest.raises(ValueError) as info:
        ENTRY_POINTS[name](_cnn(), x.reshape(shape), y)
    msg = str(info.value)
    assert f"shape {shape}" in msg and "(B, C, H, W)" in msg and fix in msg
    assert "[8" not in msg and "(8," not in msg  # no trace of an internal x[:8] probe


@pytest.mark.parametrize("name", ["pgd", "evaluate"])
def test_float64_images_say_the_dtype_and_the_fix(name, xy):
    x, y = xy
    with pytest.raises(TypeError, match=r"torch\.float64 but the model's weights are "
                       r"torch\.float32; convert the images with x\.to\(torch\.float32\)"):
        ENTRY_POINTS[name](_cnn(), x.double(), y)


def test_evaluate_union_on_an_empty_batch_or_no_batches(xy):
    x, y = xy
    attacks = {"linf": PGD(Linf(0.1), steps=1)}
    with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 1, 28, 28\)\)"):
        evaluate_union(_cnn(), (x[:0], y[:0]), attacks, progress=False)
    with pytest.raises(ValueError, match="data held no batches"):
        evaluate_union(_cnn(), [], attacks, progress=False)


def test_evaluate_union_with_a_list_of_attacks_says_to_name_the_threats(xy):
    x, y = xy
    with pytest.raises(TypeError, match=r"attacks must map each threat name to its attacks.*"
                       r"got a list: wrap it as \{'linf': attacks\}"):
        evaluate_union(_cnn(), (x, y), [PGD(Linf(0.1), steps=1)], progress=False)
    with pytest.raises(ValueError, match="at least one threat"):
        evaluate_union(_cnn(), (x, y), {}, progress=False)


@pytest.mark.parametrize("eps", [3.0, 30, 255])
def test_linf_budget_larger_than_the_box_warns(eps):
    with pytest.warns(UserWarning, match=rf"Linf\(eps={eps:g}\) is larger than .* covers the "
                      r"whole \[0, 1\] box.*divide a budget in 0-255 units by 255"):
        Linf(eps)


def test_l2_and_l1_budgets_larger_than_the_box_warn_when_used(xy):
    x, y = xy
    m = _model()
    with pytest.warns(UserWarning, match=r"L2\(eps=510\) is larger than the l_2 diameter of "
                      r"784-pixel images \(28\)"):
        pgd(m, x, y, L2(510.0), steps=1)
    with pytest.warns(UserWarning, match=r"L1\(eps=2550\) is larger than the l_1 diameter"):
        pgd(m, x, y, L1(2550.0), steps=1)


def test_budgets_inside_or_exactly_at_the_box_do_not_warn(xy):
    x, y = xy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for threat in (Linf(0.3), Linf(1.0), L2(2.0), L2(28.0), L1(10.0), L1(784.0)):
            pgd(_model(), x, y, threat, steps=1)  # exactly the box: diagnose's unbounded check


def test_presets_include_lists_the_threats_that_exist():
    from advlab import presets

    with pytest.raises(ValueError, match=r"unknown threats \['linfinity'\] in include; the mnist "
                       r"threats are \['linf', 'l1', 'l2', 'rt'\]"):
        presets.attacks("mnist", "lite", include=["linfinity"])
