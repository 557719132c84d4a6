"""What the units of a trained network do: gate saturation, forget-gate histograms, and single hidden
units that track properties of the text (the neuron viewer of Karpathy, Johnson & Fei-Fei 2015).

Shapes: T time (characters), B batch, H hidden size.

Everything here reads the per-step values that ``layer.activations`` records (the readable loop):
``h`` and, for an LSTM, the gates i, f, o, the candidate g and the cell c; for a GRU r, z and n.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from ..data.text import read_text
from ..tasks import lm
from ..tasks.common import UsageError, load_text_corpus, read_run_config, resolve_device, \
    write_json
from ..viz.neurons import write_neuron_page
from ..viz.plots import plot_gate_statistics
from . import memory

SIGMOID_GATES = {"i", "f", "o", "r", "z"}     # the gates that open and close, in (0, 1)
LOW, HIGH = 0.1, 0.9                           # "saturated": below LOW or above HIGH


# ---- gate statistics ---------------------------------------------------------------------------------

def gate_statistics(records: list[dict], bins: int = 20) -> list[dict]:
    """Per layer and direction, for each sigmoid gate: the fraction of (step, sequence, unit) values
    below 0.1 and above 0.9, the same fractions per unit (for the scatter plot of Karpathy et al.,
    fig. 6), and a histogram of the forget (LSTM f) or update (GRU z) gate."""
    out = []
    for r in records:
        row = {"layer": r["layer"], "direction": r["direction"], "gates": {}}
        for name in [g for g in r if g in SIGMOID_GATES]:
            v = r[name].flatten(0, -2).double()                         # (T·B, H)
            low, high = (v < LOW).double(), (v > HIGH).double()
            row["gates"][name] = {
                "left_saturated": low.mean().item(), "right_saturated": high.mean().item(),
                "mean": v.mean().item(),
                "per_unit_left": low.mean(0).tolist(), "per_unit_right": high.mean(0).tolist()}
        keeper = "f" if "f" in r else ("z" if "z" in r else None)
        if keeper:
            counts = torch.histc(r[keeper].double(), bins=bins, min=0.0, max=1.0)
            row["histogram"] = {"gate": keeper, "edges": np.linspace(0, 1, bins + 1).tolist(),
                                "counts": [int(c) for c in counts.tolist()]}
        out.append(row)
    return out


def run_activations(run: Path, text: Optional[str], chars: int, device: torch.device
                    ) -> tuple[list[dict], str, dict]:
    """Activations of a trained run over some input: a language model over ``text`` (default:
    the start of its validation split), a memory-task model over 256 generated sequences.
    Returns (records with B = 1 or 256, the text read or "", the run's config)."""
    if chars < 2:
        raise UsageError(f"--chars must be at least 2, got {chars}")
    config = read_run_config(run)
    if config.get("task") == "memory":
        model, config = memory.load_run(run, device)
        d = config["data"]
        x, _ = memory.GENERATORS[d["task"]](256, d["length"], torch.Generator().manual_seed(1))
        records, _ = model.rnn.activations(model.inputs(x.to(device)))
        return records, "", config
    if config.get("task") != "lm":
        raise UsageError(f"{run} is a {config.get('task')!r} run: the lab reads language-model "
                         f"(rnnkit train lm) and memory-task (rnnkit lab memory) runs")
    model, vocab, config = lm.load_run(run, device)
    d = config["data"]
    if d["level"] != "char":
        raise UsageError(f"{run} is a word-level model: the lab reads character-level ones")
    if text is None:
        text = load_text_corpus(d["dataset"], d["text"], d["encoding"], d["valid_fraction"]).valid
    text = text[:chars]
    missing = vocab.unknown(text)
    if missing:
        raise UsageError(f"the text has characters the model never saw: {''.join(missing[:20])!r}")
    if len(text) < 2:
        raise UsageError("the text is too short: give at least 2 characters")
    ids = torch.tensor([vocab.encode(list(text))], device=device)
    _, _, records = model.activations(ids)
    return records, text, config


def gates(args: argparse.Namespace) -> dict:
    """``rnnkit lab gates RUN_DIR``: saturation per layer and gate, and a plot."""
    device = resolve_device(args.device)
    text = read_text(args.text) if args.text else None
    records, _, config = run_activations(args.run_dir, text, args.chars, device)
    if not any(g in SIGMOID_GATES for g in records[0]):
        raise UsageError(f"{args.run_dir} is a plain RNN: it has no gates to measure")
    stats = gate_statistics(records)
    out = args.out or Path(args.run_dir) / "gates.png"
    plot_gate_statistics(out, stats, title=f"{Path(args.run_dir).name} "
                                           f"({config['model']['cell'].upper()})")
    summary = {"run": str(args.run_dir), "plot": str(out), "low": LOW, "high": HIGH,
               "layers": [{"layer": s["layer"], "direction": s["direction"],
                           **{g: {k: v for k, v in st.items() if not k.startswith("per_unit")}
                              for g, st in s["gates"].items()}} for s in stats]}
    write_json(out.with_suffix(".json"), {**summary, "detail": stats})
    return summary


def format_gates(summary: dict) -> str:
    lines = [f"fraction of gate values < {summary['low']} (left) and > {summary['high']} (right)"]
    for row in summary["layers"]:
        parts = [f"{g} {v['left_saturated']:.0%}/{v['right_saturated']:.0%} (mean {v['mean']:.2f})"
                 for g, v in row.items() if isinstance(v, dict)]
        lines.append(f"layer {row['layer']}{' reverse' if row['direction'] else ''}: " +
                     "  ".join(parts))
    return "\n".join(lines) + f"\nplot: {summary['plot']}"


# ---- the neuron viewer -----------------------------------------------------------------------------

SPEAKER_LINE = re.compile(r"^[A-Z][A-Z .,'&-]*:$")   # "ROMEO:", "FIRST CITIZEN:" on a line alone


def text_properties(text: str) -> dict[str, np.ndarray]:
    """Simple properties of every character, for ranking units by how well they track them:
    inside "double quotes", inside (parentheses), inside a speaker's name line ("ROMEO:"), and the
    position in the line (characters since the last newline)."""
    n = len(text)
    quotes, parens, speaker, position = (np.zeros(n) for _ in range(4))
    in_quote, depth, col = False, 0, 0
    for k, ch in enumerate(text):
        if ch == '"':
            in_quote = not in_quote
        depth += ch == "("
        quotes[k], parens[k], position[k] = in_quote, depth > 0, col
        depth = max(depth - (ch == ")"), 0)          # the closing bracket itself is still inside
        col = 0 if ch == "\n" else col + 1
    start = 0
    for line in text.split("\n"):
        if SPEAKER_LINE.match(line):
            speaker[start: start + len(line)] = 1
        start += len(line) + 1
    return {"inside quotes": quotes, "inside parentheses": parens, "speaker name": speaker,
            "position in line": position}


def rank_units(values: np.ndarray, properties: dict[str, np.ndarray], top: int = 5) -> dict:
    """For each property, the ``top`` units whose activation (T, H) correlates best with it
    (|Pearson r|); properties that do not vary in the text are reported as such."""
    ranking = {}
    centred = values - values.mean(0)
    norms = np.sqrt((centred ** 2).sum(0))                               # (H,)
    for name, prop in properties.items():
        p = prop - prop.mean()
        if not np.any(p):
            ranking[name] = {"constant": True, "units": []}
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            r = centred.T @ p / (norms * np.sqrt((p ** 2).sum()))           # (H,)
        r = np.nan_to_num(r)
        best = np.argsort(-np.abs(r))[:top]
        ranking[name] = {"constant": False,
                         "units": [{"unit": int(u), "r": float(r[u])} for u in best]}
    return ranking


def neurons(args: argparse.Namespace) -> dict:
    """``rnnkit lab neurons RUN_DIR``: the text coloured by single units, as one HTML page."""
    device = resolve_device(args.device)
    text = read_text(args.text) if args.text else None
    records, text, config = run_activations(args.run_dir, text, args.chars, device)
    if not text:
        raise UsageError(f"{args.run_dir} is not a language model: the neuron viewer reads text")
    layer = config["model"]["layers"] - 1 if args.layer is None else args.layer
    if not 0 <= layer < len(records):
        raise UsageError(f"--layer {layer}: the model has layers 0..{len(records) - 1}")
    record = records[layer]
    sources = {"h": record["h"][0].cpu().numpy()}                        # (T, H)
    if "c" in record:                     # the cell, squashed as the output sees it: tanh(c)
        sources["tanh(c)"] = np.tanh(record["c"][0].cpu().numpy())
    properties = text_properties(text)
    rankings = {src: rank_units(v, properties) for src, v in sources.items()}
    H = sources["h"].shape[1]
    for u in args.unit or []:
        if not 0 <= u < H:
            raise UsageError(f"--unit {u}: layer {layer} has units 0..{H - 1}")
    shown = {(src, e["unit"]) for src, r in rankings.items() for p in r.values() for e in p["units"]}
    shown |= {("h", u) for u in args.unit or []}
    traces = {f"{src} {u}": [round(float(v), 3) for v in sources[src][:, u]]
              for src, u in sorted(shown)}
    out = args.out or Path(args.run_dir) / "neurons.html"
    first = f"h {args.unit[0]}" if args.unit else _best_trace(rankings)
    write_neuron_page(out, text, traces, rankings, first,
                      title=f"{Path(args.run_dir).name}: layer {layer} of a "
                            f"{config['model']['layers']}×{H} {config['model']['cell'].upper()}")
    result = {"page": str(out), "layer": layer, "chars": len(text), "rankings": rankings}
    write_json(out.with_suffix(".json"), result)
    return result


def _best_trace(rankings: dict) -> str:
    """The unit with the strongest correlation of all, as the page's first colouring."""
    best = max(((abs(e["r"]), f"{src} {e['unit']}") for src, r in rankings.items()
                for p in r.values() for e in p["units"]), default=(0.0, "h 0"))
    return best[1]


def format_rankings(result: dict) -> str:
    lines = [f"layer {result['layer']}, {result['chars']} characters; best units per property "
             f"(Pearson r):"]
    for src, ranking in result["rankings"].items():
        for prop, r in ranking.items():
            units = "constant in this text" if r["constant"] else \
                "  ".join(f"{e['unit']} ({e['r']:+.2f})" for e in r["units"])
            lines.append(f"  {src:<8} {prop:<20} {units}")
    return "\n".join(lines) + f"\npage: {result['page']}"


def add_arguments(p: argparse.ArgumentParser, viewer: bool) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--text", type=Path, nargs="+", metavar="FILE",
                   help="text to read (default: the run's validation split)")
    p.add_argument("--chars", type=int, default=5000 if viewer else 20000,
                   help="read at most this many characters")
    p.add_argument("--out", type=Path, help="output file (default in the run directory)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    if viewer:
        p.add_argument("--layer", type=int, help="layer to show (default the last)")
        p.add_argument("--unit", type=int, nargs="+", help="units to offer besides the ranked ones")

