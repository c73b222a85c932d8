"""``python -m advlab.course.cli course|grade ...``: the course's commands on their own.

What the Gradescope autograder runs (``advlab.course.autograders``); the commands themselves
live in :mod:`advlab.cli.course`, re-exported here.
"""

from __future__ import annotations

import sys

from ..cli import main as cli_main
from ..cli.course import (  # noqa: F401
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    cmd_classroom,
    cmd_grade,
    cmd_gradescope,
    cmd_list,
    cmd_release,
    isolation_banner,
    register,
)


def main(argv: list[str] | None = None) -> int:
    """Run a course command (``course ...`` or ``grade ...``); returns the exit code."""
    return cli_main(argv, modules=["advlab.cli.course"])


if __name__ == "__main__":
    sys.exit(main())
