"""Moved to :mod:`advlab.cli.eval` (``advlab eval``); this old path re-exports it."""

from .cli.eval import (  # noqa: F401
    DEFAULT_N,
    LABELS,
    STRENGTHS,
    THREATS,
    evaluate_models,
    plan,
    register,
    report,
    run,
    trusted_command,
    write_json,
)
