"""Attacks: functions that take the model at call time and return an ``AttackResult``.

``base`` is the template every attack is built on (input checks, a frozen model, restarts, the
per-example best); ``pgd``, ``apgd``, ``fab``, ``boundary``, ``square``, ``spatial`` and ``msd``
are the attacks.
"""

from .apgd import APGD, APGDT, apgd, apgd_targeted
from .base import AttackResult
from .boundary import BoundaryL1, boundary_l1
from .fab import FABT, fab_targeted
from .msd import msd_attack
from .pgd import FGSM, PGD, fgsm, pgd
from .spatial import affine_grid_attack, grid_attack, random_attack
from .square import Square, square_attack

__all__ = [
    "AttackResult",
    "FGSM",
    "PGD",
    "fgsm",
    "pgd",
    "grid_attack",
    "random_attack",
    "affine_grid_attack",
    "APGD",
    "APGDT",
    "apgd",
    "apgd_targeted",
    "BoundaryL1",
    "boundary_l1",
    "FABT",
    "fab_targeted",
    "Square",
    "square_attack",
    "msd_attack",
]
