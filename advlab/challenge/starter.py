"""What students get: starter notebooks for both tracks, and local checks that score the same way.

``advlab challenge new`` writes ``student/attack.ipynb`` and ``student/defense.ipynb``. The
attack notebook holds a working baseline (FGSM) to improve and a local check cell tagged
``skip-grading`` (the grader does not run it); the defense notebook shows how to estimate a
model's union accuracy and save it with :func:`advlab.challenge.save_defense`.

:func:`try_attack` and :func:`try_defense` run the grader's own scoring in the student's process
on public images (the first MNIST test images, not the held-out draw), so what a student sees
locally is what the grader will do, on other images.
"""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .spec import Challenge, parse_threat

SKIP = {"tags": ["skip-grading"]}


def try_attack(attack, model, threat="linf:0.3", n: int = 200, batch_size: int = 100):
    """Score ``attack(model, x, y, threat)`` locally on the first ``n`` MNIST test images, with
    the grader's re-check (:func:`advlab.challenge.attack.recheck`); prints and returns it."""
    from ..data import mnist_tensors
    from .attack import entry_from, recheck

    threat = parse_threat(threat) if isinstance(threat, str) else threat
    x, y = mnist_tensors(n, train=False)
    values, notes = [], []
    for i in range(0, n, batch_size):
        try:
            out = attack(model, x[i:i + batch_size].clone(), y[i:i + batch_size].clone(), threat)
            values.append(getattr(out, "x_adv", out))
        except Exception as exc:
            values.append(None)
            notes.append(f"batch {i // batch_size + 1}: {type(exc).__name__}: {exc}")
    rc = recheck(model, x, y, threat, values, batch_size)
    e = entry_from("you", rc, threat, notes + rc.notes)
    print(e.tests[0]["output"])
    return e


def try_defense(model, threats=("linf", "l1", "l2"), n: int = 100, strength: str = "lite",
                clean_floor: float = 0.0, diagnose_n: int = 0):
    """Estimate the defense score locally on the first ``n`` MNIST test images with the
    ``strength`` attacks ("lite" by default: minutes on a CPU; the grader uses "strong")."""
    from ..data import mnist_tensors
    from .defense import evaluate_defense
    from .spec import DefenseTrack

    ch = Challenge("local", n=n, defense=DefenseTrack(
        threats=list(threats), strength=strength, clean_floor=clean_floor, diagnose_n=diagnose_n))
    x, y = mnist_tensors(n, train=False)
    e = evaluate_defense(model, ch.validate(), x, y, "you")
    print(e.summary())
    return e


def _model_line(ch: Challenge) -> str:
    zoo = ch.attack.model.get("zoo")
    if zoo:
        return f'model = advlab.zoo.load("{zoo}")  # the challenge model itself'
    return ('model = advlab.zoo.load("mnist-linf")  # a public stand-in: the challenge model is '
            f'a hidden {ch.attack.model["architecture"]}')


def attack_notebook(ch: Challenge) -> nbformat.NotebookNode:
    """The attack track's starter notebook."""
    threat = parse_threat(ch.attack.threat)
    lim = ch.attack.limits
    intro = f"""# {ch.name}: attack track

Break the model: write `{ch.attack.function}(model, x, y, threat)` that returns adversarial
images. The grader calls it on batches of up to {ch.attack.batch_size} held-out MNIST test
images: `x` (B, 1, 28, 28) float32 in [0, 1], `y` (B,) labels, `threat` = `{threat!r}`; the
model returns logits. Return `x_adv` with the shape and dtype of `x`.

How you are scored: the grader checks **every** returned image itself: inside the threat model
around its own clean image, inside [0, 1], finite. An image that fails, or a batch that raises,
times out or has the wrong shape or dtype, counts as the clean image. The grader's own copy of
the model classifies what is left; your score is the accuracy it keeps (**lower is better**).

Limits: {lim.call_timeout:g} s per call, {lim.memory_mb} MB of memory, no network, CPU only.
Submit this notebook as `{ch.attack.notebook}`."""
    setup = f"""import torch
import torch.nn.functional as F
import advlab
from advlab.challenge import try_attack

{_model_line(ch)}
threat = advlab.challenge.parse_threat("{ch.attack.threat}")"""
    baseline = f"""def {ch.attack.function}(model, x, y, threat):
    \"\"\"A baseline to beat: one FGSM step of size eps (l_inf). Replace it with your attack.\"\"\"
    x_adv = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    (grad,) = torch.autograd.grad(loss, x_adv)
    if threat.name == "linf":
        step = threat.eps * grad.sign()
    else:  # a scaled gradient, projected by the threat model itself
        step = grad
    delta = threat.project(step, x) if threat.name != "linf" else step
    return (x + delta).clamp(0, 1).detach()"""
    check = f"""# local check with the grader's own re-check (first 200 test images); not graded
try_attack({ch.attack.function}, model, threat, n=200)"""
    return new_notebook(cells=[new_markdown_cell(intro), new_code_cell(setup),
                               new_code_cell(baseline), new_code_cell(check, metadata=SKIP)])


def defense_notebook(ch: Challenge) -> nbformat.NotebookNode:
    """The defense track's starter notebook."""
    d = ch.defense
    archs = ", ".join(f"`{a}`" for a in d.architectures)
    how = ("the trusted attacks (`advlab.presets.trusted_attacks`: APGD, targeted APGD, "
           "targeted FAB, PGD with restarts for l_1 and the gradient-free Square Attack)"
           if d.strength == "strong"
           else f'the "{d.strength}" attacks')
    intro = f"""# {ch.name}: defense track

Train a model that nobody can break: it is evaluated under the **union** of
{', '.join(d.threats)} (the paper's MNIST budgets) with {how} on {ch.n} held-out test images.
Your score is the union accuracy (**higher is better**); the clean accuracy must be at least
{100 * d.clean_floor:.1f}% or the model is not ranked. `advlab.diagnose` looks for gradient
masking and flags it on the leaderboard: a masked gradient does not help, since the
gradient-free attack decides.

Architectures: {archs} (`quantized-*` puts `advlab.masking.Quantize` in front). Submit
`{d.file}` written by `advlab.challenge.save_defense` (safetensors; a `.pt` pickle is
refused)."""
    code = """import advlab
from advlab.challenge import save_defense, try_defense

model = advlab.zoo.load("mnist-max")  # a starting point; train your own with advlab.train"""
    check = f"""# a quick local estimate (weaker attacks, 100 images); not graded
try_defense(model, threats={tuple(d.threats)!r}, n=100, strength="lite")"""
    save = f"""save_defense(model, "{d.file}", architecture="compact-cnn")"""
    return new_notebook(cells=[new_markdown_cell(intro), new_code_cell(code),
                               new_code_cell(check, metadata=SKIP), new_code_cell(save)])
