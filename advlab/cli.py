"""The ``advlab`` command line: ``eval``, ``train``, ``zoo``, ``course``, ``grade``.

Each command lives in its own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

COMMAND_MODULES = [
    "advlab.eval_cli",
    "advlab.train.cli",
    "advlab.zoo.cli",
    "advlab.course.cli",
]


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not there
        return False


def build_parser(modules=COMMAND_MODULES) -> argparse.ArgumentParser:
    """The parser with the subcommands of ``modules`` (each has ``register(subparsers)``)."""
    parser = argparse.ArgumentParser(
        prog="advlab",
        description="Adversarial robustness to multiple perturbations: attacks, training, "
        "evaluation and the course's tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in modules:
        if _exists(name):
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None, modules=COMMAND_MODULES) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit code (2: no command)."""
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
