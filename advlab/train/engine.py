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


@dataclass
class TrainResult:
    """The trained model (eval mode, on its device) and one dict of numbers per epoch."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    out: Path | None = None

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


def _cosine(lr: float, it: int, total: int) -> float:
    return 0.5 * lr * (1 + math.cos(math.pi * min(it, total) / max(total, 1)))


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
    """Clean accuracy and fast PGD-10 accuracy per l_p threat of the recipe on ``test``."""
    from ..attacks import PGD, random_attack
    from ..presets import threats

    x, y = (t.to(device) for t in test)
    out = {}
    with torch.no_grad():
        out["test_clean"] = (model(x).argmax(1) == y).float().mean().item()
    gen = torch.Generator(device=x.device).manual_seed(0)
    names = sorted({a.threat for a in recipe.attacks})
    for name in names:
        th = threats(recipe.dataset)[name]
        if name == "rt":
            res = random_attack(model, x, y, th, k=20, generator=gen)
        else:
            res = PGD(th, steps=10 if name != "l1" else 20)(model, x, y, generator=gen)
        out[f"test_{name}"] = 1.0 - res.success.float().mean().item()
    return out


def _fmt(h: dict) -> str:
    parts = [f"epoch {h['epoch']}", f"{h['seconds']:.0f}s", f"loss {h['loss']:.4f}",
             f"clean {100 * h['clean']:.2f}%"]
    parts += [f"rob_{k} {100 * v:.2f}%" for k, v in h["robust"].items()]
    parts += [f"{k} {100 * v:.2f}%" for k, v in h.items() if k.startswith("test_")]
    parts.append(f"lr {h['lr']:.2e}")
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
) -> TrainResult:
    """Train ``recipe`` (a ``Recipe`` or a name from ``RECIPES``).

    Args:
        out: folder for checkpoint.pt, model.safetensors, train.log (None: keep nothing).
        resume: continue from ``out/checkpoint.pt`` when it exists.
        epochs: override ``recipe.epochs`` (the cosine schedule follows the new total).
        device: "cpu", "cuda", "cuda:1"...; default the GPU when present.
        data: (x (N, C, H, W) in [0, 1], y (N,)) instead of the recipe's training set.
        test_data: images for the per-epoch monitor (default the first ``recipe.monitor`` test
            images; none when ``recipe.monitor`` is 0 and no test_data is given).
        progress: tqdm bar per epoch (default: on a terminal, on the first process).
        log: a callable taking one line per epoch (default print on the first process).
    """
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    if epochs is not None:
        recipe = recipe.with_(epochs=epochs)
    dev = resolve_device(device)
    dist = _Dist(dev)
    try:
        return _train(recipe, out, resume, dev, dist, data, test_data, progress, channels_last,
                      log)
    finally:
        dist.close()


def _train(recipe, out, resume, dev, dist, data, test_data, progress, channels_last, log):
    from tqdm.auto import tqdm

    main = dist.rank == 0
    out = Path(out) if out is not None else None
    if out is not None and main:
        out.mkdir(parents=True, exist_ok=True)
    say = log if log is not None else (print if main else (lambda *_: None))

    def record(line: str):
        say(line)
        if out is not None and main:
            with open(out / _LOG, "a") as f:
                f.write(line + "\n")

    x, y = _load_data(recipe, data, True, recipe.n_train)
    if test_data is None and recipe.monitor:
        test_data = _load_data(recipe, None, False, recipe.monitor)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = x.to(dev)
    y = y.to(dev)
    model = init_model(recipe.arch, recipe.seed).to(dev, memory_format=fmt)
    net = dist.wrap(model, dev)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    strategy = recipe.build_strategy()
    n, world = x.shape[0], dist.world
    if recipe.batch_size % world:
        raise ValueError(f"batch_size {recipe.batch_size} must divide by {world} processes")
    local_bs = recipe.batch_size // world
    per_epoch = math.ceil(n / recipe.batch_size)
    total_it = per_epoch * recipe.epochs
    warm_it = recipe.warmup_epochs * per_epoch
    history: list[dict] = []
    start_epoch = 0

    ckpt = out / _CKPT if out is not None else None
    if resume and ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=dev, weights_only=True)
        if state["recipe"] != json.dumps(recipe.as_dict(), sort_keys=True):
            raise ValueError(f"{ckpt} was written by a different recipe; use another --out")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        strategy.load_state_dict(json.loads(state["strategy"]))
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])
        record(f"resumed from {ckpt} after epoch {start_epoch}")
    elif main:
        if out is not None and (out / _LOG).exists() and not resume:
            (out / _LOG).unlink()
        record(recipe.describe())
        record(f"hardware: {_hardware(dev)}; {world} process(es)")

    show = progress if progress is not None else (main and os.isatty(2))
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.time()
        order = torch.randperm(n, generator=_gen(recipe.seed, epoch)).to(dev)
        agen = _gen(recipe.seed, epoch, 1 + dist.rank, device=dev)
        cgen = _gen(recipe.seed, epoch, 0)
        sums = {"loss": 0.0, "clean": 0.0, "seen": 0.0}
        rob: dict[str, list[float]] = {}
        model.train()
        bar = tqdm(range(per_epoch), disable=not show, desc=f"{recipe.name} {epoch + 1}/"
                   f"{recipe.epochs}", leave=False, mininterval=1.0)
        for i in bar:
            it = epoch * per_epoch + i
            glob = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            idx = glob[dist.rank * local_bs:(dist.rank + 1) * local_bs]
            xb = x[idx].contiguous(memory_format=fmt)
            yb = y[idx]
            scale = min(1.0, (it + 1) / warm_it) if warm_it > 0 else 1.0
            batch = strategy(model, xb, yb, scale=scale, generator=agen, choice_generator=cgen)
            for g in opt.param_groups:
                g["lr"] = _cosine(recipe.lr, it, total_it)
            logits = net(batch.x.contiguous(memory_format=fmt))
            loss = F.cross_entropy(logits, batch.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                if strategy.name == "standard":
                    clean = (logits.argmax(1) == yb).sum()
                else:
                    clean = (model(xb).argmax(1) == yb).sum()
            vals = [loss.detach() * yb.numel(), clean, yb.numel()]
            for c, t in batch.robust.values():
                vals += [c, t]
            reduced = dist.sum([float(v) for v in vals], dev)
            sums["loss"] += reduced[0]
            sums["clean"] += reduced[1]
            sums["seen"] += reduced[2]
            batch_rob = {}
            for j, name in enumerate(batch.robust):
                c, t = reduced[3 + 2 * j], reduced[4 + 2 * j]
                acc = rob.setdefault(name, [0.0, 0.0])
                acc[0] += c
                acc[1] += t
                batch_rob[name] = (c, t)
            strategy.update_running(batch_rob)
            if show:
                post = {"clean": f"{100 * sums['clean'] / sums['seen']:.1f}"}
                post.update({k: f"{100 * c / max(t, 1):.1f}" for k, (c, t) in rob.items()})
                bar.set_postfix(post, refresh=False)
        bar.close()
        model.eval()
        h = {
            "epoch": epoch + 1,
            "seconds": time.time() - t0,
            "loss": sums["loss"] / sums["seen"],
            "clean": sums["clean"] / sums["seen"],
            "robust": {k: c / max(t, 1) for k, (c, t) in rob.items()},
            "lr": _cosine(recipe.lr, (epoch + 1) * per_epoch, total_it),
        }
        if main and test_data is not None:
            h.update(_monitor(model, recipe, test_data, dev))
        if strategy.name == "eat":
            h["eat_probs"] = [round(p, 4) for p in strategy.eat_probs().tolist()]
        history.append(h)
        record(_fmt(h))
        if ckpt is not None and main:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "strategy": json.dumps(strategy.state_dict()),
                "history": json.dumps(history),
                "epoch": epoch + 1,
                "recipe": json.dumps(recipe.as_dict(), sort_keys=True),
            }, tmp)
            os.replace(tmp, ckpt)
        dist.barrier()
    model.eval()
    if out is not None and main:
        total = sum(h["seconds"] for h in history)
        save_weights(model, out / _WEIGHTS, {"recipe": recipe.name, "arch": recipe.arch,
                                             "epochs": recipe.epochs, "seed": recipe.seed})
        record(f"done: {recipe.epochs} epochs in {total:.0f}s; weights in {out / _WEIGHTS}")
    return TrainResult(model, history, out)


def _hardware(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return (f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
            f"threads, torch {torch.__version__}")
