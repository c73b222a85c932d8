"""Where to run: the GPU when present, the CPU otherwise."""

from __future__ import annotations

import copy

import torch

__all__ = ["pick_device", "fast_on_cpu", "SEARCH_DTYPES", "LowPrecision", "parse_search_dtype"]


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """``requested`` ("cpu", "cuda", "cuda:1", "mps"), else CUDA, then Apple MPS, then the CPU."""
    if requested is not None:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available; use device='cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def fast_on_cpu(model: torch.nn.Module) -> torch.nn.Module:
    """A channels_last copy of ``model`` when its weights are on the CPU (faster convolutions
    there, same numbers up to float rounding: ``benchmarks/memory_format.py``), else ``model``
    itself. The caller's model is unchanged."""
    if next(model.parameters()).device.type != "cpu":
        return model
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


#: the names ``search_dtype`` accepts (the CLIs' ``--search-dtype``) -> dtype (None: the model's)
SEARCH_DTYPES = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_search_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """A lower precision for attack searches, by name or dtype; None (or "float32"): none."""
    if name is None or name is torch.float32:
        return None
    if name in SEARCH_DTYPES.values():
        return name
    if name not in SEARCH_DTYPES:
        raise ValueError(f"search dtype {name!r} is not one of {sorted(SEARCH_DTYPES)}: "
                         "bfloat16 is faster where the hardware has native bf16 (AVX512-BF16, "
                         "AMX, recent GPUs); float32 keeps the model's own precision")
    return SEARCH_DTYPES[name]


class LowPrecision(torch.nn.Module):
    """``model`` with every layer but its last run under ``torch.autocast`` in ``dtype``
    (convolutions and matrix products, forward and backward); the last layer, which makes the
    logits, runs in float32. Input and output: (B, C, H, W) in [0, 1] -> (B, K) float32 logits.

    Why the last layer stays in float32: bfloat16 keeps 8 significant bits, so logits near 10
    would move in steps of 1/16 and an attack's margin would be flat near 0, exactly where it
    decides whether an example is broken (a masking of our own making). For attack searches
    only: the search finds slightly different examples, so each must be checked with ``model``
    itself, as ``evaluate_union(search_dtype=...)`` does. ``model``: an ``nn.Sequential`` ending
    in ``nn.Linear`` (the zoo's architectures); its layers are shared, not copied."""

    def __init__(self, model: torch.nn.Module, dtype: torch.dtype = torch.bfloat16):
        super().__init__()
        if parse_search_dtype(dtype) is None:
            raise ValueError(f"LowPrecision needs torch.bfloat16 or torch.float16, not {dtype}")
        layers = list(model) if isinstance(model, torch.nn.Sequential) else []
        if not layers or not isinstance(layers[-1], torch.nn.Linear):
            raise ValueError(f"LowPrecision needs an nn.Sequential ending in nn.Linear (to keep "
                             f"its logits in float32), not {type(model).__name__}; run the "
                             "attacks in the model's own precision (search_dtype=None)")
        self.body, self.head = torch.nn.Sequential(*layers[:-1]), layers[-1]
        self.dtype = dtype
        self.train(model.training)  # the wrapper's mode is the model's (set it through either)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=self.dtype):
            features = self.body(x)
        return self.head(features.float())
