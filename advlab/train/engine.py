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
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..models import build_model
from .recipes import Recipe, get_recipe

__all__ = ["TrainResult", "train", "init_model", "resolve_device", "save_weights"]

_CKPT = "checkpoint.pt"
_WEIGHTS = "model.safetensors"
_LOG = "train.log"
_BEST = "best.safetensors"


@dataclass
class TrainResult:
    """The trained model (eval mode, on its device) and one dict of numbers per epoch."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    out: Path | None = None
    finished: bool = True

    @property
    def seconds(self) -> float:
        return sum(h["seconds"] for h in self.history)


def resolve_device(device: str | None = None) -> torch.device:
    """``device`` if given, else the GPU when present, else the CPU (under torchrun: LOCAL_RANK)."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def init_model(arch: str, seed: int) -> nn.Module:
    """A fresh model initialised from ``seed`` without touching the caller's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch)


def _gen(seed: int, *keys: int, device="cpu") -> torch.Generator:
    s = seed
    for k in keys:
        s = (s * 1_000_003 + k + 1) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(s)


def save_weights(model: nn.Module, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """The model's state dict as safetensors (contiguous fp32 copies), with string metadata."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})


class _Dist:
    """Rank, world size and helpers; a no-op outside ``torchrun``."""

    def __init__(self, device: torch.device):
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owned = False
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owned = True
        if dist.is_available() and dist.is_initialized():
            self.world, self.rank = dist.get_world_size(), dist.get_rank()

    @property
    def active(self) -> bool:
        return self.world > 1

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if not self.active:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        return DDP(model, device_ids=ids)

    def sum(self, values: list[float], device) -> list[float]:
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        self.dist.all_reduce(t)
        return t.tolist()

    def barrier(self):
        if self.active:
            self.dist.barrier()

    def close(self):
        if self.owned:
            self.dist.destroy_process_group()


def _load_data(recipe: Recipe, data, train: bool, n):
    if data is not None:
        return data
    from ..data import dataset_tensors

    return dataset_tensors(recipe.dataset, n=n, train=train)


def _monitor(model, recipe: Recipe, test, device) -> dict:
    """Clean, per-threat and union accuracy on ``test`` under the "lite" attacks.

    l_p threats: APGD, PGD and the gradient-free Square Attack (few steps and queries), so that a
    model that learns to mask the training attack's gradients does not look robust in the log;
    rotation-translation: the coarse 11 x 3 x 3 grid. ``test_union``: the union of the recipe's
    threats. Still an upper bound (the published numbers use the "strong" attacks).
    """
    from ..evaluate import evaluate_union
    from ..presets import attacks

    x, y = (t.to(device) for t in test)
    names = sorted({a.threat for a in recipe.attacks})
    lp = [n for n in names if n != "rt"]
    stacks = attacks(recipe.dataset, "lite", include=lp) if lp else {}
    if "rt" in names:
        stacks.update(attacks(recipe.dataset, "fast", include=["rt"]))
    if not stacks:
        with torch.no_grad():
            return {"test_clean": (model(x).argmax(1) == y).float().mean().item()}
    res = evaluate_union(model, (x, y), stacks, keep_worst=False, progress=False)
    out = {"test_clean": res.clean_accuracy}
    out.update({f"test_{n}": res.accuracy(n) for n in stacks})
    out["test_union"] = res.union_accuracy
    return out


def _fmt(h: dict) -> str:
    parts = [f"epoch {h['epoch']}", f"{h['seconds']:.0f}s", f"loss {h['loss']:.4f}",
             f"clean {100 * h['clean']:.2f}%"]
    parts += [f"rob_{k} {100 * v:.2f}%" for k, v in h["robust"].items()]
    parts += [f"{k} {100 * v:.2f}%" for k, v in h.items() if k.startswith("test_")]
    parts.append(f"lr {h['lr']:.2e}")
    if h.get("best"):
        parts.append("best so far (best.safetensors)")
    return " | ".join(parts)


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
    dist = _Dist(dev)
    try:
        return _Run(recipe, out, dev, dist, channels_last, log).fit(
            resume, data, test_data, progress, checkpoint_every, stop_after,
            stop_after_iterations)
    finally:
        dist.close()


class _Run:
    """One training run's state; ``fit`` runs it (see ``train``)."""

    def __init__(self, recipe, out, dev, dist, channels_last, log):
        self.recipe, self.dev, self.dist = recipe, dev, dist
        self.main = dist.rank == 0
        self.out = Path(out) if out is not None else None
        if self.out is not None and self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        self.say = log if log is not None else (print if self.main else (lambda *_: None))
        self.fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.model = init_model(recipe.arch, recipe.seed)
        if recipe.init:  # fine-tuning: start from a (hash-checked) zoo model
            from ..zoo import load

            self.model.load_state_dict(load(recipe.init).state_dict())
        self.model = self.model.to(dev, memory_format=self.fmt)
        self.net = dist.wrap(self.model, dev)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=recipe.lr,
                                    weight_decay=recipe.weight_decay)
        self.strategy = recipe.build_strategy()
        self.history: list[dict] = []
        self.ckpt = self.out / _CKPT if self.out is not None else None

    def record(self, line: str):
        self.say(line)
        if self.out is not None and self.main:
            with open(self.out / _LOG, "a") as f:
                f.write(line + "\n")

    def save(self, epoch: int, iteration: int = 0, partial: dict | None = None):
        """Checkpoint after ``epoch`` full epochs and ``iteration`` batches of the next one."""
        if self.ckpt is None:
            return
        partial = dict(partial or {})
        gens = [g.get_state() for g in partial.pop("_gens", [])]
        if self.dist.active and iteration:  # each process's own random stream, then the rest
            own = self.ckpt.with_name(f"checkpoint.rank{self.dist.rank}.pt")
            torch.save({"epoch": epoch, "iteration": iteration, "generators": gens},
                       own.with_suffix(".tmp"))
            os.replace(own.with_suffix(".tmp"), own)
            self.dist.barrier()
        if not self.main:
            return
        tmp = self.ckpt.with_suffix(".tmp")
        torch.save({
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "strategy": json.dumps(self.strategy.state_dict()),
            "history": json.dumps(self.history),
            "epoch": epoch,
            "iteration": iteration,
            "partial": json.dumps(partial),
            "generators": gens,
            "recipe": json.dumps(self.recipe.as_dict(), sort_keys=True),
        }, tmp)
        os.replace(tmp, self.ckpt)

    def load(self):
        state = torch.load(self.ckpt, map_location=self.dev, weights_only=True)
        if state["recipe"] != json.dumps(self.recipe.as_dict(), sort_keys=True):
            raise ValueError(f"{self.ckpt} was written by a different recipe; use another --out")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(json.loads(state["strategy"]))
        self.history = json.loads(state["history"])
        it = int(state.get("iteration", 0))
        partial = json.loads(state.get("partial", "{}")) if it else None
        if partial is not None:
            gens = state.get("generators", [])
            if self.dist.active:
                own = torch.load(self.ckpt.with_name(f"checkpoint.rank{self.dist.rank}.pt"),
                                 weights_only=True)
                if (own["epoch"], own["iteration"]) != (int(state["epoch"]), it):
                    raise ValueError(f"{self.ckpt} and its per-process files disagree; the run "
                                     "was interrupted while checkpointing: use another --out")
                gens = own["generators"]
            partial["_gens"] = [g.cpu() for g in gens]
        return int(state["epoch"]), it, partial

    def _keep_best(self, h: dict) -> None:
        """Early stopping: keep the weights of the epoch with the best monitored union."""
        if "test_union" not in h:
            return
        best = max((e.get("test_union", -1.0) for e in self.history), default=-1.0)
        if h["test_union"] > best:
            h["best"] = True
            if self.out is not None:
                save_weights(self.model, self.out / _BEST,
                             {"recipe": self.recipe.name, "arch": self.recipe.arch,
                              "epoch": h["epoch"], "test_union": h["test_union"]})

    def fit(self, resume, data, test_data, progress, checkpoint_every, stop_after, stop_iters):
        recipe, dist, dev = self.recipe, self.dist, self.dev
        x, y = _load_data(recipe, data, True, recipe.n_train)
        if test_data is None and recipe.monitor:
            test_data = _load_data(recipe, None, False, recipe.monitor)
        x, y = x.to(dev), y.to(dev)
        if recipe.batch_size % dist.world:
            raise ValueError(f"batch_size {recipe.batch_size} must divide by {dist.world} "
                             "processes")
        per_epoch = math.ceil(x.shape[0] / recipe.batch_size)
        start_epoch, start_it, partial = 0, 0, None
        if resume and self.ckpt is not None and self.ckpt.exists():
            start_epoch, start_it, partial = self.load()
            self.record(f"resumed from {self.ckpt} at epoch {start_epoch} + {start_it} batches")
        elif self.main:
            if self.out is not None and (self.out / _LOG).exists():
                (self.out / _LOG).unlink()
            self.record(recipe.describe())
            self.record(f"hardware: {_hardware(dev)}; {dist.world} process(es)")
        show = progress if progress is not None else (self.main and os.isatty(2))
        t_call, done_iters = time.time(), 0
        for epoch in range(start_epoch, recipe.epochs):
            first = 0
            if epoch == start_epoch and partial is not None:
                first = start_it
            res = self._epoch(epoch, first, partial if first else None, x, y, per_epoch, show,
                              checkpoint_every, t_call, stop_after, stop_iters, done_iters)
            if res is None:  # stopped mid-epoch, checkpointed
                return TrainResult(self.model.eval(), self.history, self.out, finished=False)
            h, n_it = res
            done_iters += n_it
            if self.main and test_data is not None:
                h.update(_monitor(self.model, recipe, test_data, dev))
                self._keep_best(h)
            if self.strategy.name == "eat":
                h["eat_probs"] = [round(p, 4) for p in self.strategy.eat_probs().tolist()]
            self.history.append(h)
            self.record(_fmt(h))
            self.save(epoch + 1)
            dist.barrier()
            late = self.main and stop_after is not None and time.time() - t_call >= stop_after
            out_of_time = dist.sum([float(late)], dev)[0] > 0  # the first process decides
            if epoch + 1 < recipe.epochs and (
                    out_of_time or (stop_iters is not None and done_iters >= stop_iters)):
                self.record(f"stopped after epoch {epoch + 1}; checkpointed, resume to continue")
                return TrainResult(self.model.eval(), self.history, self.out, finished=False)
        self.model.eval()
        if self.out is not None and self.main:
            total = sum(h["seconds"] for h in self.history)
            save_weights(self.model, self.out / _WEIGHTS,
                         {"recipe": recipe.name, "arch": recipe.arch, "epochs": recipe.epochs,
                          "seed": recipe.seed})
            self.record(f"done: {recipe.epochs} epochs in {total:.0f}s; "
                        f"weights in {self.out / _WEIGHTS}")
        return TrainResult(self.model, self.history, self.out)

    def _epoch(self, epoch, first, partial, x, y, per_epoch, show, checkpoint_every, t_call,
               stop_after, stop_iters, done_before):
        from tqdm.auto import tqdm

        recipe, dist, dev, fmt = self.recipe, self.dist, self.dev, self.fmt
        model, strategy = self.model, self.strategy
        local_bs = recipe.batch_size // dist.world
        order = torch.randperm(x.shape[0], generator=_gen(recipe.seed, epoch)).to(dev)
        agen = _gen(recipe.seed, epoch, 1 + dist.rank, device=dev)
        cgen = _gen(recipe.seed, epoch, 0)
        sums = {"loss": 0.0, "clean": 0.0, "seen": 0.0, "seconds": 0.0}
        rob: dict[str, list[float]] = {}
        if partial:
            agen.set_state(partial["_gens"][0])
            cgen.set_state(partial["_gens"][1])
            sums, rob = partial["sums"], partial["rob"]
        t0, t_saved = time.time() - sums["seconds"], time.time()
        model.train()
        bar = tqdm(range(first, per_epoch), disable=not show, leave=False, mininterval=1.0,
                   desc=f"{recipe.name} {epoch + 1}/{recipe.epochs}", total=per_epoch,
                   initial=first)
        for i in bar:
            it = epoch * per_epoch + i
            glob = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            idx = glob[dist.rank * local_bs:(dist.rank + 1) * local_bs]
            xb = x[idx].contiguous(memory_format=fmt)
            yb = y[idx]
            scale = recipe.eps_scale_at(it, per_epoch)
            batch = strategy(model, xb, yb, scale=scale, generator=agen, choice_generator=cgen)
            for g in self.opt.param_groups:
                g["lr"] = recipe.lr_at(it, per_epoch)
            logits = self.net(batch.x.contiguous(memory_format=fmt))
            loss = F.cross_entropy(logits, batch.y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            with torch.no_grad():
                if strategy.name == "standard":
                    clean = (logits.argmax(1) == yb).sum()
                else:  # clean accuracy on a slice: the progress bar need not cost a pass
                    k = min(32, yb.numel())
                    clean = (model(xb[:k]).argmax(1) == yb[:k]).sum() * (yb.numel() / k)
            now, n_done = time.time(), done_before + i + 1 - first
            due = checkpoint_every is not None and now - t_saved >= checkpoint_every
            late = (stop_after is not None and now - t_call >= stop_after) or (
                stop_iters is not None and n_done >= stop_iters)
            # the first process's clock decides for every process (one all-reduce per batch)
            vals = [loss.detach() * yb.numel(), clean, yb.numel(), float(due and self.main),
                    float(late and self.main)]
            for c, t in batch.robust.values():
                vals += [c, t]
            reduced = dist.sum([float(v) for v in vals], dev)
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
            strategy.update_running(batch_rob)
            if show:
                post = {"clean": f"{100 * sums['clean'] / sums['seen']:.1f}"}
                post.update({k: f"{100 * c / max(t, 1):.1f}" for k, (c, t) in rob.items()})
                bar.set_postfix(post, refresh=False)
            if (stop or mid) and i + 1 < per_epoch:
                sums["seconds"] = now - t0
                self.save(epoch, i + 1, {"sums": sums, "rob": rob, "_gens": [agen, cgen]})
                t_saved = now
                if not stop:
                    self.record(f"checkpoint: epoch {epoch + 1}, batch {i + 1}/{per_epoch}, "
                                f"{sums['seconds']:.0f}s into the epoch")
                if stop:
                    bar.close()
                    self.record(f"stopped in epoch {epoch + 1} after batch {i + 1}/{per_epoch}; "
                                "checkpointed, resume to continue")
                    return None
        bar.close()
        self.model.eval()
        h = {
            "epoch": epoch + 1,
            "seconds": time.time() - t0,
            "loss": sums["loss"] / sums["seen"],
            "clean": sums["clean"] / sums["seen"],
            "robust": {k: c / max(t, 1) for k, (c, t) in rob.items()},
            "lr": recipe.lr_at((epoch + 1) * per_epoch, per_epoch),
        }
        return h, per_epoch - first


def _hardware(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return (f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"threads, torch {torch.__version__}")
