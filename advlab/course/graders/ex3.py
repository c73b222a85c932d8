"""Exercise 3: an adversarial training loop, and the "max" and "avg" multi-perturbation strategies.

Everything runs on a tiny net and a few MNIST batches, so the grader can replay the student's
training step for step and compare the weights it ends with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import codec
from ..codec import AttackArg, ModelArg, OptimizerArg
from ..spec import (
    Call,
    Case,
    Exercise,
    Question,
    Verdict,
    close_verdict,
    number_verdict,
    type_verdict,
)
from .common import images, model_arg

# ---------------------------------------------------------------------------------------------
# The grader's reference answers


def ref_train_epoch(model, optimizer, batches, make_batch):
    """One epoch: build each training batch with make_batch, then one optimizer step on it."""
    model.train()
    losses = []
    for x, y in batches:
        x_tr, y_tr = make_batch(model, x, y)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x_tr), y_tr)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _per_example_losses(model, xs, y):
    with torch.no_grad():
        return torch.stack([F.cross_entropy(model(x), y, reduction="none") for x in xs])


def ref_max_strategy(model, x, y, attacks):
    """Per example, the adversarial example (over all attacks) with the highest loss."""
    xs = [attack(model, x, y) for attack in attacks.values()]
    best = _per_example_losses(model, xs, y).argmax(dim=0)
    stacked = torch.stack(xs)
    return stacked[best, torch.arange(len(x))], y


def ref_avg_strategy(model, x, y, attacks):
    """All attacks' adversarial examples, concatenated in the order of the dict."""
    xs = [attack(model, x, y) for attack in attacks.values()]
    return torch.cat(xs), y.repeat(len(xs))


def ref_union_accuracy(model, x, y, attacks):
    """Fraction of examples classified correctly both clean and under every attack."""
    with torch.no_grad():
        ok = model(x).argmax(1) == y
    for attack in attacks.values():
        x_adv = attack(model, x, y)
        with torch.no_grad():
            ok &= model(x_adv).argmax(1) == y
    return ok.double().mean().item()


def _reference(ref, call: Call):
    """Run a reference on freshly decoded copies of a call's inputs (models included)."""
    (args, kwargs), models = codec.decode(codec.encode((call.args, call.kwargs)))
    return ref(*args, **kwargs), codec.model_states(models)


# ---------------------------------------------------------------------------------------------
# Cases

ATTACK_SETS = {
    "two": {"linf": AttackArg("linf_fgsm", {"eps": 0.1}), "l2": AttackArg("l2_fgm", {"eps": 1.5})},
    "three": {
        "linf": AttackArg("linf_fgsm", {"eps": 0.2}),
        "l2": AttackArg("l2_fgm", {"eps": 2.0}),
        "linf_small": AttackArg("linf_fgsm", {"eps": 0.05}),
    },
}
ATTACK_TEXT = {
    "two": "attacks = {linf: FGSM eps=0.1, l2: FGM eps=1.5}",
    "three": "attacks = {linf: FGSM eps=0.2, l2: FGM eps=2, linf_small: FGSM eps=0.05}",
}


def _batches(n_batches, size, offset):
    x, y = images(n_batches * size, offset)
    return [(x[i * size : (i + 1) * size], y[i * size : (i + 1) * size]) for i in range(n_batches)]


def _real_numbers(values, what: str) -> Verdict | None:
    """A "wrong type" verdict unless every entry is a finite real number (or such a 0-d or
    one-element real tensor); else None. Complex values are refused, not cast."""
    for i, v in enumerate(values):
        check = number_verdict(v, 0.0, float("inf"), f"entry {i} of {what}")
        if not check.passed:
            return check
    return None


def _weights_summary(state: dict) -> str:
    total = sum(v.double().pow(2).sum().item() for v in state.values()) ** 0.5
    return f"weights with overall l_2 norm {total:.6g}"


def _train_case(name, arch, trained, make_batch, momentum, describe, hidden=False):
    m = model_arg(arch, trained=trained)
    m = ModelArg(m.arch, m.state, key="model")
    call = Call(
        (m, OptimizerArg("model", lr=0.1, momentum=momentum), _batches(3, 16, 700), make_batch)
    )
    losses, states = _reference(ref_train_epoch, call)

    def judge(outcomes):
        out = outcomes[0]
        got = out.value
        if not isinstance(got, (list, tuple)) or len(got) != len(losses):
            return Verdict(
                False,
                f"a list of {len(losses)} losses (one per batch)",
                f"{type(got).__name__} of length {len(got) if hasattr(got, '__len__') else '?'}",
            )
        bad = _real_numbers(got, "the list of losses")
        if bad is not None:
            return bad
        got_t = torch.tensor([float(v.item() if isinstance(v, torch.Tensor) else v) for v in got])
        v = close_verdict(got_t, torch.tensor(losses), atol=1e-4, what="the list of losses")
        if not v.passed:
            v.note += (
                " (the losses per batch differ: is the loss computed on the adversarial batch?)"
            )
            return v
        ref_state, got_state = states["model"], out.after.get("model", {})
        for k, ref_w in ref_state.items():
            w = close_verdict(got_state.get(k), ref_w, atol=1e-5, what=f"parameter {k}")
            if not w.passed:
                return Verdict(
                    False,
                    _weights_summary(ref_state),
                    _weights_summary(got_state),
                    f"the weights after the epoch differ ({k}): one optimizer step "
                    f"per batch, gradients zeroed before each backward pass",
                )
        return Verdict(True)

    return Case(name, [call], judge, describe, 1.0, hidden)


def _train_cases():
    return [
        _train_case(
            "FGSM batches, plain SGD",
            "tiny_mlp",
            False,
            AttackArg("fgsm_batch", {"eps": 0.1}),
            0.0,
            "a fresh TinyMLP, SGD(lr=0.1), 3 batches of 16 MNIST images, make_batch = FGSM eps=0.1",
        ),
        _train_case(
            "clean batches, SGD with momentum",
            "tiny_mlp",
            True,
            AttackArg("clean_batch"),
            0.9,
            "the pretrained TinyMLP, SGD(lr=0.1, momentum=0.9), 3 batches of 16, "
            "make_batch = the clean batch",
        ),
        _train_case(
            "hidden: a convolutional model",
            "tiny_cnn",
            False,
            AttackArg("fgsm_batch", {"eps": 0.2}),
            0.9,
            "a fresh TinyCNN, SGD(lr=0.1, momentum=0.9), FGSM eps=0.2",
            hidden=True,
        ),
    ]


def _pair_judge(expected):
    ex_x, ex_y = expected

    def judge(outcomes):
        got = outcomes[0].value
        if not isinstance(got, (list, tuple)) or len(got) != 2:
            return Verdict(False, "a pair (x_train, y_train)", f"{type(got).__name__}")
        v = close_verdict(got[0], ex_x, atol=1e-5, what="x_train")
        if not v.passed:
            return v
        bad = type_verdict(got[1], tuple(ex_y.shape), "y_train", "int")
        if bad is not None:
            return bad
        if not torch.equal(got[1].long(), ex_y):
            return Verdict(
                False, f"y_train: {len(ex_y)} labels in the right order", "different labels"
            )
        return Verdict(True)

    return judge


def _strategy_case(name, ref, arch, trained, which, n, offset, hidden=False, points=1.0):
    call = Call((model_arg(arch, trained=trained), *images(n, offset), ATTACK_SETS[which]))
    expected, _ = _reference(ref, call)
    describe = (
        f"{'pretrained' if trained else 'fresh'} {arch}, {n} MNIST images, {ATTACK_TEXT[which]}"
    )
    return Case(name, [call], _pair_judge(expected), describe, points, hidden)


def _max_cases():
    return [
        _strategy_case("two attacks", ref_max_strategy, "tiny_mlp", True, "two", 16, 800),
        _strategy_case("three attacks", ref_max_strategy, "tiny_mlp", True, "three", 16, 816),
        _strategy_case(
            "hidden: a convolutional model",
            ref_max_strategy,
            "tiny_cnn",
            False,
            "two",
            16,
            832,
            hidden=True,
        ),
    ]


def _avg_cases():
    return [
        _strategy_case("two attacks", ref_avg_strategy, "tiny_mlp", True, "two", 8, 900),
        _strategy_case(
            "hidden: three attacks",
            ref_avg_strategy,
            "tiny_mlp",
            True,
            "three",
            8,
            908,
            hidden=True,
        ),
    ]


def _union_case(name, which, n, offset, hidden=False):
    call = Call((model_arg("tiny_mlp"), *images(n, offset), ATTACK_SETS[which]))
    expected, _ = _reference(ref_union_accuracy, call)

    def judge(outcomes):
        return number_verdict(outcomes[0].value, expected, 1e-6, "the union accuracy")

    describe = f"pretrained TinyMLP, {n} MNIST images, {ATTACK_TEXT[which]}"
    return Case(name, [call], judge, describe, 1.0, hidden)


def _union_cases():
    return [
        _union_case("two attacks", "two", 64, 1000),
        _union_case("hidden: three attacks", "three", 64, 1064, hidden=True),
    ]


EXERCISE = Exercise(
    name="ex3",
    title="Adversarial training: the loop, and the max and avg strategies",
    notebook="ex3_adversarial_training.ipynb",
    questions=[
        Question(
            "ex3.train_epoch",
            "train_epoch",
            "An adversarial training loop",
            "for each batch: build (x_train, y_train) with make_batch first, then zero the "
            "gradients, compute the cross-entropy on (x_train, y_train), backward, step; "
            "return the loss of every batch as floats",
            _train_cases,
        ),
        Question(
            "ex3.max_strategy",
            "max_strategy",
            'The "max" strategy',
            "run every attack, compute each example's loss under each (reduction='none'), "
            "and keep per example the adversarial image with the largest loss",
            _max_cases,
        ),
        Question(
            "ex3.avg_strategy",
            "avg_strategy",
            'The "avg" strategy',
            "concatenate the adversarial batches of all attacks in the order of the dict, "
            "and repeat the labels to match",
            _avg_cases,
        ),
        Question(
            "ex3.union_accuracy",
            "union_accuracy",
            "Accuracy against the union",
            "an example counts only if it is classified correctly clean and under every attack",
            _union_cases,
        ),
    ],
)
