"""Checkpoint I/O: tensors in safetensors, everything else as JSON; never pickle, always atomic.

A checkpoint is ONE file, ``<name>.safetensors``: its tensors are the model weights (``model.*``) and
whatever tensors the training state holds (optimizer moments, RNG states, carried hidden states…);
its header metadata holds one JSON document (format version, config, vocabulary, step, and the
non-tensor parts of the training state). One file means one ``os.replace``: a reader sees the old
checkpoint or the new one, never half of each, even if the writer is killed mid-write.

Nested training state (e.g. ``optimizer.state_dict()``) is split by :func:`flatten`: every tensor
goes to the tensor table under a dotted path and is replaced in the JSON by ``{"__tensor__": path}``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..files import atomic_write

FORMAT_VERSION = 1
_META_KEY = "rnnkit"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, or not one of ours."""


def flatten(obj: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """Move every tensor of a nested dict/list/tuple into ``tensors``; return a JSON-able copy."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        # JSON keys are strings: remember which were ints (optimizer state is keyed by param index).
        return {"__dict__": [[k, flatten(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path} in a checkpoint")


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__tuple__" in obj:
            return tuple(unflatten(v, tensors) for v in obj["__tuple__"])
        return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], meta: dict,
                    training_state: Any = None) -> None:
    """Write ``model_state`` + ``meta`` (JSON-able) + optional nested ``training_state`` atomically."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    doc = {"format_version": FORMAT_VERSION, "meta": meta,
           "training_state": flatten(training_state, tensors, "train")}
    header = {_META_KEY: json.dumps(doc, allow_nan=False)}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=header))


def load_checkpoint(path: Path, device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict, Any]:
    """Returns ``(model_state, meta, training_state)``. Reads tensors and JSON only: no code runs."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path), device=str(device))
        doc = json.loads(header[_META_KEY])
    except (SafetensorError, KeyError, json.JSONDecodeError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable rnnkit checkpoint: {e}") from None
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {doc.get('format_version')!r}, "
                              f"this rnnkit reads format {FORMAT_VERSION}")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return model_state, doc["meta"], unflatten(doc["training_state"], tensors)
