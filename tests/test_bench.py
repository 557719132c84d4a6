"""rnnkit bench: the table it prints is built from real timings of the right layers."""
from __future__ import annotations

import json

import pytest
import torch

from rnnkit import bench, kernels
from rnnkit.cli import main

pytestmark = pytest.mark.usefixtures("single_thread")


def test_run_bench_times_every_case_at_every_shape_and_reports_the_path_taken():
    shapes = ((2, 5, 3, 4), (1, 3, 2, 3))
    result = bench.run_bench(shapes, rounds=1)
    assert result["peak_gflops"] > 0 and result["peak_gemm"]
    assert [(r["layer"], r["B"]) for r in result["rows"]] == \
        [(c.name, s[0]) for s in shapes for c in bench.CASES]
    impls = {}
    for row in result["rows"]:
        for mode in ("fwd", "fwd_bwd"):
            m = row[mode]
            assert m["ms"] > 0 and m["torch_ms"] > 0 and m["ratio"] > 0
            assert m["gflops"] == pytest.approx(m["peak_fraction"] * result["peak_gflops"])
        impls[row["layer"]] = (row["fwd"]["impl"], row["fwd_bwd"]["impl"])
    # inference through torch's kernel where it computes the layer, training through bptt
    bptt = "bptt+kernels" if kernels.load() is not None else "bptt"
    assert impls["GRU"] == ("fused", bptt) and impls["RNN"] == ("fused", bptt)
    assert impls["LSTM"] == ("fused", "fused")
    assert impls["LSTM peephole"] == (bptt, bptt)
    assert impls["LSTM layer_norm"] == (bptt, bptt)
    assert impls["nn.LSTM dropout 2L"] == ("torch", "torch")
    table = bench.format_bench(result)
    assert table.count("\n| ") == len(result["rows"]) + 1            # header + one line per row


def test_gemm_peak_is_a_rate_of_a_named_gemm():
    rate, name = bench.gemm_peak(repeats=1)
    assert rate > 0.1 and name.split(", (")[0] in (
        "torch.mm (MKL)", "MKL, packed weight", "oneDNN, packed weight", "oneDNN tensors")


def test_cli_bench_refuses_a_bad_round_count(capsys):
    with pytest.raises(SystemExit, match="--rounds must be positive, got 0"):
        main(["bench", "--rounds", "0"])


def test_cli_bench_json(monkeypatch, capsys):
    monkeypatch.setattr(bench, "SHAPES", ((2, 4, 3, 4),))
    monkeypatch.setattr(bench, "CASES", bench.CASES[:2])
    assert main(["bench", "--quick", "--json", "--rounds", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["layer"] for r in out["rows"]] == ["LSTM", "GRU"]
    assert out["threads"] == torch.get_num_threads()
