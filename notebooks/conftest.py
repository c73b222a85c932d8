"""nbval runs the course notebooks (``pytest --nbval-lax notebooks/``) in fast mode on real data.

ADVLAB_FAST=1 cuts the notebooks' sizes (each checks its numbers still lie in sensible ranges);
ADVLAB_DATA defaults to ../shared/data as in CI. Both can be overridden from the environment.
"""

import os
from pathlib import Path

os.environ.setdefault("ADVLAB_FAST", "1")
os.environ.setdefault("ADVLAB_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
os.environ.pop("MPLBACKEND", None)  # the notebooks draw inline, as for a student
