"""The compiled kernels (``csrc/steps.cpp``): the pointwise half of each cell's step (``bptt``),
minGRU's and minLSTM's whole recurrences (``scan``) and word2vec's SGD step; built once per
machine, then loaded from a cache.

``load()`` returns ``torch.ops.rnnkit_steps`` or None. The first call compiles the C++ file with the
machine's g++ through ``torch.utils.cpp_extension`` (about 20–40 s; ``make`` does it at install
time with ``kernels.build()``) into ``$RNNKIT_CACHE/kernels/<key>`` (default
``~/.cache/rnnkit``), where the key covers the source, torch's version and the CPU's flags, since the
code is built for this CPU (-march=native). Without a compiler, or with ``RNNKIT_KERNELS=0`` in the
environment, ``load()`` returns None and ``bptt`` runs its steps as torch ops instead; the layers
say which in ``last_impl`` ("bptt+kernels" or "bptt"; MinGRU/MinLSTM "recurrence+kernels" or
"recurrence").
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Optional

import torch

__all__ = ["load", "build", "build_error", "step_kernels"]

SOURCE = Path(__file__).parent / "csrc" / "steps.cpp"
# -fopenmp: at::parallel_for (the minGRU/minLSTM recurrences) runs on torch's own OpenMP threads;
# the extension's libgomp.so.1 resolves to the copy torch has already loaded.
FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-ffast-math", "-fopenmp"]

_state: dict = {}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def _build_dir() -> Path:
    key = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode() + " ".join(FLAGS).encode()
                         + _cpu_flags().encode()).hexdigest()[:16]
    root = Path(os.environ.get("RNNKIT_CACHE", Path.home() / ".cache" / "rnnkit"))
    return root / "kernels" / key


def load(verbose: bool = False) -> Optional[object]:
    """``torch.ops.rnnkit_steps`` once built and loaded; None where they cannot be (see
    ``build_error()``), or when RNNKIT_KERNELS=0."""
    if os.environ.get("RNNKIT_KERNELS", "1") == "0":
        return None
    if "ops" not in _state:
        _state["ops"], _state["error"] = None, None
        try:
            from torch.utils import cpp_extension
            # cpp_extension runs `ninja` from PATH: the one pip put beside this interpreter will do
            # when the shell never activated the virtual environment.
            here = str(Path(sys.executable).parent)
            if shutil.which("ninja") is None and shutil.which("ninja", path=here):
                os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")
            build = _build_dir()
            build.mkdir(parents=True, exist_ok=True)
            cpp_extension.load(name="rnnkit_steps", sources=[str(SOURCE)], extra_cflags=FLAGS,
                               extra_ldflags=["-fopenmp"],
                               build_directory=str(build), is_python_module=False,
                               verbose=verbose)
            _state["ops"] = torch.ops.rnnkit_steps
        except Exception as e:     # no compiler, no headers, a failed build: say so once
            _state["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else e}"
            warnings.warn(f"rnnkit: the compiled step kernels could not be built "
                          f"({_state['error']}); the hand-written BPTT runs its steps as torch ops",
                          RuntimeWarning, stacklevel=2)
    return _state["ops"]


def step_kernels(x: torch.Tensor):
    """The compiled kernels if they apply to ``x`` (CPU, float32/float64) and are built, else None."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64):
        return None
    return load()


def build_error() -> Optional[str]:
    """Why ``load()`` returned None (None if it did not, or was not called)."""
    return _state.get("error")


def build(verbose: bool = False) -> str:
    """Build now (make's install step) and say where, or why not."""
    ops = load(verbose)
    return f"rnnkit kernels: {'ready in ' + str(_build_dir()) if ops else build_error() or 'disabled'}"


if __name__ == "__main__":
    print(build(verbose="-v" in sys.argv))
