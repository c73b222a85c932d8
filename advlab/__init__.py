"""advlab: adversarial robustness to multiple perturbations, as a course and a small library.

Images are float tensors in [0, 1] of shape (B, C, H, W); models return logits.
"""

from . import attacks, data, masking, models, presets, threats
from .attacks import AttackResult, fgsm, grid_attack, pgd
from .diagnose import DiagnosisReport, diagnose
from .evaluate import UnionResult, accuracy, evaluate_union
from .threats import L1, L2, Affine, Linf, RotationTranslation

__version__ = "0.1.0"

__all__ = [
    "attacks",
    "data",
    "models",
    "presets",
    "threats",
    "AttackResult",
    "fgsm",
    "pgd",
    "grid_attack",
    "evaluate_union",
    "accuracy",
    "UnionResult",
    "Linf",
    "L2",
    "L1",
    "RotationTranslation",
    "Affine",
    "masking",
    "diagnose",
    "DiagnosisReport",
]
