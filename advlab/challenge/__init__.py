"""A class challenge: students attack a published or hidden model and defend their own.

- :mod:`.spec`: the challenge file (``advlab challenge new``), its threat and held-out images;
- :mod:`.attack`: the attack track (notebooks run in the course sandbox, every returned input
  re-checked by the grader); :mod:`.kernel` is its kernel side;
- :mod:`.defense`: the defense track (safetensors weights, the trusted evaluation, the
  gradient-masking diagnosis);
- :mod:`.grading`, :mod:`.board`: a class folder graded, Gradescope ``results.json`` per
  student, the leaderboard as CSV, JSON and a static sortable HTML page;
- :mod:`.starter`: the students' starter notebooks, :func:`try_attack` and :func:`try_defense`.

See ``docs/challenge.md`` for a worked example.
"""

from __future__ import annotations

import importlib

_WHERE = {"Challenge": "spec", "ChallengeError": "spec", "load": "spec", "new": "spec",
          "parse_threat": "spec", "save_defense": "defense", "try_attack": "starter",
          "try_defense": "starter"}
__all__ = list(_WHERE)


def __getattr__(name: str):  # lazy: `advlab challenge --help` must not import torch
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
