"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Write to a temporary file in the same directory, fsync it, ``os.replace`` it onto the target, fsync the
directory. A writer that fails (or is killed) leaves the target untouched; a failure inside Python also
removes the temporary file and raises an `OSError` that names the target (a full disk, a read-only
directory). A writer killed outside Python's control (SIGKILL, power loss) leaves its temporary file
behind: `remove_stale_temps` clears them when the directory is next written by its owner (a resumed
run). Imports nothing from rnnkit, so every layer may use it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Union

PathLike = Union[str, "os.PathLike[str]"]

_TEMP_SUFFIX = ".tmp"                    # temporary files are ".<target name>.<random>.tmp"


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:                # a read-only directory, a full disk
        raise _cannot_write(path, exc) from exc
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes 0600; a written file gets the usual mode
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from exc
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _cannot_write(path: Path, exc: OSError) -> OSError:
    """The same kind of OSError (same errno), saying which file could not be written and that it
    was left as it was."""
    message = f"cannot write {path}: {exc.strerror or exc} ({path.name} is left as it was)"
    return OSError(exc.errno, message) if exc.errno else OSError(message)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def atomic_write_text(path: PathLike, text: str) -> None:
    """UTF-8, newlines written as given."""
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(directory: PathLike) -> list[Path]:
    """Delete the temporary files that killed `atomic_write` calls left in ``directory``; returns them.

    Only for a directory with one writer, called by that writer before it writes again (a concurrent
    writer's temporary file would look the same)."""
    stale = [p for p in Path(directory).glob(f".*{_TEMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale
