"""The training engine: one loop for every strategy, on CPU or GPU, alone or data-parallel.

- Adam with a cosine learning rate computed from the iteration (so resuming needs no scheduler);
  eps warm-up: budgets grow linearly from 0 over ``recipe.warmup_epochs``.
- Reproducible: the model is initialised, the data shuffled and the random starts drawn from
  generators seeded by (seed, epoch, process); the global RNG is never reseeded. A resumed run
  gives the same weights as an uninterrupted one (same machine, same thread count).
- A checkpoint (``checkpoint.pt``, tensors and plain types only, read with weights_only=True)
  after every epoch; ``resume=True`` continues from it. The final weights go to
  ``model.safetensors``; one line per epoch to ``train.log``.
- Data-parallel under ``torchrun --nproc_per_node=N`` (DDP; gloo on CPU, nccl on GPU): every
  process takes 1/N of each global batch and attacks its own share.

Its parts: :mod:`.run` (a run's state, checkpoints and loop of epochs), :mod:`.epoch` (one
epoch's batches), :mod:`.monitor` (data, per-epoch monitor, log line), :mod:`.devices`
(device, data-parallel group) and :mod:`.weights` (seeded initialisation, safetensors); their
public names stay importable here.
"""

from __future__ import annotations

import os

import torch

from .devices import Dist, resolve_device
from .recipes import Recipe, get_recipe
from .run import Run, TrainResult
from .weights import init_model, save_weights

__all__ = ["TrainResult", "train", "init_model", "resolve_device", "save_weights"]


def train(
    recipe: Recipe | str,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    epochs: int | None = None,
    device: str | None = None,
    data: tuple[torch.Tensor, torch.Tensor] | None = None,
    test_data: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool | None = None,
    channels_last: bool = True,
    log=None,
    checkpoint_every: float | None = 600.0,
    stop_after: float | None = None,
    stop_after_iterations: int | None = None,
) -> TrainResult:
    """Train ``recipe`` (a ``Recipe`` or a name from ``RECIPES``).

    Args:
        out: folder for checkpoint.pt, model.safetensors, train.log (None: keep nothing).
        resume: continue from ``out/checkpoint.pt`` when it exists (also from a mid-epoch one).
        epochs: override ``recipe.epochs`` (the cosine schedule follows the new total).
        device: "cpu", "cuda", "cuda:1"...; default the GPU when present.
        data: (x (N, C, H, W) in [0, 1], y (N,)) instead of the recipe's training set.
        test_data: images for the per-epoch monitor (default the first ``recipe.monitor`` test
            images; none when ``recipe.monitor`` is 0 and no test_data is given).
        progress: tqdm bar per epoch (default: on a terminal, on the first process).
        log: a callable taking one line per epoch (default print on the first process).
        checkpoint_every: also checkpoint mid-epoch every this many seconds (also data-parallel:
            the first process's clock decides; each process keeps its random stream in
            ``checkpoint.rankN.pt``).
        stop_after, stop_after_iterations: checkpoint and return after this many seconds or
            iterations of this call (``result.finished`` is False); resume later with
            ``resume=True``. For time-boxed machines (data-parallel too: the first process's
            clock decides).
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if epochs is not None:
        recipe = recipe.with_(epochs=epochs)
    dev = resolve_device(device)
    dist = Dist(dev)
    try:
        return Run(recipe, out, dev, dist, channels_last, log).fit(
            resume, data, test_data, progress, checkpoint_every, stop_after,
            stop_after_iterations)
    finally:
        dist.close()
