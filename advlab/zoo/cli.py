"""Moved to :mod:`advlab.cli.zoo` (``advlab zoo``); this old path re-exports it."""

from ..cli.zoo import register, run_list, run_table  # noqa: F401
