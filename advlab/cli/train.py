"""``advlab train``: train a named recipe (one command per zoo model).

    advlab train --recipe mnist-linf --out runs/mnist-linf
    advlab train --recipe mnist-linf --out runs/mnist-linf --resume      # after an interruption
    torchrun --nproc_per_node=2 -m advlab.train --recipe mnist-max      # data-parallel
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    ArgumentParser,
    UsageError,
    checked_device,
    int_range,
    positive_float,
    user_error,
)

__all__ = ["register", "run", "main"]


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", required=False, help="a recipe name (--list shows them)")
    p.add_argument("--out", default=None, help="output folder (default runs/RECIPE)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--epochs", type=int_range(1), default=None,
                   help="override the recipe's epochs")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU if present)")
    p.add_argument("--threads", type=int_range(1), default=None, help="torch CPU threads")
    p.add_argument("--n-train", type=int_range(1, 60000), default=None,
                   help="use the first N training images")
    p.add_argument("--test-images", type=int_range(0, 10000), default=None,
                   help="test images for the per-epoch check (0: none)")
    p.add_argument("--stop-after-minutes", type=positive_float, default=None,
                   help="checkpoint and exit after this long (continue later with --resume)")
    p.add_argument("--no-channels-last", action="store_true",
                   help="keep the default memory format (channels_last is on by default)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")


def _checked(args: argparse.Namespace):
    """The recipe, the output folder and the device, every argument checked before any work."""
    from ..train.recipes import RECIPES

    if args.recipe not in RECIPES:
        what = "give --recipe NAME" if args.recipe is None else f"unknown recipe {args.recipe!r}"
        raise UsageError(f"{what}; choose one of: {', '.join(RECIPES)} "
                         "(advlab train --list describes them)")
    recipe = RECIPES[args.recipe]
    out = Path(args.out or f"runs/{recipe.name}")
    if args.resume and not (out / "checkpoint.pt").is_file():
        raise UsageError(f"--resume: no checkpoint to resume from in {out}/ (checkpoint.pt); "
                         "start without --resume, or give the run's folder with --out")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if args.device is not None:
        checked_device(args.device)
    return recipe, out


def run(args: argparse.Namespace) -> int:
    if args.list:
        from ..train.recipes import RECIPES

        for r in RECIPES.values():
            print(r.describe())
        return 0
    recipe, out = _checked(args)
    import torch

    from ..data import mnist_tensors
    from ..train.engine import train

    mnist_tensors(1, train=True)  # the data are there (else one line saying where to put them)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n_train:
        recipe = recipe.with_(n_train=args.n_train)
    if args.test_images is not None:
        recipe = recipe.with_(monitor=args.test_images)
    stop = args.stop_after_minutes * 60 if args.stop_after_minutes else None
    res = train(recipe, out=str(out), resume=args.resume, epochs=args.epochs, device=args.device,
                progress=False if args.no_progress else None, stop_after=stop,
                channels_last=not args.no_channels_last)
    if not res.finished:
        print(f"not finished; continue with: advlab train --recipe {recipe.name} --out {out} "
              "--resume")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser("train", help="train a model from a named recipe",
                              description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    _add_arguments(p)
    p.set_defaults(func=run)
    return p


def main(argv: list[str] | None = None) -> int:
    """``python -m advlab.train`` (what torchrun launches); errors as ``advlab train``'s."""
    p = ArgumentParser(prog="python -m advlab.train", description=__doc__,
                       formatter_class=argparse.RawTextHelpFormatter)
    _add_arguments(p)
    try:
        return run(p.parse_args(argv))
    except Exception as err:
        if not user_error(err):
            raise
        print(f"python -m advlab.train: error: {err}", file=sys.stderr)
        return 2
