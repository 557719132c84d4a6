"""rnnkit lab: recorded activations, the memory tasks, gradient profiles, gate statistics, the
neuron viewer and --log-grad-norms."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.cli import main
from rnnkit.lab import memory
from rnnkit.lab.gradients import gradient_profile
from rnnkit.lab.inside import gate_statistics, rank_units, text_properties
from rnnkit.lab.memory import MemoryModel, MemoryModelConfig, MemoryTask, adding_batch, \
    copy_baseline, copy_batch, parity_batch
from rnnkit.viz.neurons import write_neuron_page

F64 = dict(dtype=torch.float64)


# ---- recorded activations ------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_recorded_activations_are_the_forward_pass_and_obey_the_cell_equations(cell):
    torch.manual_seed(0)
    kind = {"lstm": rnnkit.LSTM, "gru": rnnkit.GRU, "rnn": rnnkit.RNN}[cell]
    layer = kind(3, 5, num_layers=2, bidirectional=True, batch_first=True, **F64).eval()
    x, lengths = torch.randn(4, 7, 3, **F64), torch.tensor([7, 2, 5, 1])
    out, state = layer(x, lengths=lengths)
    records, final = layer.activations(x, lengths=lengths)
    assert [(r["layer"], r["direction"]) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert set(records[0]) - {"layer", "direction"} == {"h", *layer.gate_names}
    torch.testing.assert_close(torch.cat([records[2]["h"], records[3]["h"]], -1), out)
    for a, b in zip(final if isinstance(final, tuple) else (final,),
                    state if isinstance(state, tuple) else (state,)):
        torch.testing.assert_close(a, b)
    r = records[0]                                   # forward direction, row 0 (full length)
    h_prev = torch.cat([torch.zeros(1, 5, **F64), r["h"][0, :-1]])
    if cell == "lstm":
        c_prev = torch.cat([torch.zeros(1, 5, **F64), r["c"][0, :-1]])
        torch.testing.assert_close(r["c"][0], r["f"][0] * c_prev + r["i"][0] * r["g"][0])
        torch.testing.assert_close(r["h"][0], r["o"][0] * torch.tanh(r["c"][0]))
    if cell == "gru":
        torch.testing.assert_close(r["h"][0], (1 - r["z"][0]) * r["n"][0] + r["z"][0] * h_prev)
    # Past a row's length everything recorded is zero.
    assert all(float(v[1, 2:].abs().sum()) == 0 for k, v in r.items() if k not in ("layer", "direction"))


def test_generation_with_records_samples_the_same_ids():
    from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
    model = LanguageModel(LanguageModelConfig(vocab_size=7, hidden=8, embed=4, cell="gru"))
    plain = list(model.generate([1, 2], 15, generator=torch.Generator().manual_seed(3)))
    recorded = list(model.generate([1, 2], 15, generator=torch.Generator().manual_seed(3),
                                   record=True))
    assert [r["id"] for r in recorded] == [1, 2] + plain
    assert [r["prime"] for r in recorded] == [True, True] + [False] * 15
    # The units after reading the prime are those of one pass over it.
    _, _, records = model.activations(torch.tensor([[1, 2]]))
    torch.testing.assert_close(recorded[1]["units"][-1]["h"], records[-1]["h"][0, 1])


# ---- the memory tasks ------------------------------------------------------------------------------------

def test_adding_problem_trivial_baseline_is_one_sixth():
    x, y = adding_batch(200_000, 20, torch.Generator().manual_seed(0))
    markers = x[..., 1]
    assert bool((markers.sum(1) == 2).all())
    assert bool((markers[:, :10].sum(1) == 1).all()) and bool((markers[:, 10:].sum(1) == 1).all())
    torch.testing.assert_close(y, (x[..., 0] * markers).sum(1))
    assert float(((y - 1.0) ** 2).mean()) == pytest.approx(1 / 6, abs=0.003)


def test_copy_task_layout_and_its_baseline():
    T = 7
    x, y = copy_batch(50, T, torch.Generator().manual_seed(0))
    assert x.shape == (50, T + 20)
    assert bool(((x[:, :10] >= 1) & (x[:, :10] <= 8)).all())
    assert bool((x[:, 10 + T - 1] == memory.DELIMITER).all())
    assert int((x[:, 10:] != 0).sum()) == 50                       # only the delimiters
    assert bool((y[:, -10:] == x[:, :10]).all()) and int(y[:, :-10].abs().sum()) == 0
    # Blanks for sure, then a uniform guess over the 8 symbols: the baseline's cross-entropy.
    logits = torch.full((50, T + 20, 9), -1e9)
    logits[:, :-10, 0] = 0
    logits[:, -10:, 1:] = 0
    ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
    assert float(ce) == pytest.approx(copy_baseline(T), rel=1e-6)


def test_parity_labels_count_the_ones():
    x, y = parity_batch(100, 9, torch.Generator().manual_seed(0))
    assert torch.equal(y, x[..., 0].long().sum(1) % 2)
    assert 0.35 < float(y.float().mean()) < 0.65


def test_memory_task_resumes_the_same_batches():
    task = MemoryTask("copy", 5, 4, seed=0, device=torch.device("cpu"))
    model = MemoryModel(MemoryModelConfig("copy", "rnn", hidden=4))
    task.train_step(model)
    saved = task.state_dict()
    after = task.train_step(model)[0]
    task.load_state_dict(saved)
    assert task.train_step(model)[0].item() == after.item()
    assert task.epochs_done() == 2 / memory.STEPS_PER_EPOCH


def test_memory_run_stops_when_solved_and_logs_every_gradient_norm(tmp_path, capsys):
    out = tmp_path / "mem"
    # T = 2 makes the adding problem linear: solved long before the budget.
    assert main(["lab", "memory", "--task", "adding", "--length", "2", "--cell", "lstm",
                 "--hidden", "8", "--steps", "3000", "--eval-every", "50", "--lr", "1e-2",
                 "--clip", "0.05", "--log-grad-norms", "--out", str(out), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    row = table["runs"][0]
    assert row["solved"] and row["val_mse"] < 0.01 and row["steps"] < 3000
    run = Path(row["run"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stop_reason"] == "target_reached"
    norms = [json.loads(line) for line in (run / "grad_norms.jsonl").read_text().splitlines()]
    assert [r["step"] for r in norms] == list(range(1, summary["steps"] + 1))
    assert all(r["clipped"] == (r["grad_norm"] > 0.05) for r in norms)
    assert any(r["clipped"] for r in norms) and (run / "grad_norms.png").is_file()
    assert "solved at step" in memory.format_table(table)


# ---- gradient profiles -----------------------------------------------------------------------------------

def test_gradient_profile_equals_autograd_and_the_hand_written_recursion():
    torch.manual_seed(0)
    model = MemoryModel(MemoryModelConfig("adding", "rnn", hidden=6))
    x, y = adding_batch(5, 9, torch.Generator().manual_seed(1))
    profile = gradient_profile(model, x, y.double())
    m = model.double()
    # ∂L/∂x_t from one full-sequence pass.
    inputs = x.double().requires_grad_()
    h, _ = m.rnn(inputs)                                                 # (B, T, H)
    loss = ((m.readout(h[:, -1]).squeeze(-1) - y.double()) ** 2).mean()
    (dx,) = torch.autograd.grad(loss, inputs)
    np.testing.assert_allclose(profile["x"], dx.norm(dim=-1).mean(0).numpy(), rtol=1e-10)
    # ∂L/∂h_t by the lectures' recursion: dh_{t-1} = W_hhᵀ (dh_t ⊙ (1 - h_t²)).
    dh = 2 * (m.readout(h[:, -1]).squeeze(-1) - y.double()).unsqueeze(-1) / 5 * m.readout.weight
    expected = [dh.norm(dim=-1).mean().item()]
    for t in range(8, 0, -1):
        dh = (dh * (1 - h[:, t] ** 2)) @ m.rnn.weight_hh_l0
        expected.append(dh.norm(dim=-1).mean().item())
    np.testing.assert_allclose(profile["h"], expected[::-1], rtol=1e-8)


def test_lstm_profile_reports_the_cell_and_a_plain_rnn_vanishes_faster(tmp_path, capsys):
    assert main(["lab", "gradients", "--length", "40", "--train-steps", "0", "--hidden", "16",
                 "--batch", "16", "--out", str(tmp_path / "g"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    p = result["profiles"]
    assert set(p) == {"rnn", "lstm", "gru"} and len(p["lstm"]["init"]["c"]) == 40
    assert p["lstm"]["init"]["c"][-1] == 0.0                 # c_T reaches no loss
    decay = {cell: p[cell]["init"]["h"][0] / p[cell]["init"]["h"][-1] for cell in p}
    assert decay["rnn"] < decay["lstm"]                      # forget bias 1: the cell carries it
    assert (tmp_path / "g" / "gradients.png").is_file()


# ---- gates and neurons -----------------------------------------------------------------------------------

def test_gate_statistics_count_saturated_values():
    f = torch.tensor([[[0.05, 0.5]], [[0.95, 0.99]]])                   # (T=2, B=1, H=2)
    stats = gate_statistics([{"layer": 0, "direction": 0, "h": f, "f": f, "i": 1 - f}])
    g = stats[0]["gates"]["f"]
    assert g["left_saturated"] == 0.25 and g["right_saturated"] == 0.5
    assert g["per_unit_left"] == [0.5, 0.0] and g["per_unit_right"] == [0.5, 0.5]
    assert stats[0]["gates"]["i"]["left_saturated"] == 0.5
    assert stats[0]["histogram"]["gate"] == "f" and sum(stats[0]["histogram"]["counts"]) == 4


def test_text_properties_and_a_planted_unit_is_ranked_first():
    text = 'ROMEO:\nSay "yes" (now).\n'
    p = text_properties(text)
    assert p["speaker name"][:6].tolist() == [1] * 6 and p["speaker name"][6:].sum() == 0
    assert "".join(c for c, q in zip(text, p["inside quotes"]) if q) == '"yes'
    assert "".join(c for c, q in zip(text, p["inside parentheses"]) if q) == "(now)"
    assert p["position in line"][7:10].tolist() == [0, 1, 2]
    rng = np.random.default_rng(0)
    values = rng.normal(size=(len(text), 6))
    values[:, 4] = p["speaker name"] + 0.01 * rng.normal(size=len(text))
    ranking = rank_units(values, p, top=2)
    assert ranking["speaker name"]["units"][0]["unit"] == 4
    assert ranking["speaker name"]["units"][0]["r"] > 0.99


def test_neuron_page_escapes_the_text(tmp_path):
    page = tmp_path / "n.html"
    write_neuron_page(page, "a</script>b", {"h 0": [0.1] * 11}, {}, "h 0", "t <x>")
    html = page.read_text()
    assert "a</script>b" not in html and "a\\u003c/script>b" in html and "t &lt;x&gt;" in html
    with pytest.raises(ValueError, match="h 9"):
        write_neuron_page(page, "ab", {"h 0": [0, 0]}, {}, "h 9", "t")


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    corpus = root / "play.txt"
    corpus.write_text("ROMEO:\nI love (thee) well.\n\nJULIET:\nSay \"yes\".\n\n" * 60, encoding="utf-8")
    run = root / "run"
    assert main(["train", "lm", "--text", str(corpus), "--epochs", "2", "--hidden", "16",
                 "--embed", "8", "--layers", "2", "--batch-size", "4", "--seq-len", "16",
                 "--out", str(run)]) == 0
    return run


def test_neurons_and_gates_on_a_language_model(lm_run, tmp_path, capsys):
    capsys.readouterr()
    page = tmp_path / "neurons.html"
    assert main(["lab", "neurons", str(lm_run), "--out", str(page), "--unit", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["layer"] == 1 and page.is_file()
    ranked = result["rankings"]["tanh(c)"]["speaker name"]["units"]
    assert len(ranked) == 5 and all(-1 <= e["r"] <= 1 for e in ranked)
    assert '"h 3"' in page.read_text()
    assert main(["lab", "gates", str(lm_run), "--out", str(tmp_path / "g.png"), "--json"]) == 0
    gates = json.loads(capsys.readouterr().out)
    assert [row["layer"] for row in gates["layers"]] == [0, 1]
    assert set(gates["layers"][0]) == {"layer", "direction", "i", "f", "o"}
    assert all(0 <= v["left_saturated"] + v["right_saturated"] <= 1
               for row in gates["layers"] for k, v in row.items() if isinstance(v, dict))


def test_lab_bad_input(lm_run, tmp_path, capsys, fails):
    fails(["lab", "neurons", str(lm_run), "--chars", "1"], capsys, "--chars must be at least 2")
    fails(["lab", "neurons", str(lm_run), "--layer", "5"], capsys, "--layer 5")
    fails(["lab", "neurons", str(lm_run), "--unit", "99"], capsys, "--unit 99")
    odd = tmp_path / "odd.txt"
    odd.write_text("ROMEO: ζ", encoding="utf-8")
    fails(["lab", "neurons", str(lm_run), "--text", str(odd)], capsys, "never saw")
    fails(["lab", "memory", "--length", "1"], capsys, "--length must be at least 2")
    fails(["lab", "gradients", "--nproc", "2"], capsys, "leave out --nproc")
    out = tmp_path / "mem"
    assert main(["lab", "memory", "--length", "3", "--cell", "rnn", "--steps", "2",
                 "--eval-every", "1", "--hidden", "4", "--out", str(out)]) == 0
    fails(["lab", "gates", str(out / "adding-rnn-T3")], capsys, "no gates")
    fails(["lab", "neurons", str(out / "adding-rnn-T3")], capsys, "not a language model")
    fails(["lab", "memory", "--length", "3", "--out", str(out)], capsys, "already exists")
