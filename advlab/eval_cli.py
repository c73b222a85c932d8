"""``advlab eval``: attack a model on MNIST and print per-threat and union accuracy."""

from __future__ import annotations

import argparse
import json
import time

import torch

from .device import pick_device


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="per-threat and union accuracy of a model on MNIST",
        description="Attack a model with the paper's threat models (l_inf 0.3, l_1 10, l_2 2, "
        "rotation-translation) and print clean, per-threat and union accuracy. Without --zoo "
        "or --checkpoint, a standard CompactCNN is first trained for one epoch (about a minute "
        "on a laptop CPU).",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--zoo", metavar="NAME", help="a model of the zoo, e.g. mnist-linf")
    src.add_argument("--checkpoint", metavar="FILE", help="a .safetensors state dict")
    p.add_argument("--arch", default="compact-cnn", help="architecture of --checkpoint")
    p.add_argument("--n", type=int, default=500, help="first N test images (default 500)")
    p.add_argument("--strength", default="lite", choices=["fast", "standard", "lite", "strong"],
                   help="attack strength (default lite: APGD, PGD and Square with few steps; "
                   "'strong' is the trusted evaluation; 'fast' and 'standard' are PGD only)")
    p.add_argument("--threats", default=None,
                   help="comma-separated subset of linf,l1,l2,rt (default all)")
    p.add_argument("--train-n", type=int, default=60000,
                   help="training images for the quick model (default 60000)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU if present)")
    p.add_argument("--data", default=None, help="data folder (default: $ADVLAB_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="FILE", help="also write the accuracies as JSON")
    p.set_defaults(func=run)


def _model(args: argparse.Namespace, device: torch.device):
    from .models import build_model

    if args.zoo:
        from . import zoo

        return zoo.load(args.zoo).to(device), args.zoo
    if args.checkpoint:
        from safetensors.torch import load_file

        model = build_model(args.arch)
        model.load_state_dict(load_file(args.checkpoint))
        return model.to(device), args.checkpoint
    from .data import mnist_tensors
    from .train.basic import fit

    x, y = mnist_tensors(args.train_n, train=True, root=args.data)
    with torch.random.fork_rng():
        torch.manual_seed(args.seed)
        model = build_model("compact-cnn")
    t0 = time.perf_counter()
    fit(model.to(device), x.to(device), y.to(device), epochs=1, seed=args.seed)
    print(f"trained a standard CompactCNN on {args.train_n} images in "
          f"{time.perf_counter() - t0:.0f} s")
    return model, "standard CompactCNN (1 epoch)"


def run(args: argparse.Namespace) -> int:
    from . import presets
    from .data import mnist_tensors
    from .evaluate import evaluate_union

    device = pick_device(args.device)
    include = args.threats.split(",") if args.threats else None
    attacks = presets.attacks("mnist", args.strength, include=include)
    model, label = _model(args, device)
    x, y = mnist_tensors(args.n, train=False, root=args.data)
    t0 = time.perf_counter()
    result = evaluate_union(model.eval(), (x.to(device), y.to(device)), attacks)
    took = time.perf_counter() - t0
    print(result.table(f"{label}: MNIST, {args.strength} attacks, on {device}"))
    print(f"evaluated in {took:.0f} s")
    if args.strength != "strong":
        print("Robust accuracies from any attack are upper bounds; --strength strong is the "
              "trusted evaluation (APGD, PGD with restarts, Square with 1000 queries).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": label, "strength": args.strength, "n": args.n,
                       "accuracy": result.as_dict()}, f, indent=2)
    return 0
