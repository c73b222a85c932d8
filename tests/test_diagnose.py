"""diagnose: flags the deliberately masked model, raises no flag on a standard one."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import advlab
from advlab import L1, Linf, RotationTranslation
from advlab.diagnose import DiagnosisReport
from advlab.masking import masked_model

CHEAP = dict(n=100, steps=10, queries=200)
NAMES = {"logits", "deterministic", "gradients", "single-step", "noise", "more-iterations",
         "gradient-free", "unbounded"}


@pytest.fixture(scope="module")
def standard_report(standard_model, mnist_test):
    return advlab.diagnose(standard_model, mnist_test, Linf(0.3), **CHEAP)


@pytest.fixture(scope="module")
def masked_report(standard_model, mnist_test):
    return advlab.diagnose(masked_model(standard_model), mnist_test, Linf(0.3),
                           **{**CHEAP, "steps": 5})


def test_standard_model_raises_no_flag(standard_report):
    r = standard_report
    assert isinstance(r, DiagnosisReport)
    assert {c.name for c in r.checks} == NAMES
    assert r.flags == [], str(r)
    assert r.ok and "no flag" in str(r)
    assert set(r.accuracies) == {"clean", "attack", "single-step", "noise", "more-iterations",
                                 "gradient-free"}
    assert r.accuracies["attack"] <= 0.1  # the standard model is not robust, and PGD sees it
    assert r.eps_curve[-1] == (1.0, r.eps_curve[-1][1]) and r.eps_curve[-1][1] <= 0.05


def test_masked_model_is_flagged(masked_report):
    r = masked_report
    assert r.accuracies["attack"] >= 0.8  # what PGD alone would report
    assert r.accuracies["gradient-free"] <= r.accuracies["attack"] - 0.5
    assert {"gradients", "gradient-free", "unbounded"} <= set(r.flags), str(r)
    assert r["gradients"].verdict == "FLAG" and r["logits"].verdict == "ok"
    text = str(r)
    assert "FLAG" in text and "NOT trustworthy" in text and "BPDA" in text


class _Noisy(nn.Module):
    """A randomised model (its own generator, not the global RNG)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x):
        return self.model(x) + torch.randn(x.shape[0], 10, generator=self.gen)


def test_probabilities_and_randomness_are_flagged(standard_model, mnist_test):
    tiny = dict(n=20, steps=2, queries=5, noise_draws=1, eps_factors=())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the attacks warn about probabilities too
        probs = advlab.diagnose(nn.Sequential(standard_model, nn.Softmax(dim=1)), mnist_test,
                                L1(10.0), **tiny)
    assert "logits" in probs.flags
    noisy = advlab.diagnose(_Noisy(standard_model), mnist_test, Linf(0.3), **tiny)
    assert "deterministic" in noisy.flags and "logits" not in noisy.flags


def test_rejects_spatial_threats(standard_model, mnist_test):
    with pytest.raises(TypeError):
        advlab.diagnose(standard_model, mnist_test, RotationTranslation())
