"""Training: standard and adversarial (see ``basic.fit``)."""

from .basic import fit

__all__ = ["fit"]
