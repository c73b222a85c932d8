"""Maintainers' tool: put a finished training run into the zoo, and measure it.

    python -m advlab.zoo.publish mnist-linf --run runs/mnist-linf      # weights, log, sha256, card
    python -m advlab.zoo.publish mnist-linf --evaluate --strength standard --n 1000

The first form copies ``RUN/model.safetensors`` to ``advlab/zoo/weights/NAME.safetensors``
and ``RUN/train.log`` to ``advlab/zoo/logs/NAME.log``, records the file's sha256 in the zoo
manifest (``advlab/zoo/manifest.json``: data, never Python source) and writes the model card.
The second measures the shipped model (``advlab.zoo.table.evaluate_model``) on the first N test
images, keeps the numbers in ``advlab/zoo/results/NAME.json`` and rewrites the card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import CARDS, HERE, LOGS, MANIFEST_PATH, WEIGHTS
from .card_notes import MEASURE_NOTES, TRAINING_NOTES
from .measure import RESULTS, evaluate, merge
from .model_card import card_text, write_card
from .shipping import publish, register_weights, run_weights

# The tool's parts: .shipping (weights, log and sha256 into the package), .measure (the stored
# numbers), .model_card and .card_notes (the model card); their public names stay here too.
__all__ = ["MEASURE_NOTES", "RESULTS", "TRAINING_NOTES", "card_text", "evaluate", "main",
           "merge", "publish", "register_weights", "run_weights", "write_card",
           # the zoo's folders, as imported here before the split
           "CARDS", "HERE", "LOGS", "MANIFEST_PATH", "WEIGHTS"]


def main(argv=None) -> int:
    """``python -m advlab.zoo.publish NAME [--run RUN] [--evaluate ...] [--merge S]``."""
    p = argparse.ArgumentParser(prog="python -m advlab.zoo.publish", description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("name")
    p.add_argument("--run", type=Path, default=None, help="the training run's folder")
    p.add_argument("--weights", choices=("best", "last"), default="best",
                   help="ship the best monitored epoch (default, if kept) or the last")
    p.add_argument("--evaluate", action="store_true")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--strength", default="strong")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: GPU if present)")
    p.add_argument("--shard", default=None, help="K/S: measure the K-th of S slices only")
    p.add_argument("--merge", type=int, default=None, help="merge S shard results")
    p.add_argument("--suffix", default="", help="keep the numbers in NAME{SUFFIX}.json")
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.run is not None:
        print(f"{args.name}: sha256 {publish(args.name, args.run, args.weights)}")
    if args.evaluate:
        shard = tuple(int(v) for v in args.shard.split("/")) if args.shard else (0, 1)
        res = evaluate(args.name, args.n, args.strength, shard, args.suffix, args.device)
        print(json.dumps(res, indent=1))
        if shard[1] > 1:
            return 0
    if args.merge:
        print(json.dumps(merge(args.name, args.merge, args.suffix), indent=1))
    print(f"card: {write_card(args.name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
