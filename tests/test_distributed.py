"""Data-parallel training: two CPU processes on loopback (gloo), started by `rnnkit train --nproc 2`.

* One data-parallel step is the single-process step on the concatenated batch: after a few steps
  the weights of a 2-process run equal those of a 1-process run with the same global batch.
* A 2-process run killed with SIGKILL and resumed gives the same loss curve as an unbroken one
  (per-rank RNG and carried TBPTT states included: the model uses dropout).
* Resuming with another number of processes is refused with the reason, unless --reshard.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rnnkit.data.batching import BucketBatches, Shard, StreamBatches
from rnnkit.train.checkpoint import load_checkpoint

TINY = ["--hidden", "16", "--embed", "8", "--layers", "2", "--batch-size", "4", "--seq-len", "16",
        "--log-every", "1", "--eval-every", "5", "--lr", "1e-2", "--precision", "fp32"]


def rnnkit(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnkit", *argv], capture_output=True, text=True,
                          timeout=240, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 60, encoding="utf-8")
    return path


def kill_all(launcher: subprocess.Popen, run: Path) -> None:
    """SIGKILL the launcher and every worker writing ``run`` (torchrun's workers outlive it)."""
    os.killpg(launcher.pid, signal.SIGKILL)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(run) in cmdline and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    launcher.wait()


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def curve(run: Path) -> list[tuple]:
    return [(r["step"], r.get("train_loss"), r.get("val_loss")) for r in rows(run)]


def test_shards_split_each_global_batch():
    data = torch.arange(1000)
    whole = next(StreamBatches(data, 4, 10))[0]
    parts = [next(StreamBatches(data, 4, 10, shard=Shard(r, 2)))[0] for r in range(2)]
    assert torch.equal(torch.cat(parts), whole)
    with pytest.raises(ValueError, match="divisible"):
        StreamBatches(data, 3, 10, shard=Shard(0, 2))
    lengths = [3, 4, 5, 6, 7] * 7
    one = BucketBatches(lengths, 8, seed=0)
    two = [BucketBatches(lengths, 8, seed=0, shard=Shard(r, 2)) for r in range(2)]
    for _ in range(len(one)):
        full, halves = next(one), [next(b) for b in two]
        assert sorted(torch.cat(halves).tolist()) == sorted(full.tolist())


def test_two_processes_step_like_one_on_the_concatenated_batch(corpus, tmp_path):
    budget = ["--text", str(corpus), "--epochs", "0.3", *TINY]
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = rnnkit("train", "lm", *budget, "--out", str(one))
    assert r1.returncode == 0, r1.stderr
    r2 = rnnkit("train", "lm", *budget, "--out", str(two), "--nproc", "2")
    assert r2.returncode == 0, r2.stderr
    w1, meta1, _ = load_checkpoint(one / "last.safetensors")
    w2, meta2, state2 = load_checkpoint(two / "last.safetensors")
    assert meta1["step"] == meta2["step"] > 3 and state2["world_size"] == 2
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], atol=2e-5, rtol=2e-5, msg=name)
    # The logged training loss is the global batch's mean, as in one process.
    for a, b in zip(rows(one), rows(two)):
        assert a["step"] == b["step"]
        if "train_loss" in a:
            assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
    # Rank 1 keeps its own state (and the one before it) beside rank 0's checkpoints.
    assert sorted(p.name for p in two.iterdir() if p.name.startswith("last.rank")) == \
        ["last.rank1-prev.safetensors", "last.rank1.safetensors"]


def test_shuffled_batches_too_translation_on_two_processes_steps_like_one(tmp_path):
    """Length-bucketed mini-batches, every other example to each rank; the loss is a mean over
    target tokens, which the all-reduce weights by each rank's token count."""
    words = ["der", "hund", "katze", "sieht", "mag", "nicht"]
    lines = sorted({f"{' '.join(words[(i * k) % 6] for k in range(1 + i % 5))}\t"
                    f"{' '.join(words[(i * k + 1) % 6] for k in range(1 + i % 5))}"
                    for i in range(300)})
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = ["train", "translate", "--pairs", str(pairs), "--epochs", "1", "--embed", "8",
              "--hidden", "16", "--batch-size", "8", "--eval-every", "1000", "--precision", "fp32",
              "--dropout", "0"]
    weights = []
    for n in (1, 2):
        run = tmp_path / f"run{n}"
        done = rnnkit(*common, "--out", str(run), "--nproc", str(n))
        assert done.returncode == 0, done.stderr
        weights.append(load_checkpoint(run / "last.safetensors")[0])
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], atol=2e-5, rtol=2e-5,
                                   msg=name)


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_the_same_loss_curve(corpus, tmp_path):
    args = ["--text", str(corpus), "--epochs", "1.2", *TINY, "--dropout", "0.3", "--nproc", "2"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert rnnkit("train", "lm", *args, "--out", str(whole)).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "rnnkit", "train", "lm", *args, "--out",
                             str(broken)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline:            # kill once a checkpoint exists and training went on
        if (broken / "last.safetensors").is_file() and len(rows(broken)) > 12:
            break
        time.sleep(0.05)
    kill_all(proc, broken)
    assert not (broken / "summary.json").exists()          # killed before the end
    resumed = rnnkit("train", "lm", "--resume", str(broken), "--nproc", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert curve(broken) == curve(whole)


def test_resume_with_another_number_of_processes_is_refused(corpus, tmp_path):
    run = tmp_path / "run"
    assert rnnkit("train", "lm", "--text", str(corpus), "--epochs", "0.3", *TINY, "--out",
                  str(run), "--nproc", "2").returncode == 0
    refused = rnnkit("train", "lm", "--resume", str(run))
    assert refused.returncode == 2
    assert "2 process(es)" in refused.stderr and "--reshard" in refused.stderr
    assert "Traceback" not in refused.stderr
