"""Models. Every model takes images in [0, 1] and returns logits.

- ``architectures``: the networks (``MadryCNN``, ``CompactCNN``, ``PreActResNet18``), their
  names (``ARCHITECTURES``, ``build_model``) and ``Normalize``, which keeps any normalisation
  inside the model so that attacks always work in pixel space;
- ``masking``: a deliberately gradient-masked model (``masked_model``: input quantisation) and
  its remedy, BPDA; ``advlab.masking`` is that same module.
"""

from .architectures import (
    ARCHITECTURES,
    CIFAR10_MEAN,  # noqa: F401  (the normalisation constants, still at their old place)
    CIFAR10_STD,  # noqa: F401
    MNIST_MEAN,  # noqa: F401
    MNIST_STD,  # noqa: F401
    CompactCNN,
    MadryCNN,
    Normalize,
    PreActResNet18,
    build_model,
)

__all__ = ["Normalize", "MadryCNN", "CompactCNN", "PreActResNet18", "build_model", "ARCHITECTURES"]
