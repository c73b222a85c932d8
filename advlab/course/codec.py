"""Turning case inputs and returned values into plain data and back.

Inputs travel from the grader to the student's kernel, and outputs back, as files written with
``torch.save`` and read with ``torch.load(weights_only=True)``: only tensors, numbers, strings,
lists, tuples and dicts, so a file written by a submission cannot run code in the grader.
Live objects that are not plain data (a model, a random generator, an optimizer, an attack) are
sent as small marker dicts and rebuilt on the other side by :func:`decode`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch

MARK = "__advlab__"
MAX_NUMEL = 5_000_000
MAX_DEPTH = 6


@dataclass
class ModelArg:
    """A tiny net from :mod:`advlab.course.nets`: architecture, weights and a key to name it."""

    arch: str
    state: dict
    key: str = "model"


@dataclass
class GeneratorArg:
    """A ``torch.Generator`` seeded with ``seed``."""

    seed: int


@dataclass
class OptimizerArg:
    """``torch.optim.SGD`` over the parameters of the model argument named ``model_key``."""

    model_key: str = "model"
    lr: float = 0.1
    momentum: float = 0.0


@dataclass
class AttackArg:
    """One of :data:`advlab.course.nets.ATTACKS` with fixed keyword parameters."""

    name: str
    params: dict = field(default_factory=dict)


def encode(obj: Any) -> Any:
    """Plain-data form of a case input (markers replace live objects)."""
    if isinstance(obj, ModelArg):
        state = {k: v.detach().clone() for k, v in obj.state.items()}
        return {MARK: "model", "arch": obj.arch, "state": state, "key": obj.key}
    if isinstance(obj, GeneratorArg):
        return {MARK: "generator", "seed": int(obj.seed)}
    if isinstance(obj, OptimizerArg):
        return {MARK: "sgd", "model": obj.model_key, "lr": obj.lr, "momentum": obj.momentum}
    if isinstance(obj, AttackArg):
        return {MARK: "attack", "name": obj.name, "params": dict(obj.params)}
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, (list, tuple)):
        return type(obj)(encode(v) for v in obj)
    if isinstance(obj, dict):
        return {str(k): encode(v) for k, v in obj.items()}
    return obj


def decode(payload: Any) -> tuple[Any, dict]:
    """Live objects from :func:`encode` output, and the rebuilt models by key."""
    models: dict[str, torch.nn.Module] = {}
    _collect_models(payload, models)
    return _decode(payload, models), models


def _collect_models(p: Any, models: dict) -> None:
    if isinstance(p, dict) and p.get(MARK) == "model":
        from .nets import make_net

        net = make_net(p["arch"])
        net.load_state_dict(p["state"])
        models[p["key"]] = net
    elif isinstance(p, dict):
        for v in p.values():
            _collect_models(v, models)
    elif isinstance(p, (list, tuple)):
        for v in p:
            _collect_models(v, models)


def _decode(p: Any, models: dict) -> Any:
    if isinstance(p, dict) and MARK in p:
        return _decode_marker(p, models)
    if isinstance(p, torch.Tensor):
        return p.clone()
    if isinstance(p, (list, tuple)):
        return type(p)(_decode(v, models) for v in p)
    if isinstance(p, dict):
        return {k: _decode(v, models) for k, v in p.items()}
    return p


def _decode_marker(p: dict, models: dict) -> Any:
    kind = p[MARK]
    if kind == "model":
        return models[p["key"]]
    if kind == "generator":
        return torch.Generator().manual_seed(p["seed"])
    if kind == "sgd":
        params = models[p["model"]].parameters()
        return torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"])
    if kind == "attack":
        from .nets import ATTACKS

        return functools.partial(ATTACKS[p["name"]], **p["params"])
    raise ValueError(f"unknown marker {kind!r}")


def encode_output(value: Any, depth: int = 0) -> Any:
    """Plain-data form of a returned value; anything else becomes a type marker.

    Tensors keep their dtype (a complex or integer tensor is judged a wrong type by the grader,
    never converted here); a tensor that is not a dense CPU tensor (CUDA, meta, sparse,
    quantized) becomes a marker that names what it was.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value[:2000] if isinstance(value, str) else value
    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_NUMEL:
            return {"__unserializable__": f"tensor with {value.numel()} entries (too large)"}
        if value.layout != torch.strided or value.is_quantized or value.device.type != "cpu":
            kind = "quantized" if value.is_quantized else str(value.layout).replace("torch.", "")
            return {"__unserializable__": f"{kind} tensor on device {value.device}"}
        return value.detach().cpu().clone().contiguous().as_subclass(torch.Tensor)
    if depth < MAX_DEPTH and isinstance(value, (list, tuple)) and len(value) <= 1000:
        return type(value)(encode_output(v, depth + 1) for v in value)
    if depth < MAX_DEPTH and isinstance(value, dict) and len(value) <= 1000:
        return {str(k): encode_output(v, depth + 1) for k, v in value.items()}
    as_tensor = _numpy_to_tensor(value)
    if as_tensor is not None:
        return encode_output(as_tensor, depth)
    return {"__unserializable__": type(value).__name__}


def _numpy_to_tensor(value: Any) -> torch.Tensor | None:
    mod = type(value).__module__
    if mod == "numpy" or mod.startswith("numpy."):
        try:
            return torch.as_tensor(value)
        except Exception:
            return None
    return None


def model_states(models: dict) -> dict:
    """State dicts of the rebuilt models, detached copies."""
    return {
        k: {n: t.detach().clone() for n, t in m.state_dict().items()} for k, m in models.items()
    }
