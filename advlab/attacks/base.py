"""What every attack shares: input checks, a frozen model, losses, restarts and the result type.

An attack is a short function on this template::

    with attack_session(model, x, y) as x:       # input checks, model frozen, logits probed
        result = best_of_restarts(x.shape[0], x.device, restarts, run_once)
    return result                                  # AttackResult, per-example best kept

``run_once(todo, first)`` attacks the examples ``todo`` (``first``: all of them) and returns an
``AttackResult`` on them; ``best_of_restarts`` reruns it on the examples not yet fooled and keeps
the better point per example (``AttackResult.merge``). Perturbations may be tensors or tuples of
tensors (``Affine``): ``where``, ``take``, ``put`` and ``clone_perturbation`` handle both.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttackResult", "frozen", "check_inputs", "check_logits", "attack_session",
           "best_of_restarts", "per_example_loss", "misclassified", "better", "where", "take",
           "put", "clone_perturbation", "checked_step_size", "take_step_size",
           "own_generator", "ranked_others", "into_threat"]


@dataclass
class AttackResult:
    """What an attack returns.

    x_adv:   (B, C, H, W) adversarial inputs, in [0, 1] and in the threat model.
    success: (B,) bool, the attack's goal met at x_adv (misclassified; the target hit if targeted).
    loss:    (B,) the attack loss at x_adv (higher is better for the attacker).
    params:  the perturbation itself where x_adv alone does not tell it (transforms, affine parts).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    loss: torch.Tensor
    params: object = None

    def __iter__(self):  # x_adv, success = attack(...)
        return iter((self.x_adv, self.success))

    def merge(self, idx: torch.Tensor, other: AttackResult) -> None:
        """Keep, for each example ``idx[i]``, the better of this result and ``other``'s row i
        (success first, then the higher loss); in place."""
        upd = better(other.success, other.loss, self.success[idx], self.loss[idx])
        j = idx[upd]
        self.x_adv[j] = other.x_adv[upd]
        self.success[j], self.loss[j] = other.success[upd], other.loss[upd]
        if self.params is not None and other.params is not None:
            put(self.params, j, take(other.params, upd))


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode, parameters without grad, grad enabled for the input; all restored on exit."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield model
    finally:
        model.train(was_training)
        for p, flag in flags:
            p.requires_grad_(flag)


@contextlib.contextmanager
def attack_session(model: nn.Module, x: torch.Tensor, y: torch.Tensor, probe: bool = True):
    """Check the inputs, freeze the model (see ``frozen``) and, with ``probe``, check the logits
    of the first 8 examples; yields x detached. Everything is restored on exit."""
    check_inputs(model, x, y)
    x = x.detach()
    with frozen(model):
        if probe:
            check_logits(model(x[:8]), y)
        yield x


def best_of_restarts(n: int, device, restarts: int, run) -> AttackResult:
    """The per-example best of ``restarts`` runs on n examples.

    ``run(todo, first)`` attacks the examples ``todo`` ((m,) indices; ``first``: the first run,
    on all n) and returns an ``AttackResult`` on them. Later runs only attack the examples not
    yet successful (one device sync per restart, not per step); the result is the first run's,
    updated in place.
    """
    todo = torch.arange(n, device=device)
    best = None
    for r in range(restarts):
        res = run(todo, r == 0)
        if best is None:
            best = res
        else:
            best.merge(todo, res)
        if r + 1 < restarts:
            todo = (~best.success).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
    return best


def own_generator(generator: torch.Generator | None, seed: int, x: torch.Tensor):
    """``generator``, else a new one on x's device seeded with ``seed``: an attack object called
    without a generator gives the same result every call and leaves the global RNG alone."""
    if generator is not None:
        return generator
    return torch.Generator(device=x.device).manual_seed(seed)


def where(mask: torch.Tensor, new, old):
    """Per-example select for perturbations (B, ...) and tuples of them."""
    if isinstance(new, tuple):
        return tuple(where(mask, n, o) for n, o in zip(new, old, strict=True))
    return torch.where(mask.view(-1, *([1] * (new.dim() - 1))), new, old)


def take(value, idx: torch.Tensor):
    """Rows ``idx`` of a perturbation (or a tuple of them)."""
    if isinstance(value, tuple):
        return tuple(take(v, idx) for v in value)
    return value[idx]


def put(dest, idx: torch.Tensor, value) -> None:
    """dest[idx] = value for a perturbation (or a tuple of them), in place."""
    if isinstance(dest, tuple):
        for d, v in zip(dest, value, strict=True):
            put(d, idx, v)
    else:
        dest[idx] = value


def clone_perturbation(value):
    """A copy of a perturbation (or a tuple of them)."""
    if isinstance(value, tuple):
        return tuple(clone_perturbation(v) for v in value)
    return value.clone()


def checked_step_size(step_size, x: torch.Tensor):
    """A step size (float, (B,) tensor, or a tuple of them for ``Affine``) checked to be >= 0,
    tensors moved to x's device and dtype."""
    from ..threats import check_eps

    if isinstance(step_size, tuple):
        return tuple(checked_step_size(s, x) for s in step_size)
    check_eps(step_size, "step_size")
    if isinstance(step_size, torch.Tensor):
        return step_size.to(device=x.device, dtype=x.dtype)
    return step_size


def take_step_size(step_size, idx: torch.Tensor):
    """Per-example step sizes restricted to the examples ``idx`` (floats are kept)."""
    if isinstance(step_size, tuple):
        return tuple(take_step_size(s, idx) for s in step_size)
    if isinstance(step_size, torch.Tensor) and step_size.dim() == 1:
        return step_size[idx]
    return step_size


def _model_device(model: nn.Module):
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


def check_inputs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str = "y") -> None:
    """Clear errors for the usual mistakes. One device sync per call, not per step."""
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors")
    if not x.is_floating_point():
        raise TypeError(
            f"images must be floating point in [0, 1], got dtype {x.dtype}; "
            "convert uint8 images with x.float() / 255"
        )
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch (B, ...), got shape {tuple(x.shape)}")
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"{name} must have shape ({x.shape[0]},) (one class index per image), "
            f"got {tuple(y.shape)}"
        )
    if y.dtype != torch.int64:
        raise TypeError(
            f"{name} must hold int64 class indices, got dtype {y.dtype}; convert with .long()"
        )
    dev = _model_device(model)
    if dev is not None and (x.device != dev or y.device != dev):
        raise ValueError(
            f"model is on {dev} but x is on {x.device} and {name} on {y.device}; "
            "move them with .to(device) first"
        )
    weights = _model_dtype(model)
    if weights is not None and x.dtype != weights:
        raise TypeError(
            f"images are {x.dtype} but the model's weights are {weights}; convert the images "
            f"with x.to({weights}) (e.g. x.float() for float64 arrays from numpy)"
        )
    lo, hi = torch.aminmax(x.detach())
    if torch.isnan(lo) or lo < 0 or hi > 1:
        raise ValueError(
            f"images must lie in [0, 1] (got min {lo.item():.4g}, max {hi.item():.4g}); "
            "advlab models normalise inside, so pass raw pixels scaled to [0, 1]"
        )
    _check_shape(model, x)


def _model_dtype(model: nn.Module):
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return None


def _shape_hint(shape: tuple) -> str:
    """What to do with images of ``shape`` that the model refused."""
    if len(shape) == 3:
        return f"add the channel axis: x.unsqueeze(1) gives {(shape[0], 1, *shape[1:])}"
    side = math.isqrt(shape[-1]) if len(shape) == 2 else 0
    if side and side * side == shape[-1]:
        return f"flat images: x.view(-1, 1, {side}, {side}) gives {(shape[0], 1, side, side)}"
    if len(shape) == 4 and shape[-1] in (1, 3) and shape[1] not in (1, 3):
        return "channels last: x.permute(0, 3, 1, 2) puts the channels second"
    return "reshape them to what the model was trained on"


def _check_shape(model: nn.Module, x: torch.Tensor) -> None:
    """Two images through the model (eval mode, no grad): a clear error when they do not fit."""
    probe = x[:2]  # two: a single (1, H, W) image would pass as one unbatched image
    error = None
    try:
        with frozen(model), torch.no_grad():
            out = model(probe)
        fits = isinstance(out, torch.Tensor) and out.dim() == 2 and len(out) == len(probe)
    except RuntimeError as err:
        fits, error = False, err
    if not fits:
        raise ValueError(
            f"the model does not accept images of shape {tuple(x.shape)} (it must return "
            "(B, K) logits); images are batches (B, C, H, W) in [0, 1], e.g. (B, 1, 28, 28) "
            f"for MNIST: {_shape_hint(tuple(x.shape))}"
        ) from error


def check_logits(logits: torch.Tensor, y: torch.Tensor, name: str = "y") -> None:
    """Labels in range; warn when the model seems to return probabilities."""
    k = logits.shape[1]
    if (y < 0).any() or (y >= k).any():
        raise ValueError(f"{name} must be class indices in [0, {k - 1}] for this {k}-class model")
    sums = logits.detach().sum(dim=1)
    if (logits.detach() >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
        warnings.warn(
            "the model's outputs are non-negative and sum to 1: it looks like it returns "
            "probabilities. Attacks need logits (remove the final softmax); gradients through a "
            "saturated softmax vanish and make the model look robust when it is not.",
            stacklevel=3,
        )


def per_example_loss(logits: torch.Tensor, y: torch.Tensor, loss: str, targeted: bool):
    """(B,) loss the attacker maximises. ``loss`` is "ce" or "margin" (Carlini & Wagner)."""
    if loss == "ce":
        ce = F.cross_entropy(logits, y, reduction="none")
        return -ce if targeted else ce
    if loss == "margin":
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        return z_y - others if targeted else others - z_y
    raise ValueError(f"loss must be 'ce' or 'margin', got {loss!r}")


def misclassified(logits: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """(B,) bool: the attack's goal met."""
    pred = logits.argmax(dim=1)
    return pred == y if targeted else pred != y


def better(success, loss, best_success, best_loss):
    """(B,) bool: the new point beats the best so far (success first, then higher loss)."""
    return (success & ~best_success) | ((success == best_success) & (loss > best_loss))


def ranked_others(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B, K - 1) the classes other than y, highest logit first: a targeted attack's targets."""
    order = logits.argsort(dim=1, descending=True)
    keep = order != y[:, None]
    return order[keep].view(order.shape[0], -1)


def into_threat(threat, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
    """Guard against rounding: x_adv projected into the threat model around x and the box."""
    with torch.no_grad():
        return (x + threat.project(x_adv - x, x)).clamp(0, 1)
