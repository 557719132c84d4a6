"""Faults: killed runs, damaged and crafted checkpoints, failed saves, non-finite steps, determinism.

The SIGKILL tests run ``rnnkit train lm`` in a child process (CHILD below: the real CLI with two
test-only wrappers, one that freezes it inside a chosen checkpoint write and one that slows its
steps) and kill it at seeded random points; after each kill every checkpoint file on disk must be
complete, and the run, resumed to the end, must log exactly the loss curve of an uninterrupted run.
The other tests run the CLI in this process with one function patched to fail (a full disk, a
read-only directory, a NaN loss). ``slow``: many kills in one run's life.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import rnnkit.files as files
import rnnkit.train.checkpoint as checkpoint
from rnnkit.cli import main
from rnnkit.tasks.lm import LMTask
from rnnkit.train.checkpoint import (CheckpointError, load_checkpoint, load_latest, save_checkpoint,
                                     verify)
from rnnkit.train.trainer import truncate_metrics

pytestmark = pytest.mark.usefixtures("single_thread")    # tiny models: one thread is fastest

# 2 epochs of 40 batches: evaluations (and checkpoints) at steps 10, 20, ..., 80.
STEPS, EVAL_EVERY = 80, 10
TRAIN = ["--hidden", "32", "--embed", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "16",
         "--log-every", "5", "--eval-every", str(EVAL_EVERY), "--epochs", "2", "--precision", "fp32"]

# The child: `rnnkit <argv>` with FAULT_FREEZE="<phase>:<file name>:<n>" freezing it at the n-th
# atomic write of that checkpoint file, either when the temporary file is complete but not yet in
# place ("written") or right after it is in place, before the manifest records it ("in-place"); it
# then touches FAULT_MARKER and waits for the test's SIGKILL. FAULT_STEP_SECONDS slows every step,
# so that a kill at a random moment lands inside training rather than after it.
CHILD = r"""
import os, sys, time
from pathlib import Path
import rnnkit.train.checkpoint as checkpoint
from rnnkit.cli import main
from rnnkit.tasks.lm import LMTask

def freeze():
    Path(os.environ["FAULT_MARKER"]).touch()
    time.sleep(600)

phase, name, nth = (os.environ["FAULT_FREEZE"] or "none::0").split(":")
writes = 0
real_atomic_write = checkpoint.atomic_write

def atomic_write(path, write):
    global writes
    writes += Path(path).name == name
    if Path(path).name != name or writes != int(nth):
        return real_atomic_write(path, write)
    if phase == "written":
        def write_then_freeze(tmp):
            write(tmp)
            freeze()
        return real_atomic_write(path, write_then_freeze)
    real_atomic_write(path, write)
    freeze()

checkpoint.atomic_write = atomic_write
step_seconds = float(os.environ["FAULT_STEP_SECONDS"])
real_step = LMTask.train_step

def slow_step(self, model):
    time.sleep(step_seconds)
    return real_step(self, model)

LMTask.train_step = slow_step
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("abcdefgh\n" * 300, encoding="utf-8")      # a deterministic pattern
    return path


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory, single_thread) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    run = tmp_path_factory.mktemp("reference") / "run"
    assert main(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)]) == 0
    return run


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def loss_curve(run: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock fields: equal floats, not approximately equal."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "chars_per_s")} for r in rows(run)]


def assert_same_weights(a: Path, b: Path, name: str = "last") -> None:
    wa, _, _ = load_checkpoint(a / f"{name}.safetensors")
    wb, _, _ = load_checkpoint(b / f"{name}.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir())}


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


# ---- SIGKILL -------------------------------------------------------------------------------------

def logged_step(run: Path) -> int:
    """The highest step in metrics.jsonl so far (a line being written is skipped)."""
    metrics = run / "metrics.jsonl"
    steps = [0]
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            pass
    return max(steps)


def kill_child(argv: list[str], log: Path, freeze: str = "", step_seconds: float = 0.0,
               until: Optional[Callable[[], bool]] = None, delay: float = 0.0) -> str:
    """Run CHILD with ``argv`` and SIGKILL it once it froze at ``freeze`` or, ``delay`` seconds after
    ``until()`` held; returns its stderr. Fails if the child ends on its own first."""
    marker = log.with_suffix(".frozen")
    env = dict(os.environ, OMP_NUM_THREADS="1", FAULT_MARKER=str(marker), FAULT_FREEZE=freeze,
               FAULT_STEP_SECONDS=str(step_seconds))
    ready = marker.exists if freeze else until
    deadline = time.monotonic() + 300
    with open(log, "wb") as stderr:
        child = subprocess.Popen([sys.executable, "-c", CHILD, *argv], env=env,
                                 stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            while not ready():
                assert child.poll() is None, f"the run ended before the kill:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no kill point reached:\n{log.read_text()}"
                time.sleep(0.005)
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, log.read_text()
    return log.read_text()


def assert_no_torn_checkpoint(run: Path) -> int:
    """Every best/last/last-prev on disk is complete (safetensors checks that its header covers the
    file exactly), and the resume path finds a verified one; returns the step it resumes from."""
    for path in run.glob("*.safetensors"):
        load_file(path)
    _, meta, _, _ = load_latest(run / "last.safetensors", warn=lambda message: None)
    return meta["step"]


def resume_and_compare(run: Path, reference: Path) -> None:
    assert main(["train", "lm", "--resume", str(run)]) == 0
    assert loss_curve(run) == loss_curve(reference)
    assert_same_weights(run, reference)
    assert not list(run.glob(".*.tmp"))                      # the kills' temporary files are gone
    recorded = json.loads((run / "checksums.json").read_text())["files"]
    for name in ("best.safetensors", "last.safetensors", "last-prev.safetensors"):
        assert name in recorded
        verify(run / name)


def test_killed_three_times_the_run_resumes_the_uninterrupted_loss_curve(corpus, reference,
                                                                         tmp_path):
    """SIGKILL (1) between writing last's temporary file and moving it in place, (2) after moving
    last in place but before the manifest records it, so the next resume must fall back to
    last-prev, and (3) at a random moment of training; each at a seeded random checkpoint/step."""
    rng = random.Random(20)
    run = tmp_path / "run"
    resume = ["train", "lm", "--resume", str(run)]

    kill_child(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)],
               tmp_path / "1.log", freeze=f"written:last.safetensors:{rng.randint(2, 4)}")
    assert list(run.glob(".last.safetensors.*.tmp"))         # killed with its temporary file
    first_resume = assert_no_torn_checkpoint(run)

    kill_child(resume, tmp_path / "2.log", freeze=f"in-place:last.safetensors:{rng.randint(1, 3)}")
    with pytest.raises(CheckpointError, match="last.safetensors does not match checksums.json"):
        load_checkpoint(run / "last.safetensors")            # complete, but never recorded
    second_resume = assert_no_torn_checkpoint(run)           # from last-prev
    assert second_resume >= first_resume

    kill_at = rng.randint(second_resume + 3, STEPS - EVAL_EVERY)
    log = tmp_path / "3.log"
    stderr = kill_child(resume, log, step_seconds=0.03, delay=rng.uniform(0, 0.06),
                        until=lambda: "resumed at step" in log.read_text()
                        and logged_step(run) >= kill_at)
    assert re.search(r"warning: \S+last.safetensors does not match checksums.json.*; using the "
                     r"previous checkpoint last-prev.safetensors instead", stderr), stderr
    assert_no_torn_checkpoint(run)

    resume_and_compare(run, reference)


def test_a_metrics_line_cut_by_a_kill_is_dropped_on_resume(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 5, "train_loss": 2.0}\n{"step": 10, "val_loss": 1.5}\n'
                       '{"step": 15, "train_loss": 1.2}\n{"step": 20, "train_lo')
    truncate_metrics(metrics, 10)
    assert metrics.read_text() == '{"step": 5, "train_loss": 2.0}\n{"step": 10, "val_loss": 1.5}\n'


KILL_POINTS = ["written:last.safetensors", "in-place:last.safetensors",
               "in-place:last-prev.safetensors", "written:best.safetensors",
               "in-place:best.safetensors", "training"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_killed_at_every_kind_of_point_the_run_resumes_the_same_curve(corpus, tmp_path, seed):
    """Six kills in one 3-epoch run, one at each kind of point in a seeded random order: inside a
    write of last, last-prev or best (before or after it is in place) with a random n-th write, and
    at a random moment of training."""
    rng = random.Random(seed)
    steps = 3 * STEPS // 2
    reference, run = tmp_path / "reference", tmp_path / "run"
    assert main(["train", "lm", "--text", str(corpus), *TRAIN, "--epochs", "3",
                 "--out", str(reference)]) == 0
    argv = ["train", "lm", "--text", str(corpus), *TRAIN, "--epochs", "3", "--out", str(run)]
    step = 0
    for kill, kind in enumerate(rng.sample(KILL_POINTS, len(KILL_POINTS))):
        assert step <= steps - 3 * EVAL_EVERY                 # room for this kill and a last one
        log = tmp_path / f"{kill}.log"
        fresh = "--resume" not in argv      # a fresh run is killed after its first checkpoint
        if kind == "training":
            kill_at = rng.randint(max(step, EVAL_EVERY) + 1, step + 2 * EVAL_EVERY)
            # A resumed run drops the rows past its checkpoint first: count only rows after that.
            started = "model:" if fresh else "resumed at step"
            kill_child(argv, log, step_seconds=0.03, delay=rng.uniform(0, 0.06),
                       until=lambda: started in log.read_text() and logged_step(run) >= kill_at)
        else:
            # last is written at every evaluation (last-prev from the second on when fresh),
            # best at each improvement: the first one after a resume is the safe choice for it.
            nth = 1 if "best" in kind else rng.randint(1, 2)
            nth += fresh and "last-prev" not in kind
            kill_child(argv, log, freeze=f"{kind}:{nth}")
        step = assert_no_torn_checkpoint(run)
        argv = ["train", "lm", "--resume", str(run)]
    resume_and_compare(run, reference)


# ---- damaged and crafted checkpoints -------------------------------------------------------------

def forbid_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")
    for name in ("load", "loads"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_damaged_last_checkpoint_is_named_and_the_resume_falls_back(reference, tmp_path, capsys,
                                                                      monkeypatch, damage):
    run = copy_run(reference, tmp_path / "run")
    last = run / "last.safetensors"
    data = bytearray(last.read_bytes())
    if damage == "truncated":
        last.write_bytes(data[: len(data) // 2])
        problem = (f"last.safetensors does not match checksums.json: {len(data) // 2} bytes "
                   f"where it records {len(data)}")
    else:
        data[-100] ^= 0x10                                     # one bit of a weight
        last.write_bytes(data)
        problem = "last.safetensors does not match checksums.json"
    with pytest.raises(CheckpointError, match=problem):
        load_checkpoint(last)

    forbid_unpickling(monkeypatch)
    capsys.readouterr()
    assert main(["train", "lm", "--resume", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {last} {problem.split(' ', 1)[1]}" in err
    assert "using the previous checkpoint last-prev.safetensors instead" in err
    assert f"resumed at step {STEPS - EVAL_EVERY} from {run / 'last-prev.safetensors'}" in err
    assert loss_curve(run) == loss_curve(reference)
    assert_same_weights(run, reference)


def test_with_no_verified_checkpoint_the_resume_names_both_and_changes_nothing(reference, tmp_path,
                                                                              capsys, fails):
    run = copy_run(reference, tmp_path / "run")
    for name in ("last", "last-prev"):
        data = bytearray((run / f"{name}.safetensors").read_bytes())
        data[-100] ^= 0x10
        (run / f"{name}.safetensors").write_bytes(data)
    before = snapshot(run)
    line = fails(["train", "lm", "--resume", str(run)], capsys,
                 f"{run / 'last.safetensors'} does not match checksums.json")
    assert f"the previous checkpoint: {run / 'last-prev.safetensors'} does not match" in line
    assert snapshot(run) == before


def safetensors_bytes(header: object, data: bytes = bytes(24),
                      length: Optional[int] = None) -> bytes:
    """A hand-made safetensors file: 8-byte little-endian header length, JSON header, data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return (len(text) if length is None else length).to_bytes(8, "little") + text + data


def F32(shape: list[int], begin: int, end: int) -> dict:
    return {"dtype": "F32", "shape": shape, "data_offsets": [begin, end]}


def ours(rnnkit_header: str) -> dict:
    """A header with one float tensor ``model.w`` of 6 zeros and our metadata."""
    return {"__metadata__": {"rnnkit": rnnkit_header}, "model.w": F32([6], 0, 24)}


VALID = json.dumps({"format_version": 1, "meta": {}, "training_state": None})
# name: (makes the file's bytes when the test runs, what the error must say; None: it loads)
CRAFTED = {
    "length field beyond the file": (
        lambda: safetensors_bytes({}, length=2 ** 40),
        "header length field says 1099511627776 bytes, 26 follow"),
    "length field cut short": (
        lambda: b"\x10\x00\x00", "3 bytes, fewer than the 8-byte header length"),
    "oversized header": (
        lambda: safetensors_bytes({"__metadata__": {"x": "a" * (101 << 20)}}), "header too large"),
    "header not JSON": (lambda: safetensors_bytes(b"{not json}"), "invalid JSON in header"),
    "header not an object": (lambda: safetensors_bytes([1, 2]), "invalid JSON in header"),
    "overlapping offsets": (
        lambda: safetensors_bytes({"a": F32([4], 0, 16), "b": F32([4], 8, 24)}),
        "invalid offset for tensor `b`"),
    "offsets past the end": (
        lambda: safetensors_bytes({"a": F32([2], 0, 8), "b": F32([4], 8, 10 ** 12)}),
        "invalid shape, data type, or offset"),
    "gap between tensors": (
        lambda: safetensors_bytes({"a": F32([2], 0, 8), "b": F32([2], 16, 24)}),
        "invalid offset for tensor `b`"),
    "shape beyond its bytes": (
        lambda: safetensors_bytes({"a": F32([10 ** 9], 0, 24)}),
        "invalid shape, data type, or offset"),
    "shape that overflows": (
        lambda: safetensors_bytes({"a": F32([2 ** 40, 2 ** 40], 0, 24)}), "overflow"),
    "unknown dtype": (
        lambda: safetensors_bytes({"a": {"dtype": "X9", "shape": [6], "data_offsets": [0, 24]}}),
        "unknown variant `X9`"),
    "no rnnkit metadata": (
        lambda: safetensors_bytes({"a": F32([6], 0, 24)}),
        "not a readable rnnkit checkpoint: 'rnnkit'"),
    "rnnkit metadata not JSON": (
        lambda: safetensors_bytes(ours("{")),
        "not a readable rnnkit checkpoint: Expecting property name"),
    "rnnkit metadata not ours": (
        lambda: safetensors_bytes(ours("[1]")), "not a readable rnnkit checkpoint: 'list' object"),
    "another format version": (
        lambda: safetensors_bytes(ours('{"format_version": 9}')),
        "checkpoint format 9, this rnnkit reads format 1"),
    "valid (the control)": (lambda: safetensors_bytes(ours(VALID)), None),
}


@pytest.mark.parametrize("case", CRAFTED, ids=list(CRAFTED))
def test_a_crafted_checkpoint_is_a_checkpoint_error_naming_the_file(case, tmp_path, monkeypatch):
    make, problem = CRAFTED[case]
    path = tmp_path / "crafted.safetensors"
    path.write_bytes(make())
    forbid_unpickling(monkeypatch)
    if problem is None:
        weights, meta, state = load_checkpoint(path)
        assert torch.equal(weights["w"], torch.zeros(6)) and meta == {} and state is None
        return
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value).startswith(str(path)) and problem in str(info.value), info.value


def test_a_damaged_best_checkpoint_is_one_error_line_for_the_commands_that_use_it(
        reference, tmp_path, capsys, fails):
    run = copy_run(reference, tmp_path / "run")
    (run / "best.safetensors").write_bytes(CRAFTED["overlapping offsets"][0]())
    fails(["sample", str(run), "--length", "5"], capsys,
          f"{run / 'best.safetensors'} does not match checksums.json")
    fails(["eval", str(run), "--json"], capsys, "(truncated, or its writer was killed")


def test_last_prev_is_always_the_last_verified_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"

    def save(value: float) -> None:
        save_checkpoint(path, {"w": torch.full((3,), value)}, {"value": value}, keep_previous=True)

    def value(name: str) -> float:
        return load_checkpoint(tmp_path / f"{name}.safetensors")[1]["value"]

    save(1.0)
    assert not (tmp_path / "last-prev.safetensors").exists()
    save(2.0)
    assert (value("last"), value("last-prev")) == (2.0, 1.0)

    def no_hard_links(*args):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    with monkeypatch.context() as patch:
        patch.setattr(os, "link", no_hard_links)
        save(3.0)                                             # a file system without hard links
    assert (value("last"), value("last-prev")) == (3.0, 2.0)
    data = bytearray(path.read_bytes())
    data[-4] ^= 0x01
    path.write_bytes(data)                                    # last no longer verifies ...
    save(4.0)                                                 # ... so it never becomes last-prev
    assert (value("last"), value("last-prev")) == (4.0, 2.0)
    previous = tmp_path / "last-prev.safetensors"
    previous.unlink()
    os.link(path, previous)                     # as a save killed right after linking leaves it
    save(5.0)
    assert (value("last"), value("last-prev")) == (5.0, 4.0)
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unreadable_manifest_is_named_and_stops_a_save_before_it_writes(tmp_path):
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {}, keep_previous=True)
    manifest = tmp_path / "checksums.json"
    manifest.write_text('{"files": {"last.safetensors": {"size": "big"}}}')
    before = snapshot(tmp_path)
    for attempt in (lambda: load_checkpoint(path),
                    lambda: save_checkpoint(path, {"w": torch.zeros(2)}, {}, keep_previous=True)):
        with pytest.raises(CheckpointError, match=f"{manifest} is not a readable checkpoint "
                                                  f"manifest: an entry without an integer 'size'"):
            attempt()
    assert snapshot(tmp_path) == before


# ---- failed saves --------------------------------------------------------------------------------

def assert_clean_failure(run: Path, line: str, target: str, step: int) -> None:
    """The error names the file; no temporary file is left; the previous checkpoint verifies."""
    assert f"cannot write {run / target}" in line and f"({target} is left as it was)" in line, line
    assert not list(run.glob(".*.tmp"))
    assert load_checkpoint(run / "last.safetensors")[1]["step"] == step


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(corpus, reference, tmp_path, capsys,
                                                                 monkeypatch, fails):
    real_save_file = checkpoint.save_file
    last_writes = []

    def disk_fills_at_the_second_last(tensors, filename, metadata=None):
        if Path(filename).name.startswith(".last."):         # a temporary file of last
            last_writes.append(filename)
        if len(last_writes) == 2:
            Path(filename).write_bytes(bytes(1000))            # part of it, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", disk_fills_at_the_second_last)
    run = tmp_path / "run"
    line = fails(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)], capsys,
                 "No space left on device")
    assert_clean_failure(run, line, "last.safetensors", step=EVAL_EVERY)
    monkeypatch.setattr(checkpoint, "save_file", real_save_file)
    assert main(["train", "lm", "--resume", str(run)]) == 0
    assert loss_curve(run) == loss_curve(reference)


def test_a_read_only_run_directory_during_a_save_is_one_error_line(corpus, tmp_path, capsys,
                                                                   monkeypatch, fails):
    """What a read-only directory does to a writer (no new file in it), simulated: root may write
    there anyway."""
    run = tmp_path / "run"
    read_only = {"from now": False}
    real_mkstemp, real_step = tempfile.mkstemp, LMTask.train_step

    def read_only_after_the_first_checkpoint(self, model):
        read_only["from now"] = (run / "last.safetensors").exists()
        return real_step(self, model)

    def mkstemp(*args, dir=None, **kwargs):
        if read_only["from now"] and Path(dir) == run:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(LMTask, "train_step", read_only_after_the_first_checkpoint)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    line = fails(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)], capsys,
                 "Permission denied")
    assert_clean_failure(run, line, "best.safetensors", step=EVAL_EVERY)


def read_only_directories_stop_this_process() -> bool:
    """False for root (a process with CAP_DAC_OVERRIDE): it writes into a 0o555 directory anyway."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o555)
        try:
            Path(directory, "probe").touch()
        except PermissionError:
            return True
        finally:
            os.chmod(directory, 0o755)
        return False


@pytest.mark.skipif(not read_only_directories_stop_this_process(),
                    reason="this process (root) writes into a read-only directory anyway")
def test_a_really_read_only_run_directory_during_a_save(corpus, tmp_path, capsys, monkeypatch, fails):
    run = tmp_path / "run"
    real_step = LMTask.train_step

    def chmod_after_the_first_checkpoint(self, model):
        if (run / "last.safetensors").exists():
            run.chmod(0o555)
        return real_step(self, model)

    monkeypatch.setattr(LMTask, "train_step", chmod_after_the_first_checkpoint)
    try:
        line = fails(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)], capsys,
                     "Permission denied")
    finally:
        run.chmod(0o755)
    assert_clean_failure(run, line, "best.safetensors", step=EVAL_EVERY)


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_a_failed_atomic_write_names_the_file_and_removes_its_temporary_file(tmp_path, monkeypatch,
                                                                             failing):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def no_space(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if failing != "write":
        monkeypatch.setattr(os, failing, no_space)
    with pytest.raises(OSError) as info:
        files.atomic_write(target, no_space if failing == "write" else
                           lambda tmp: Path(tmp).write_text("new"))
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == (f"[Errno 28] cannot write {target}: No space left on device "
                               f"(summary.json is left as it was)")
    assert os.listdir(tmp_path) == ["summary.json"] and target.read_text() == "old"


# ---- non-finite losses and gradients -------------------------------------------------------------

def poison_steps(monkeypatch, bad: Callable[[int], bool], where: str = "loss") -> None:
    """Make the n-th training batch's loss NaN (``where="loss"``), or only its gradient: sqrt at 0
    has an infinite slope, times 0 a NaN gradient, while the loss stays finite."""
    real_step = LMTask.train_step
    calls = {"n": 0}

    def poisoned(self, model):
        calls["n"] += 1
        loss, units = real_step(self, model)
        if bad(calls["n"]):
            weight = next(model.parameters())
            loss = loss * float("nan") if where == "loss" else loss + torch.sqrt(weight.sum() * 0)
        return loss, units

    monkeypatch.setattr(LMTask, "train_step", poisoned)


def assert_finite_checkpoints(run: Path) -> None:
    for path in run.glob("*.safetensors"):
        weights, _, _ = load_checkpoint(path)
        assert all(torch.isfinite(w).all() for w in weights.values()), path


def test_a_nonfinite_gradient_stops_the_run_with_step_batch_loss_and_norm(corpus, tmp_path, capsys,
                                                                          monkeypatch, fails):
    poison_steps(monkeypatch, lambda n: n == 15, where="gradient")
    run = tmp_path / "run"
    line = fails(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run)], capsys,
                 "at step 15 (epoch 1, batch 15 of 40), gradient norm nan: stopping without saving")
    assert re.search(r"loss is \d\.\d+ at step 15", line), line          # a finite loss
    assert load_checkpoint(run / "last.safetensors")[1]["step"] == 10
    assert_finite_checkpoints(run)


def test_on_nonfinite_skip_refuses_the_step_logs_it_and_goes_on(corpus, tmp_path, capsys,
                                                                monkeypatch):
    poison_steps(monkeypatch, lambda n: n in (12, 13, 57))
    run = tmp_path / "run"
    assert main(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run),
                 "--on-nonfinite", "skip"]) == 0
    err = capsys.readouterr().err
    assert "skipped: loss is nan at step 12 (epoch 1, batch 12 of 40), gradient norm nan " \
           "(1 skipped so far)" in err
    assert "skipped: loss is nan at step 12 (epoch 1, batch 13 of 40)" in err    # no update: still 12
    assert "skipped: loss is nan at step 55 (epoch 2, batch 17 of 40)" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["skipped_steps"] == 3 and summary["steps"] == STEPS     # every update made
    assert summary["epochs"] == pytest.approx(2 + 3 / 40)                  # from 3 more batches
    assert_finite_checkpoints(run)


def test_on_nonfinite_skip_still_stops_when_every_batch_is_nonfinite(corpus, tmp_path, capsys,
                                                                     monkeypatch, fails):
    poison_steps(monkeypatch, lambda n: n >= 25)
    run = tmp_path / "run"
    fails(["train", "lm", "--text", str(corpus), *TRAIN, "--out", str(run), "--on-nonfinite", "skip"],
          capsys, "loss is nan at step 25 (epoch 1, batch 34 of 40), gradient norm nan: the last 10 "
                  "batches were all non-finite; stopping without saving them")
    assert load_checkpoint(run / "last.safetensors")[1]["step"] == 20
    assert_finite_checkpoints(run)


def test_a_nonfinite_weight_is_never_written(tmp_path):
    path = tmp_path / "last.safetensors"
    with pytest.raises(CheckpointError, match=r"refusing to write .*last.safetensors: weight 'w' has "
                                              r"2 non-finite values"):
        save_checkpoint(path, {"w": torch.tensor([1.0, float("nan"), float("inf")])}, {})
    assert os.listdir(tmp_path) == []


# ---- determinism ---------------------------------------------------------------------------------

def test_deterministic_runs_with_one_seed_give_identical_checkpoints(corpus, tmp_path, monkeypatch):
    real_step = LMTask.train_step
    during = []

    def record(self, model):
        if not during:     # the first batch: NumPy was seeded, deterministic kernels are on
            during.append((np.random.random(), torch.are_deterministic_algorithms_enabled()))
        return real_step(self, model)

    def train(seed: int, out: str) -> Path:
        during.clear()
        run = tmp_path / out
        assert main(["train", "lm", "--text", str(corpus), *TRAIN, "--epochs", "0.5", "--seed",
                     str(seed), "--deterministic", "--out", str(run)]) == 0
        assert during == [(np.random.RandomState(seed).random_sample(), True)]
        assert not torch.are_deterministic_algorithms_enabled()           # only during the run
        return run

    monkeypatch.setattr(LMTask, "train_step", record)
    a, b, other = train(3, "a"), train(3, "b"), train(4, "other")
    assert json.loads((a / "config.json").read_text())["train"]["deterministic"] is True
    for name in ("best", "last"):
        assert_same_weights(a, b, name)
    with pytest.raises(AssertionError):
        assert_same_weights(a, other)                         # the comparison can tell them apart
