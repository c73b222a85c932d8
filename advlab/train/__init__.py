"""Training: standard, adversarial and multi-perturbation (see ``engine.train``, ``RECIPES``).

``basic.fit`` is the short loop the course and the tests use; ``train`` is the full engine
(strategies, eps warm-up, checkpoints and resume, progress, data-parallel).
"""

from .basic import fit
from .engine import TrainResult, init_model, save_weights, train
from .recipes import RECIPES, Recipe, get_recipe
from .strategies import STRATEGIES, AttackSpec, Strategy, msd_attack

__all__ = [
    "fit",
    "train",
    "TrainResult",
    "init_model",
    "save_weights",
    "Recipe",
    "RECIPES",
    "get_recipe",
    "STRATEGIES",
    "AttackSpec",
    "Strategy",
    "msd_attack",
]
