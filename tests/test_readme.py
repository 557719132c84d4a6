"""The README's library example must run exactly as written, and its claims must hold."""
from __future__ import annotations

import re
import runpy
from pathlib import Path

import torch

from rnnkit import kernels

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_as_written(tmp_path, capsys):
    code = re.search(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(code)
    ns = runpy.run_path(str(script))
    bptt = "bptt+kernels" if kernels.load() is not None else "bptt"   # with a C++ compiler
    assert capsys.readouterr().out.split() == ["fused", bptt]
    out, lengths = ns["out"], ns["lengths"]
    # The reverse unroll of a user cell returns zeros past each row's length, in time order.
    assert torch.all(out[1, 4:] == 0) and torch.all(out[2, 7:] == 0)
    assert torch.all(out[0] != 0)
    assert ns["h"].shape == (3, 16) and torch.equal(lengths, torch.tensor([10, 4, 7]))
    assert ns["y"].shape == (3, 10, 32) and torch.all(ns["y"][1, 4:] == 0)
    forget = ns["records"][0]["f"]                                # layer 0, forward direction
    assert forget.shape == (3, 10, 16) and bool(((forget > 0) & (forget < 1))[0].all())
    assert torch.all(forget[1, 4:] == 0)                          # nothing past a row's end


def test_readme_starts_with_the_two_commands():
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S).group(1)
    assert [line.split()[:2] for line in first_block.strip().splitlines()] == \
        [["make", "demo"], ["make", "test"]]
