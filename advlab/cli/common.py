"""What every ``advlab`` command shares: the usage error, the parser, argument types, devices.

Nothing here imports torch at module level: a command's ``register`` may use these while
``advlab CMD --help`` is being answered.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["UsageError", "ArgumentParser", "user_error", "int_range", "positive_float",
           "checked_device", "available_devices", "DEBUG_ENV", "EXIT_USAGE"]

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
        from ..device import pick_device

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


def user_error(err: BaseException) -> bool:
    """Whether ``err`` is a user's mistake (one line, exit 2) rather than a bug (traceback).

    The library's own user errors count only when their module is already imported (a
    command that never loaded the zoo cannot have raised a zoo error)."""
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
