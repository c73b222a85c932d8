"""``advlab train``: train a named recipe (one command per zoo model).

    advlab train --recipe mnist-linf --out runs/mnist-linf
    advlab train --recipe mnist-linf --out runs/mnist-linf --resume      # after an interruption
    torchrun --nproc_per_node=2 -m advlab.train --recipe mnist-max      # data-parallel
"""

from __future__ import annotations

import argparse

__all__ = ["register", "run", "main"]


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from .recipes import RECIPES

    p.add_argument("--recipe", required=False, help=f"one of: {', '.join(RECIPES)}")
    p.add_argument("--out", default=None, help="output folder (default runs/RECIPE)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: GPU if present)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--n-train", type=int, default=None, help="use the first N training images")
    p.add_argument("--test-images", type=int, default=None,
                   help="test images for the per-epoch check (0: none)")
    p.add_argument("--stop-after-minutes", type=float, default=None,
                   help="checkpoint and exit after this long (continue later with --resume)")
    p.add_argument("--no-channels-last", action="store_true",
                   help="keep the default memory format (channels_last is on by default)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")


def run(args: argparse.Namespace) -> int:
    import torch

    from .engine import train
    from .recipes import RECIPES, get_recipe

    if args.list or not args.recipe:
        for name, r in RECIPES.items():
            print(r.describe() if args.list else name)
        return 0 if args.list else 2
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = get_recipe(args.recipe)
    if args.n_train:
        recipe = recipe.with_(n_train=args.n_train)
    if args.test_images is not None:
        recipe = recipe.with_(monitor=args.test_images)
    out = args.out or f"runs/{recipe.name}"
    stop = args.stop_after_minutes * 60 if args.stop_after_minutes else None
    res = train(recipe, out=out, resume=args.resume, epochs=args.epochs, device=args.device,
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
    """``python -m advlab.train`` (what torchrun launches)."""
    p = argparse.ArgumentParser(prog="python -m advlab.train", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    _add_arguments(p)
    return run(p.parse_args(argv))
