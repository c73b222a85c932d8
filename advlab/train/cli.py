"""Moved to :mod:`advlab.cli.train` (``advlab train``); this old path re-exports it."""

from ..cli.train import main, register, run  # noqa: F401
