"""The ``advlab`` command line: ``eval``, ``train``, ``zoo``, ``course``, ``grade``.

Each command lives in its own module with a ``register(subparsers)`` function. Only the module
of the command being run is imported, and no module imports torch before its arguments are
parsed, so ``advlab --help`` and ``advlab CMD --help`` answer at once.

User mistakes (a bad argument, an unknown model, a missing file or device) print one or two
lines saying what was wrong and what to do, and exit with status 2; ``--debug`` (anywhere on
the command line) or ``ADVLAB_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

__all__ = ["COMMANDS", "UsageError", "ArgumentParser", "build_parser", "main", "user_error",
           "int_range", "positive_float", "checked_device", "available_devices"]

# command -> (module with register(subparsers), one-line help shown by ``advlab --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("advlab.eval_cli", "per-threat and union accuracy of zoo models (or yours) on MNIST"),
    "train": ("advlab.train.cli", "train a model from a named recipe"),
    "zoo": ("advlab.zoo.cli", "the pretrained MNIST model zoo"),
    "course": ("advlab.course.cli", "course tools: release exercises, package graders"),
    "grade": ("advlab.course.cli", "grade a folder of submissions"),
    "challenge": ("advlab.challenge.cli", "a class challenge: attack/defense tracks, leaderboard"),
}
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))
DEBUG_ENV = "ADVLAB_DEBUG"
EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake of the user's, said in one line with what to do (the CLI exits with status 2)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with errors in two lines (the error, where to read more) instead of the usage."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n"
                              f"(see `{self.prog} --help`)\n")


def int_range(lo: int, hi: int | None = None):
    """An argparse ``type``: an integer in [lo, hi] (checked while parsing, before any work)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            span = f"in {lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"must be {span}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def available_devices() -> list[str]:
    """The devices torch can use here: "cpu", then "cuda:0".., "mps" when present."""
    import torch

    out = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def checked_device(requested: str | None):
    """``requested`` as a torch.device (default: the GPU when present), or a UsageError that
    lists the devices which exist here."""
    import torch

    if requested is None:
        from .device import pick_device

        return pick_device()
    have = available_devices()
    try:
        dev = torch.device(requested)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {requested}: not a device name; "
                         f"available here: {', '.join(have)}") from None
    ok = (dev.type == "cpu" or (dev.type == "cuda" and (f"cuda:{dev.index or 0}" in have))
          or (dev.type == "mps" and "mps" in have))
    if not ok:
        raise UsageError(f"--device {requested}: no such device on this machine; "
                         f"available here: {', '.join(have)}")
    return dev


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its first word not starting with '-')."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = None, modules=None) -> ArgumentParser:
    """The parser: the full subparser of ``command`` (or of every module in ``modules``), a
    placeholder with its one-line help for every other command (nothing imported for them)."""
    parser = ArgumentParser(
        prog="advlab",
        description="Adversarial robustness to multiple perturbations: attacks, training, "
        "evaluation and the course's tools. `advlab COMMAND --help` tells more.",
        epilog="Errors are one line; --debug (anywhere) or ADVLAB_DEBUG=1 shows the traceback.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also: ADVLAB_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    if modules is None:
        modules = [COMMANDS[command][0]] if command in COMMANDS else []
    for name in modules:
        importlib.import_module(name).register(sub)
    for name, (_, help_) in COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_, add_help=False)
    return parser


def user_error(err: BaseException) -> bool:
    """Whether ``err`` is a user's mistake (one line, exit 2) rather than a bug (traceback)."""
    if isinstance(err, UsageError):
        return True
    kinds = []
    zoo = sys.modules.get("advlab.zoo")
    if zoo is not None:  # unknown or untrained model; a modified weights file
        kinds += [zoo.ZooError, zoo.ZooIntegrityError]
    data = sys.modules.get("advlab.data")
    if data is not None:
        kinds.append(data.DataNotFoundError)
    return isinstance(err, tuple(kinds))


def main(argv: list[str] | None = None, modules=None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit code (2: a usage error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser(_command_of(argv), modules)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return EXIT_USAGE
    where = " ".join(["advlab", args.command] + [
        v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)])
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if debug or not user_error(err):
            raise
        print(f"{where}: error: {err}", file=sys.stderr)
        print(f"(--debug or {DEBUG_ENV}=1 shows the traceback)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
