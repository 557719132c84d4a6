"""Checkpoint I/O: tensors in safetensors, everything else as JSON; never pickle, always atomic, verified.

A checkpoint is ONE file, ``<name>.safetensors``: its tensors are the model weights (``model.*``) and
whatever tensors the training state holds (optimizer moments, RNG states, carried hidden states…);
its header metadata holds one JSON document (format version, config, vocabulary, step, and the
non-tensor parts of the training state). One file means one ``os.replace``: a reader sees the old
checkpoint or the new one, never half of each, even if the writer is killed mid-write.

Nested training state (e.g. ``optimizer.state_dict()``) is split by :func:`flatten`: every tensor
goes to the tensor table under a dotted path and is replaced in the JSON by ``{"__tensor__": path}``.

Integrity. Every save records the file's size and sha256 in the manifest ``checksums.json`` beside it
(a name no other tool's file is likely to have), written atomically after the checkpoint file is in
place. Loading a file the manifest lists checks both
first, so a truncated file or one with flipped bytes is a `CheckpointError` naming the file and what
is wrong, not a model with silently changed weights. A file the manifest does not list (a checkpoint
copied elsewhere, a run older than manifests) loads without that check. Its structure is checked
either way: the 8-byte header length against the file size here (for a clear message), and the
rest by the safetensors library, which rejects a non-JSON or oversized header, unknown dtypes,
shapes that do not match their byte ranges, and data offsets that overlap, leave gaps or run past
the end (tests/test_faults.py feeds it each of these). Reading runs no code: never unpickle.

The previous checkpoint. ``save_checkpoint(..., keep_previous=True)`` (the trainer's ``last``) first
makes the current file ``<name>-prev.safetensors`` (a hard link, so no copy; a copy where the file
system has no links) and moves its manifest entry along, then writes the new file. At every instant
``<name>`` is a complete file and ``<name>-prev`` an older one. A writer killed after the new file is
in place but before the manifest records it leaves ``<name>`` failing verification and
``<name>-prev`` passing it, so :func:`load_latest` (the resume path) falls back to the previous
checkpoint and the run repeats the steps since. Only a file that passes verification becomes
``<name>-prev``: such an unrecorded file never displaces the last good one.

Non-finite model weights are refused at save time: a NaN never reaches a checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..files import atomic_write, atomic_write_text

FORMAT_VERSION = 1
_META_KEY = "rnnkit"
MANIFEST = "checksums.json"             # {"files": {"<name>.safetensors": {"size": n, "sha256": hex}}}


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, corrupted or not one of ours, or one that must not
    be written (non-finite weights)."""


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


# ---- the manifest ----------------------------------------------------------------------------------

def file_digest(path: Path) -> dict:
    """``{"size": bytes, "sha256": hex}`` of a file, read in 1 MiB blocks."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return {"size": os.path.getsize(path), "sha256": sha.hexdigest()}


def read_manifest(directory: Path) -> dict[str, dict]:
    """The manifest's entries by file name; empty when the directory has no manifest."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {}
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(entry, dict) and isinstance(entry.get("size"), int)
                   and isinstance(entry.get("sha256"), str) for entry in files.values()):
            raise TypeError("an entry without an integer 'size' and a string 'sha256'")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
            AttributeError) as e:
        raise CheckpointError(f"{path} is not a readable checkpoint manifest: {e}") from None
    return files


def _update_manifest(directory: Path, change: Callable[[dict[str, dict]], None]) -> None:
    files = read_manifest(directory)
    change(files)
    atomic_write_text(Path(directory) / MANIFEST,
                      json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")


def verify(path: Path) -> None:
    """Check ``path`` against its manifest entry (size, then sha256); no entry, no check."""
    path = Path(path)
    expected = read_manifest(path.parent).get(path.name)
    if expected is None:
        return
    actual = file_digest(path)
    if actual["size"] != expected["size"]:
        # Shorter: truncated. Either way it may also be a newer checkpoint whose writer was killed
        # between putting it in place and recording it.
        what = "truncated" if actual["size"] < expected["size"] else "changed"
        raise CheckpointError(f"{path} does not match {MANIFEST}: {actual['size']} bytes where it "
                              f"records {expected['size']} ({what}, or its writer was killed "
                              f"before recording it)")
    if actual["sha256"] != expected["sha256"]:
        raise CheckpointError(f"{path} does not match {MANIFEST} (sha256 {actual['sha256'][:16]}…, "
                              f"recorded {expected['sha256'][:16]}…): it is corrupted, or its "
                              f"writer was killed before recording it")


def _verifies(path: Path) -> bool:
    try:
        verify(path)
    except CheckpointError:
        return False
    return True


def previous_path(path: Path) -> Path:
    """Where ``keep_previous`` keeps the checkpoint a save replaces: ``last-prev.safetensors``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-prev{path.suffix}")


def _link_or_copy(source: Path, target: str) -> None:
    os.unlink(target)                    # atomic_write's empty temporary file: the link's name
    try:
        os.link(source, target)
    except OSError:                      # a file system without hard links (FAT, some shares)
        shutil.copyfile(source, target)


# ---- save and load ---------------------------------------------------------------------------------

def save_checkpoint(path: Path, model_state: dict[str, torch.Tensor], meta: dict,
                    training_state: Any = None, keep_previous: bool = False) -> None:
    """Write ``model_state`` + ``meta`` (JSON-able) + optional nested ``training_state`` atomically,
    and record it in the manifest. ``keep_previous``: the file it replaces becomes
    ``previous_path(path)`` first. Raises `CheckpointError` for a non-finite weight (nothing is
    written) and an `OSError` naming the file when the disk is full or the directory read-only
    (the files already there are left as they were)."""
    path = Path(path)
    for name, value in model_state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"refusing to write {path}: weight {name!r} has "
                                  f"{int((~torch.isfinite(value)).sum())} non-finite values")
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model_state.items()}
    doc = {"format_version": FORMAT_VERSION, "meta": meta,
           "training_state": flatten(training_state, tensors, "train")}
    header = {_META_KEY: json.dumps(doc, allow_nan=False)}
    directory = path.parent
    read_manifest(directory)             # an unreadable manifest stops the save before any write
    if keep_previous and path.is_file() and _verifies(path):
        previous = previous_path(path)
        # A save killed after this link leaves both names on one file; renaming a link onto its
        # twin does nothing (POSIX rename), which would strand the temporary link.
        if not (previous.is_file() and os.path.samefile(path, previous)):
            atomic_write(previous, lambda tmp: _link_or_copy(path, tmp))

        def move_entry(files: dict[str, dict]) -> None:
            files.pop(previous.name, None)
            if path.name in files:
                files[previous.name] = files[path.name]
        _update_manifest(directory, move_entry)
    digest: dict = {}

    def write(tmp: str) -> None:
        save_file(tensors, tmp, metadata=header)
        digest.update(file_digest(Path(tmp)))

    def record(files: dict[str, dict]) -> None:
        files[path.name] = digest
    atomic_write(path, write)
    _update_manifest(directory, record)


def _check_header_length(path: Path) -> None:
    """The first 8 bytes are the header's length (little-endian); it must fit in the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8:
        raise CheckpointError(f"{path} is not a safetensors checkpoint: {size} bytes, fewer than "
                              f"the 8-byte header length")
    length = int.from_bytes(head, "little")
    if length > size - 8:
        raise CheckpointError(f"{path} is truncated or not a safetensors checkpoint: its header "
                              f"length field says {length} bytes, {size - 8} follow")


def load_checkpoint(path: Path, device: str | torch.device = "cpu"
                    ) -> tuple[dict[str, torch.Tensor], dict, Any]:
    """Returns ``(model_state, meta, training_state)`` after `verify`. Reads tensors and JSON only:
    no code runs. Any problem is a `CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        verify(path)
        _check_header_length(path)
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        tensors = load_file(str(path), device=str(device))
        doc = json.loads(header[_META_KEY])
        if doc.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {doc.get('format_version')!r}, "
                                  f"this rnnkit reads format {FORMAT_VERSION}")
        model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
        return model_state, doc["meta"], unflatten(doc["training_state"], tensors)
    except (SafetensorError, KeyError, TypeError, AttributeError, ValueError, OSError) as e:
        # ValueError includes a header whose JSON does not parse; AttributeError/TypeError/KeyError
        # a header that parses but does not have our structure.
        raise CheckpointError(f"{path} is not a readable rnnkit checkpoint: {e}") from None


def load_latest(path: Path, warn: Callable[[str], None], device: str | torch.device = "cpu"
                ) -> tuple[dict, dict, Any, Path]:
    """`load_checkpoint` of ``path``, or, when that fails, of ``previous_path(path)`` (``warn`` says
    so in one line). Returns ``(model_state, meta, training_state, the path loaded)``; raises the
    `CheckpointError` of both when neither loads."""
    path = Path(path)
    try:
        return (*load_checkpoint(path, device), path)
    except CheckpointError as newest:
        previous = previous_path(path)
        if not previous.is_file():
            raise
        try:
            loaded = load_checkpoint(previous, device)
        except CheckpointError as older:
            raise CheckpointError(f"{newest}; and the previous checkpoint: {older}") from None
        warn(f"warning: {newest}; using the previous checkpoint {previous.name} instead")
        return (*loaded, previous)
