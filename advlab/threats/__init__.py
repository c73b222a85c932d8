"""Threat models: small objects that own their geometry, and the registry of their names.

    from advlab.threats import Linf, L2, L1, RotationTranslation, Affine
    Linf(0.3).project(delta, x)          # every attack asks the threat, never its type

``base`` defines the interface (``ThreatModel``), one module per threat implements it
(``linf``, ``l2``, ``l1``, ``spatial``, ``affine``) and ``registry`` holds every fact keyed by
a threat's name (the paper's budgets, slider ranges, preset choices). Adding a threat model is
one module and one ``register`` line: see docs/threats.md.
"""

from . import registry
from .affine import Affine
from .base import ThreatModel, check_eps, warn_if_unbounded
from .l1 import L1
from .l2 import L2
from .linf import Linf
from .registry import ThreatInfo, register
from .spatial import RotationTranslation

__all__ = ["ThreatModel", "Linf", "L2", "L1", "RotationTranslation", "Affine", "check_eps",
           "warn_if_unbounded", "ThreatInfo", "register", "registry"]
