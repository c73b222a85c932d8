"""Per-example outcomes of an evaluation, packed small for the zoo's stored results.

Which of the first n test images survive each threat: one bit per image and threat (image i is
bit i % 8 of byte i // 8, lowest bit first), base64-encoded; 1000 images take 168 characters a
threat. With them any later evaluation can be compared image by image, and the table's numbers
re-derived from the stored file.

    from advlab.zoo import outcomes
    record = outcomes.pack(outcomes.from_union(res))   # JSON-ready: {"n", "encoding", "survive"}
    survive = outcomes.unpack(record)                  # {"clean": (n,) bool, "linf": ..., ...}
    outcomes.accuracies(survive)                       # {"clean": 0.97, ..., "union_all": 0.0}
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence

import torch

__all__ = ["pack_bits", "unpack_bits", "pack", "unpack", "from_union", "accuracies", "unions",
           "concat", "differences", "ENCODING"]

ENCODING = "base64 of bits, image i = bit i % 8 of byte i // 8 (lowest bit first)"
LP = ("linf", "l1", "l2")
_WEIGHTS = 2 ** torch.arange(8)


def pack_bits(mask: torch.Tensor) -> str:
    """(n,) bool -> base64 text of ceil(n / 8) bytes."""
    if mask.dim() != 1 or mask.dtype != torch.bool:
        raise ValueError(f"need a (n,) bool tensor, got {mask.dtype} of shape {tuple(mask.shape)}")
    bits = mask.cpu().long()
    bits = torch.cat([bits, bits.new_zeros(-bits.numel() % 8)]).view(-1, 8)
    data = (bits * _WEIGHTS).sum(dim=1).to(torch.uint8)
    return base64.b64encode(bytes(data.tolist())).decode("ascii")


def unpack_bits(text: str, n: int) -> torch.Tensor:
    """base64 text from ``pack_bits`` -> (n,) bool; refuses text that does not hold n bits."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as err:
        raise ValueError(f"not base64 text from outcomes.pack_bits: {text[:20]!r}...") from err
    if len(raw) != math.ceil(n / 8):
        raise ValueError(f"{len(raw)} bytes hold {8 * len(raw)} bits, not the {n} images stored; "
                         "the record is damaged or n is wrong")
    data = torch.tensor(list(raw), dtype=torch.long)
    bits = ((data[:, None] // _WEIGHTS) % 2).flatten().bool()
    if bits[n:].any():
        raise ValueError("padding bits past image n are set: the record is damaged or n is wrong")
    return bits[:n]


def pack(survive: Mapping[str, torch.Tensor]) -> dict:
    """{name: (n,) bool survive} -> {"n", "encoding", "survive": {name: base64}} for JSON."""
    sizes = {int(v.numel()) for v in survive.values()}
    if len(sizes) != 1:
        raise ValueError(f"every outcome must cover the same images, got sizes {sorted(sizes)}")
    return {"n": sizes.pop(), "encoding": ENCODING,
            "survive": {name: pack_bits(v) for name, v in survive.items()}}


def unpack(record: Mapping) -> dict[str, torch.Tensor]:
    """The inverse of ``pack``: {name: (n,) bool}."""
    if "survive" not in record or "n" not in record:
        raise ValueError("not an outcomes record: need 'n' and 'survive' (from outcomes.pack)")
    return {name: unpack_bits(text, int(record["n"])) for name, text in record["survive"].items()}


def from_union(res) -> dict[str, torch.Tensor]:
    """{"clean", threat names...} -> (n,) bool from an ``evaluate_union`` result.

    Each threat's bits say the image is classified correctly and survives every attack for that
    threat. Needs ``per_threat=True`` (otherwise later threats were not measured).
    """
    out = {"clean": res.clean.bool().cpu()}
    for name, v in res.robust.items():
        if v.dtype != torch.bool:
            raise ValueError(f"threat {name!r} was not measured (per_threat=False); evaluate with "
                             "per_threat=True to keep per-example outcomes")
        out[name] = (v.cpu() & out["clean"])
    return out


def accuracies(survive: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Accuracy (in [0, 1]) per stored outcome, plus the unions the zoo table shows.

    ``union_lp``: every l_p threat present among linf, l1, l2; ``union_all``: every threat.
    """
    out = {name: v.float().mean().item() for name, v in survive.items()}
    out.update({name: v.float().mean().item() for name, v in unions(survive).items()})
    return out


def unions(survive: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """(n,) bool masks: "union_lp", clean and every l_p threat present among linf, l1, l2;
    "union_all", clean and every threat (each only when it has a threat to join)."""
    threats = [k for k in survive if k != "clean"]
    lp = [k for k in threats if k in LP]
    out = {}
    for name, members in (("union_lp", lp), ("union_all", threats)):
        if members:
            mask = survive["clean"].clone()
            for k in members:
                mask &= survive[k]
            out[name] = mask
    return out


def concat(records: Sequence[Mapping]) -> dict:
    """One record from shard records of consecutive slices (in order), e.g. for ``merge``."""
    parts = [unpack(r) for r in records]
    names = list(parts[0])
    if any(list(p) != names for p in parts):
        raise ValueError("the shards hold different outcomes; evaluate them with the same stack")
    return pack({k: torch.cat([p[k] for p in parts]) for k in names})


def differences(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> dict:
    """Per shared name: the image indices only ``a`` breaks and only ``b`` breaks."""
    out = {}
    for name in sorted(a.keys() & b.keys()):
        if a[name].shape != b[name].shape:
            raise ValueError(f"{name!r}: {a[name].numel()} images against {b[name].numel()}")
        out[name] = {"only_a_breaks": (~a[name] & b[name]).nonzero().flatten().tolist(),
                     "only_b_breaks": (a[name] & ~b[name]).nonzero().flatten().tolist()}
    return out
