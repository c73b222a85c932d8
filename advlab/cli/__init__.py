"""The ``advlab`` command line: ``eval``, ``train``, ``zoo``, ``course``, ``grade``, ``challenge``.

Each command lives in its own module of this package (``advlab.cli.eval``, ``.train``,
``.zoo``, ``.course`` for ``course`` and ``grade``, ``.challenge``) with a
``register(subparsers)`` function; what they share is in ``advlab.cli.common``. Only the module
of the command being run is imported, and none imports torch before its arguments are parsed,
so ``advlab --help`` and ``advlab CMD --help`` answer at once.

User mistakes (a bad argument, an unknown model, a missing file or device) print one or two
lines saying what was wrong and what to do, and exit with status 2; ``--debug`` (anywhere on
the command line) or ``ADVLAB_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

from .common import (
    DEBUG_ENV,
    EXIT_USAGE,
    ArgumentParser,
    UsageError,
    available_devices,
    checked_device,
    int_range,
    positive_float,
    user_error,
)

__all__ = ["COMMANDS", "UsageError", "ArgumentParser", "build_parser", "main", "user_error",
           "int_range", "positive_float", "checked_device", "available_devices"]

# command -> (module with register(subparsers), one-line help shown by ``advlab --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("advlab.cli.eval", "per-threat and union accuracy of zoo models (or yours) on MNIST"),
    "train": ("advlab.cli.train", "train a model from a named recipe"),
    "zoo": ("advlab.cli.zoo", "the pretrained MNIST model zoo"),
    "course": ("advlab.cli.course", "course tools: release exercises, package graders"),
    "grade": ("advlab.cli.course", "grade a folder of submissions"),
    "challenge": ("advlab.cli.challenge", "a class challenge: attack/defense tracks, leaderboard"),
}
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


def command_of(argv: list[str]) -> str | None:
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


def main(argv: list[str] | None = None, modules=None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit code (2: a usage error).

    ``modules``: the command modules to register in full (default: the one ``argv`` names)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser(command_of(argv), modules)
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
