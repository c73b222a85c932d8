"""One epoch of a training run: batches, attacks, optimiser steps, counts, mid-epoch stops.

Every process takes its share of each global batch (``Dist``), attacks it with the recipe's
strategy and steps the optimiser; the counts of every process are summed in one all-reduce per
batch, which also carries the first process's decision to checkpoint or stop.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from .weights import seeded_generator

__all__ = ["accumulate", "epoch_start", "run_epoch", "train_step"]


def epoch_start(run, epoch: int, n: int, partial: dict | None):
    """The epoch's shuffle ``order`` (n,), its attack and choice generators and its running sums
    (fresh, or those of the mid-epoch checkpoint ``partial``)."""
    recipe, dist, dev = run.recipe, run.dist, run.dev
    order = torch.randperm(n, generator=seeded_generator(recipe.seed, epoch)).to(dev)
    agen = seeded_generator(recipe.seed, epoch, 1 + dist.rank, device=dev)
    cgen = seeded_generator(recipe.seed, epoch, 0)
    sums = {"loss": 0.0, "clean": 0.0, "seen": 0.0, "seconds": 0.0}
    rob: dict[str, list[float]] = {}
    if partial:
        agen.set_state(partial["_gens"][0])
        cgen.set_state(partial["_gens"][1])
        sums, rob = partial["sums"], partial["rob"]
    return order, agen, cgen, sums, rob


def train_step(run, x, y, order, epoch: int, i: int, per_epoch: int, agen, cgen):
    """Attack and learn from this process's share of global batch ``i``.

    Returns (the strategy's batch, the labels yb (B,), the loss, the count of clean hits).
    """
    recipe, dist, fmt, model = run.recipe, run.dist, run.fmt, run.model
    local_bs = recipe.batch_size // dist.world
    it = epoch * per_epoch + i
    glob = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
    idx = glob[dist.rank * local_bs:(dist.rank + 1) * local_bs]
    xb = x[idx].contiguous(memory_format=fmt)
    yb = y[idx]
    scale = recipe.eps_scale_at(it, per_epoch)
    batch = run.strategy(model, xb, yb, scale=scale, generator=agen, choice_generator=cgen)
    for g in run.opt.param_groups:
        g["lr"] = recipe.lr_at(it, per_epoch)
    logits = run.net(batch.x.contiguous(memory_format=fmt))
    loss = F.cross_entropy(logits, batch.y)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    with torch.no_grad():
        if run.strategy.name == "standard":
            clean = (logits.argmax(1) == yb).sum()
        else:  # clean accuracy on a slice: the progress bar need not cost a pass
            k = min(32, yb.numel())
            clean = (model(xb[:k]).argmax(1) == yb[:k]).sum() * (yb.numel() / k)
    return batch, yb, loss, clean


def accumulate(run, batch, yb, loss, clean, due: bool, late: bool, sums: dict, rob: dict):
    """Add one batch's counts of every process to ``sums`` and ``rob`` (and the strategy's
    running robustness); returns (checkpoint now, stop now), as the first process decided."""
    # the first process's clock decides for every process (one all-reduce per batch)
    vals = [loss.detach() * yb.numel(), clean, yb.numel(), float(due and run.main),
            float(late and run.main)]
    for c, t in batch.robust.values():
        vals += [c, t]
    reduced = run.dist.sum([float(v) for v in vals], run.dev)
    sums["loss"] += reduced[0]
    sums["clean"] += reduced[1]
    sums["seen"] += reduced[2]
    batch_rob = {}
    mid, stop = reduced[3] > 0, reduced[4] > 0
    for j, name in enumerate(batch.robust):
        c, t = reduced[5 + 2 * j], reduced[6 + 2 * j]
        acc = rob.setdefault(name, [0.0, 0.0])
        acc[0] += c
        acc[1] += t
        batch_rob[name] = (c, t)
    run.strategy.update_running(batch_rob)
    return mid, stop


def run_epoch(run, epoch, first, partial, x, y, per_epoch, show, checkpoint_every, t_call,
              stop_after, stop_iters, done_before):
    """Epoch ``epoch`` of ``run`` from batch ``first`` on (x (N, C, H, W), y (N,)).

    Checkpoints every ``checkpoint_every`` seconds; stops (checkpointed) once ``stop_after``
    seconds since ``t_call`` or ``stop_iters`` batches of this call have passed. Returns (the
    epoch's history dict, the batches it ran), or None when it stopped mid-epoch.
    """
    from tqdm.auto import tqdm

    recipe = run.recipe
    order, agen, cgen, sums, rob = epoch_start(run, epoch, x.shape[0], partial)
    t0, t_saved = time.time() - sums["seconds"], time.time()
    run.model.train()
    bar = tqdm(range(first, per_epoch), disable=not show, leave=False, mininterval=1.0,
               desc=f"{recipe.name} {epoch + 1}/{recipe.epochs}", total=per_epoch,
               initial=first)
    for i in bar:
        batch, yb, loss, clean = train_step(run, x, y, order, epoch, i, per_epoch, agen, cgen)
        now, n_done = time.time(), done_before + i + 1 - first
        due = checkpoint_every is not None and now - t_saved >= checkpoint_every
        late = (stop_after is not None and now - t_call >= stop_after) or (
            stop_iters is not None and n_done >= stop_iters)
        mid, stop = accumulate(run, batch, yb, loss, clean, due, late, sums, rob)
        if show:
            post = {"clean": f"{100 * sums['clean'] / sums['seen']:.1f}"}
            post.update({k: f"{100 * c / max(t, 1):.1f}" for k, (c, t) in rob.items()})
            bar.set_postfix(post, refresh=False)
        if (stop or mid) and i + 1 < per_epoch:
            sums["seconds"] = now - t0
            run.save(epoch, i + 1, {"sums": sums, "rob": rob, "_gens": [agen, cgen]})
            t_saved = now
            if not stop:
                run.record(f"checkpoint: epoch {epoch + 1}, batch {i + 1}/{per_epoch}, "
                           f"{sums['seconds']:.0f}s into the epoch")
            if stop:
                bar.close()
                run.record(f"stopped in epoch {epoch + 1} after batch {i + 1}/{per_epoch}; "
                           "checkpointed, resume to continue")
                return None
    bar.close()
    run.model.eval()
    h = {
        "epoch": epoch + 1,
        "seconds": time.time() - t0,
        "loss": sums["loss"] / sums["seen"],
        "clean": sums["clean"] / sums["seen"],
        "robust": {k: c / max(t, 1) for k, (c, t) in rob.items()},
        "lr": recipe.lr_at((epoch + 1) * per_epoch, per_epoch),
    }
    return h, per_epoch - first
