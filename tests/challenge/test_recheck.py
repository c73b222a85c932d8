"""The attack track's re-check, in this process: an attack earns exactly what its valid inputs
earn, whatever else it returns (inputs outside the ball or the box, NaN, the clean images, the
labels, the wrong dtype, a failed batch)."""

from __future__ import annotations

import torch

from advlab.challenge.attack import recheck
from advlab.threats import L2, Linf

from .conftest import accuracy_on, student_pgd

BS = 16


def _per_batch(x_adv: torch.Tensor) -> list:
    return [x_adv[i:i + BS] for i in range(0, x_adv.shape[0], BS)]


def test_a_correct_attack_scores_the_accuracy_it_really_leaves(zoo_standard, small_images):
    x, y = small_images
    threat = Linf(0.3)
    x_adv = torch.cat([student_pgd()(zoo_standard, xb, yb, threat) for xb, yb in
                       zip(x.split(BS), y.split(BS), strict=True)])
    rc = recheck(zoo_standard, x, y, threat, _per_batch(x_adv), BS)
    assert rc.n_valid == rc.n == 48
    assert rc.accuracy_left == accuracy_on(zoo_standard, x_adv, y)
    assert rc.accuracy_left < rc.clean_accuracy - 0.5  # the standard model breaks under l_inf 0.3
    assert rc.clean_accuracy == accuracy_on(zoo_standard, x, y)


def test_invalid_inputs_earn_nothing_beyond_the_valid_ones(zoo_standard, small_images):
    x, y = small_images
    threat = Linf(0.3)
    good = student_pgd()(zoo_standard, x, y, threat)
    bad = good.clone()
    bad[0:8] = (x[0:8] + 0.5).clamp(0, 1)            # outside the l_inf ball
    bad[8:12] = float("nan")                          # NaN
    bad[12:16] = good[12:16] + 2.0                    # outside [0, 1] (and the ball)
    bad[16:20, :, 0, 0] = float("inf")                # one inf pixel each
    rc = recheck(zoo_standard, x, y, threat, _per_batch(bad), BS)
    counts = rc.counts()
    assert counts == {"outside_threat": 8, "not_finite": 8, "outside_box": 4, "valid": 28}
    expected = torch.cat([x[:20], good[20:]])         # the clean image where nothing is valid
    assert rc.accuracy_left == accuracy_on(zoo_standard, expected, y)
    assert rc.accuracy_left > accuracy_on(zoo_standard, good, y)


def test_clean_images_labels_and_wrong_types_score_the_clean_accuracy(zoo_standard, small_images):
    x, y = small_images
    threat = L2(2.0)
    clean = accuracy_on(zoo_standard, x, y)
    labels = [y[i:i + BS] for i in range(0, 48, BS)]
    cases = {
        "the clean images": (_per_batch(x.clone()), "valid"),
        "the labels": (labels, "wrong_shape"),
        "float64": ([b.double() for b in _per_batch(x)], "wrong_dtype"),
        "a list": ([b.tolist() for b in _per_batch(x)], "wrong_type"),
        "nothing (the call raised)": ([None, None, None], "no_result"),
    }
    for what, (values, reason) in cases.items():
        rc = recheck(zoo_standard, x, y, threat, values, BS)
        assert rc.accuracy_left == clean, what
        assert set(rc.reasons) == {reason}, what


def test_one_failed_batch_costs_only_its_own_images(zoo_standard, small_images):
    x, y = small_images
    threat = Linf(0.3)
    good = student_pgd()(zoo_standard, x, y, threat)
    values = _per_batch(good)
    values[1] = None  # the second call timed out
    rc = recheck(zoo_standard, x, y, threat, values, BS)
    assert rc.counts() == {"valid": 32, "no_result": 16}
    expected = torch.cat([good[:16], x[16:32], good[32:]])
    assert rc.accuracy_left == accuracy_on(zoo_standard, expected, y)


def test_a_point_just_inside_the_ball_counts_and_just_outside_does_not(zoo_standard, small_images):
    x, y = small_images
    x, y = x[:BS], y[:BS]
    threat = L2(2.0)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    direction = direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    mid = torch.full_like(x, 0.5)  # far from the box's faces: only the ball decides
    inside = recheck(zoo_standard, mid, y, threat, [mid + 1.999 * direction], BS)
    outside = recheck(zoo_standard, mid, y, threat, [mid + 2.01 * direction], BS)
    assert inside.n_valid == BS and outside.n_valid == 0
