"""The language-model task end to end through the CLI, on small corpora the tests write."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnkit.cli import main
from rnnkit.data.batching import StreamBatches
from rnnkit.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")    # tiny models: 2 threads ran 10x slower here

SMALL = ["--hidden", "32", "--embed", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "16",
         "--log-every", "5", "--eval-every", "10"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("abcdefgh\n" * 300, encoding="utf-8")      # a deterministic pattern
    return path


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_learns_a_deterministic_pattern_to_near_zero_loss(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lm", "--text", str(corpus), "--epochs", "6", "--lr", "1e-2",
                 "--out", str(run), *SMALL]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "lm" and summary["steps"] > 0
    assert summary["final_val_loss"] < 0.05, summary
    assert summary["final_val_bpc"] == pytest.approx(summary["final_val_loss"] / math.log(2))
    for name in ("config.json", "vocab.json", "metrics.jsonl", "loss.png", "best.safetensors",
                 "last.safetensors"):
        assert (run / name).is_file(), name
    capsys.readouterr()
    # The sample continues the pattern exactly at a low temperature.
    assert main(["sample", str(run), "--prime", "abc", "--length", "30", "--temperature", "0.05"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("abcdefgh\nabcdefgh\nabcdefgh\nabc"), text
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["loss"] == pytest.approx(summary["final_val_loss"], rel=1e-6)


def test_stream_batches_continue_each_row_exactly():
    data = torch.arange(103)
    batches = StreamBatches(data, batch_size=4, seq_len=5)        # streams of 25, 5 chunks each
    assert batches.chunks_per_epoch == 5
    chunks = [next(batches) for _ in range(5)]
    x = torch.cat([c[0] for c in chunks], dim=1)                  # (4, 25)
    y = torch.cat([c[1] for c in chunks], dim=1)
    assert torch.equal(x, torch.arange(100).view(4, 25))          # row b is one contiguous stream
    assert torch.equal(y, x + 1)                                  # targets: shifted by one
    assert batches.state_dict() == {"epoch": 0, "chunk": 5}
    again = StreamBatches(data, 4, 5)
    again.load_state_dict({"epoch": 0, "chunk": 3})
    assert torch.equal(next(again)[0], chunks[3][0])
    nxt = next(batches)                                           # a new epoch starts the streams
    assert batches.epoch == 1 and torch.equal(nxt[0], chunks[0][0])
    with pytest.raises(ValueError, match="needs at least 81"):
        StreamBatches(torch.arange(50), 4, 20)


def test_resume_after_a_crash_continues_the_same_loss_curve(corpus, tmp_path, monkeypatch):
    """Bit-for-bit on CPU: model, optimizer, schedule, stream position, carried state, RNG."""
    common = [*SMALL, "--text", str(corpus), "--epochs", "3", "--dropout", "0.3", "--layers", "2",
              "--recurrent-dropout", "0.2"]
    full, crashed = tmp_path / "full", tmp_path / "crashed"
    assert main(["train", "lm", *common, "--out", str(full)]) == 0

    from rnnkit.tasks.lm import LMTask
    real_step = LMTask.train_step
    calls = {"n": 0}

    def crash_at_step_27(self, model):
        calls["n"] += 1
        if calls["n"] == 27:             # after the checkpoint at step 20, before the one at 30
            raise KeyboardInterrupt
        return real_step(self, model)

    monkeypatch.setattr(LMTask, "train_step", crash_at_step_27)
    assert main(["train", "lm", *common, "--out", str(crashed)]) == 130     # as after Ctrl-C
    monkeypatch.setattr(LMTask, "train_step", real_step)
    assert max(r["step"] for r in rows(crashed)) == 25           # logged past the checkpoint

    assert main(["train", "lm", "--resume", str(crashed)]) == 0
    untimed = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "chars_per_s")}
                          for r in rs]
    assert untimed(rows(crashed)) == untimed(rows(full))          # exact floats, not approx
    a, _, _ = load_checkpoint(full / "last.safetensors")
    b, _, _ = load_checkpoint(crashed / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_round_trip_and_interrupted_save(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    weights = {"w": torch.randn(3, 4), "b": torch.arange(5)}
    state = {"step": 7, "opt": {0: {"m": torch.ones(2)}, "lr": 0.1}, "pair": (1, "x")}
    save_checkpoint(path, weights, {"task": "lm", "vocab": ["a", "b"]}, state)
    w2, meta, state2 = load_checkpoint(path)
    assert all(torch.equal(weights[k], w2[k]) for k in weights) and meta["vocab"] == ["a", "b"]
    assert state2["step"] == 7 and state2["pair"] == (1, "x") and 0 in state2["opt"]
    assert torch.equal(state2["opt"][0]["m"], torch.ones(2))

    # A save that dies half-way leaves the previous checkpoint intact and no temp file behind.
    import safetensors.torch as st
    real = st.save_file

    def dies_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("rnnkit.train.checkpoint.save_file", dies_half_way)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(path, {"w": torch.zeros(1)}, {}, None)
    monkeypatch.setattr("rnnkit.train.checkpoint.save_file", real)
    w3, _, _ = load_checkpoint(path)
    assert torch.equal(w3["w"], weights["w"])
    assert sorted(os.listdir(tmp_path)) == ["checksums.json", "last.safetensors"]

    path.write_bytes(path.read_bytes()[:100])                     # truncated on disk
    with pytest.raises(CheckpointError, match="last.safetensors does not match checksums.json: 100 bytes"):
        load_checkpoint(path)




def test_bad_input_gives_clear_errors_and_touches_nothing(corpus, tmp_path, capsys, fails):
    run = tmp_path / "run"
    assert main(["train", "lm", "--text", str(corpus), "--epochs", "1", "--out", str(run), *SMALL]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()

    fails(["train", "lm", "--text", str(corpus), "--epochs", "1", "--out", str(run), *SMALL],
          capsys, "already exists and is not empty")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before

    empty = tmp_path / "empty.txt"
    empty.write_text("")
    fails(["train", "lm", "--text", str(empty), "--epochs", "1", *SMALL], capsys, "no text")
    short = tmp_path / "short.txt"
    short.write_text("abc\n" * 10)
    fails(["train", "lm", "--text", str(short), "--epochs", "1", "--out", str(tmp_path / "s"), *SMALL],
          capsys, "needs at least")
    assert not (tmp_path / "s").exists()
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello\n" * 10 + b"\xff\xfe world")
    fails(["train", "lm", "--text", str(bad), "--epochs", "1"], capsys, "byte offset 60")

    fails(["sample", str(run), "--prime", "xyz"], capsys, "never saw: 'xyz'")
    fails(["sample", str(run), "--temperature", "0"], capsys, "temperature must be > 0")
    fails(["sample", str(run), "--top-p", "1.5"], capsys, "top-p must be in (0, 1]")
    fails(["sample", str(run), "--length", "0"], capsys, "--length must be positive")
    fails(["sample", str(tmp_path)], capsys, "config.json is missing")

    other = tmp_path / "other.txt"
    other.write_text("abcdefgh\n" * 290 + "XYZ\n" * 10)
    config = json.loads((run / "config.json").read_text())
    config["data"]["text"] = [str(other)]
    (run / "config.json").write_text(json.dumps(config))
    fails(["train", "lm", "--resume", str(run)], capsys, "only in the data: 'XYZ'")


def test_nonfinite_loss_stops_without_saving(corpus, tmp_path, capsys, monkeypatch, fails):
    from rnnkit.tasks.lm import LMTask
    real_step = LMTask.train_step
    calls = {"n": 0}

    def poisoned(self, model):
        calls["n"] += 1
        loss, n = real_step(self, model)
        return (loss * float("nan") if calls["n"] == 15 else loss), n

    monkeypatch.setattr(LMTask, "train_step", poisoned)
    run = tmp_path / "run"
    fails(["train", "lm", "--text", str(corpus), "--epochs", "2", "--out", str(run), *SMALL],
          capsys, "loss is nan at step 15")
    weights, meta, _ = load_checkpoint(run / "last.safetensors")
    assert meta["step"] == 10 and all(torch.isfinite(w).all() for w in weights.values())


def test_char_vocab_array_encoding_equals_the_readable_encoding():
    from rnnkit.data.vocab import CharVocab
    text = "ROMEO:\nÉtoile — 😀 night\tday\n"
    vocab = CharVocab(sorted(set(text)))
    assert vocab.encode_array(text).tolist() == vocab.encode(text)
    assert vocab.decode(vocab.encode_array(text).tolist()) == text
    with pytest.raises(ValueError, match="'Zq'"):
        vocab.encode_array(text + "Zq")


def test_word_level_model_learns_and_samples_words(tmp_path, capsys):
    text = tmp_path / "words.txt"
    text.write_text("the cat sat on the mat .\n" * 200, encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "lm", "--text", str(text), "--level", "word", "--epochs", "8",
                 "--lr", "1e-2", "--out", str(run), *SMALL]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_val_loss"] < 0.1
    assert summary["final_val_ppl"] == pytest.approx(math.exp(summary["final_val_loss"]))
    vocab = json.loads((run / "vocab.json").read_text())
    assert vocab["kind"] == "word" and {"cat", "mat", "<unk>"} <= set(vocab["symbols"])
    capsys.readouterr()
    assert main(["sample", str(run), "--prime", "the cat", "--length", "5",
                 "--temperature", "0.05"]) == 0
    assert capsys.readouterr().out.split() == ["the", "cat", "sat", "on", "the", "mat", "."]


def test_generation_reads_the_prime_once_then_one_token_per_step():
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=11, embed=4, hidden=8, layers=2))
    seen = []
    model.embedding.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    gen = torch.Generator().manual_seed(3)
    out = list(model.generate([1, 2, 3, 4, 5], 6, temperature=0.7, generator=gen))
    assert seen == [(1, 5)] + [(1,)] * 6            # never re-runs the prefix
    assert len(out) == 6 and all(0 <= i < 11 for i in out)
    # The layer's one-step path (compiled kernels) samples what stepping through forward() does.
    sample = lambda: list(model.generate([1, 2, 3], 60, generator=torch.Generator().manual_seed(4)))
    fast = sample()

    def through_forward():
        def step(x_t, state):
            out, state = model.rnn(x_t.unsqueeze(0), state)
            return out[0], state
        return step
    model.rnn.stepper = through_forward
    assert sample() == fast
    # Carrying the state step by step gives the same distribution as re-reading everything.
    tokens = torch.tensor([[1, 2, 3, 4, 5] + out[:-1]])
    full_logits, _ = model(tokens)
    logits, state = model(tokens[:, :5])
    for t in range(5, tokens.shape[1]):
        logits, state = model(tokens[:, t:t + 1], state)
        assert torch.allclose(logits[0, -1], full_logits[0, t], atol=1e-5)


def test_markov_cli_trains_the_best_order_samples_plays_and_evaluates(tmp_path, capsys, fails):
    text = tmp_path / "play.txt"
    speeches = ["ROMEO:\nthe night is long\n", "JULIET:\nthe day is come\n",
                "NURSE:\nmadam, your mother\n"]
    text.write_text("\n".join(speeches * 60), encoding="utf-8")
    run = tmp_path / "markov"
    assert main(["train", "markov", "--text", str(text), "--max-order", "4", "--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["order"] for r in rows] == [1, 2, 3, 4]
    summary = json.loads((run / "summary.json").read_text())
    best = min(rows, key=lambda r: r["val_loss"])
    assert summary["order"] == best["order"] and summary["best_val_loss"] == best["val_loss"]
    assert summary["val_bpc"] == pytest.approx(best["val_loss"] / math.log(2))
    assert (run / "loss.png").is_file()
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["loss"] == pytest.approx(best["val_loss"])
    assert main(["sample", str(run), "--play", "--seed", "1"]) == 0
    play = capsys.readouterr().out
    assert play.startswith("THE TRAGEDY OF ") and "ACT I\n" in play and "[Enter " in play
    # Every block is a heading, a stage direction, or "NAME:" + speech, NAME from the training text.
    blocks = [b for b in play.split("\n\n") if b.strip()]
    heads = [b.splitlines()[0] for b in blocks
             if not b.startswith(("THE TRAGEDY", "ACT ", "SCENE ", "["))]
    assert heads and all(h.endswith(":") for h in heads)
    assert {h[:-1] for h in heads} <= {"ROMEO", "JULIET", "NURSE"}
    fails(["sample", str(run), "--prime", "ROMEO:\nZ"], capsys, "never saw: 'Z'")
    fails(["train", "markov", "--text", str(text), "--order", "x"], capsys,
          "--order must be an integer or 'best'")


def test_an_unwritable_run_directory_is_one_error_line(corpus, tmp_path, capsys, fails):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    fails(["train", "lm", "--text", str(corpus), "--epochs", "1", "--out", str(blocker / "run"),
           *SMALL], capsys, "Not a directory")
    assert blocker.read_text() == "not a directory"


FAULTS_CHILD = """
import resource, sys, torch
from rnnkit import cli
if sys.argv[1] == "cli":
    sys.argv = ["rnnkit", "eval", "no-such-run"]
    assert cli.main() == 2                   # the real entry, failing fast: it sets the allocator up first
def faults_of_a_64_mb_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(16 << 20)
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(min(faults_of_a_64_mb_tensor() for _ in range(4)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc is Linux's")
def test_the_cli_process_reuses_freed_memory_instead_of_faulting_it_in_again():
    """A 64 MB tensor made again and again page-faults its 16k pages every time in a plain process
    (glibc maps big blocks afresh), and next to none once warm in the rnnkit process, whose freed
    blocks stay for reuse."""
    def faults(how):
        out = subprocess.run([sys.executable, "-c", FAULTS_CHILD, how], capture_output=True,
                             text=True, check=True)
        return int(out.stdout.split()[-1])
    assert faults("plain") > 10_000
    assert faults("cli") < 1_000
