"""One training run: its model, optimiser and strategy, its checkpoints and its loop of epochs.

``advlab.train.engine.train`` builds a :class:`Run` and calls :meth:`Run.fit`. In ``out``:
``checkpoint.pt`` after every epoch (tensors and plain types only, read with
weights_only=True; mid-epoch, data-parallel, each process also keeps its random stream in
``checkpoint.rankN.pt``), ``best.safetensors`` (the epoch with the best monitored union),
``model.safetensors`` (the final weights) and ``train.log`` (one line per epoch).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .devices import hardware
from .epoch import run_epoch
from .monitor import epoch_line, load_data, monitor
from .weights import init_model, save_weights

__all__ = ["BEST", "CHECKPOINT", "LOG", "WEIGHTS", "Run", "TrainResult"]

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.safetensors"
LOG = "train.log"
BEST = "best.safetensors"


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


class Run:
    """One training run's state; ``fit`` runs it (see ``advlab.train.engine.train``)."""

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
        self.ckpt = self.out / CHECKPOINT if self.out is not None else None

    def record(self, line: str):
        """Say ``line`` and append it to ``train.log``."""
        self.say(line)
        if self.out is not None and self.main:
            with open(self.out / LOG, "a") as f:
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
        """Restore the checkpoint; returns (epoch, iteration, the mid-epoch state or None)."""
        state = torch.load(self.ckpt, map_location=self.dev, weights_only=True)
        if not self.recipe.same_as(json.loads(state["recipe"])):
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
                save_weights(self.model, self.out / BEST,
                             {"recipe": self.recipe.name, "arch": self.recipe.arch,
                              "epoch": h["epoch"], "test_union": h["test_union"]})

    def fit(self, resume, data, test_data, progress, checkpoint_every, stop_after, stop_iters):
        """Run the remaining epochs (see ``advlab.train.engine.train`` for the arguments)."""
        recipe, dist, dev = self.recipe, self.dist, self.dev
        x, y = load_data(recipe, data, True, recipe.n_train)
        if test_data is None and recipe.monitor:
            test_data = load_data(recipe, None, False, recipe.monitor)
        x, y = x.to(dev), y.to(dev)
        if recipe.batch_size % dist.world:
            raise ValueError(f"batch_size {recipe.batch_size} must divide by {dist.world} "
                             "processes")
        per_epoch = math.ceil(x.shape[0] / recipe.batch_size)
        start_epoch, start_it, partial = self._start(resume)
        show = progress if progress is not None else (self.main and os.isatty(2))
        t_call, done_iters = time.time(), 0
        for epoch in range(start_epoch, recipe.epochs):
            first = 0
            if epoch == start_epoch and partial is not None:
                first = start_it
            res = run_epoch(self, epoch, first, partial if first else None, x, y, per_epoch,
                            show, checkpoint_every, t_call, stop_after, stop_iters, done_iters)
            if res is None:  # stopped mid-epoch, checkpointed
                return TrainResult(self.model.eval(), self.history, self.out, finished=False)
            h, n_it = res
            done_iters += n_it
            if self._end_epoch(h, epoch, test_data, t_call, stop_after, stop_iters, done_iters):
                return TrainResult(self.model.eval(), self.history, self.out, finished=False)
        return self._finish()

    def _start(self, resume):
        """(epoch, batch, mid-epoch state) to start from: the checkpoint's when resuming."""
        start = 0, 0, None
        if resume and self.ckpt is not None and self.ckpt.exists():
            start = self.load()
            self.record(f"resumed from {self.ckpt} at epoch {start[0]} + {start[1]} batches")
        elif self.main:
            if self.out is not None and (self.out / LOG).exists():
                (self.out / LOG).unlink()
            self.record(self.recipe.describe())
            self.record(f"hardware: {hardware(self.dev)}; {self.dist.world} process(es)")
        return start

    def _end_epoch(self, h, epoch, test_data, t_call, stop_after, stop_iters, done_iters):
        """Monitor, log and checkpoint a finished epoch; True when the run stops after it."""
        recipe, dist, dev = self.recipe, self.dist, self.dev
        if self.main and test_data is not None:
            h.update(monitor(self.model, recipe, test_data, dev))
            self._keep_best(h)
        if self.strategy.name == "eat":
            h["eat_probs"] = [round(p, 4) for p in self.strategy.eat_probs().tolist()]
        self.history.append(h)
        self.record(epoch_line(h))
        self.save(epoch + 1)
        dist.barrier()
        late = self.main and stop_after is not None and time.time() - t_call >= stop_after
        out_of_time = dist.sum([float(late)], dev)[0] > 0  # the first process decides
        if epoch + 1 < recipe.epochs and (
                out_of_time or (stop_iters is not None and done_iters >= stop_iters)):
            self.record(f"stopped after epoch {epoch + 1}; checkpointed, resume to continue")
            return True
        return False

    def _finish(self) -> TrainResult:
        """Eval mode; the final weights in ``model.safetensors`` (first process)."""
        recipe = self.recipe
        self.model.eval()
        if self.out is not None and self.main:
            total = sum(h["seconds"] for h in self.history)
            save_weights(self.model, self.out / WEIGHTS,
                         {"recipe": recipe.name, "arch": recipe.arch, "epochs": recipe.epochs,
                          "seed": recipe.seed})
            self.record(f"done: {recipe.epochs} epochs in {total:.0f}s; "
                        f"weights in {self.out / WEIGHTS}")
        return TrainResult(self.model, self.history, self.out)
