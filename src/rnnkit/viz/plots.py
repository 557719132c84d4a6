"""Static plots written into run directories (PNG, via matplotlib's non-interactive backend)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_write


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    """Lay out, write the PNG atomically, and free the figure."""
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    _pyplot().close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path,
                   title: str = "") -> None:
    """A confusion matrix: rows are the true classes, columns the predicted ones; each cell shows its
    count, shaded by the fraction of its row (so rare classes are as readable as common ones)."""
    plt = _pyplot()
    n = len(classes)
    rows = [max(1, sum(r)) for r in matrix]
    shade = [[c / rows[i] for c in r] for i, r in enumerate(matrix)]
    size = min(12, 2.5 + 0.45 * n)
    fig, ax = plt.subplots(figsize=(size, size * 0.9), dpi=100)
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    labels = [c if len(c) <= 12 else c[:11] + "…" for c in classes]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i][j]), ha="center", va="center", fontsize=8,
                        color="white" if shade[i][j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    _save(fig, path)


def plot_forecast(path: Path, x, y, origins, horizon: int, forecasts, baseline=None, *,
                  lower=None, upper=None, title: str = "", baseline_label: str = "Holt-Winters") -> None:
    """The observed series ``y`` at steps ``x`` and the forecasts (O, H) made from each origin (they
    cover steps origin .. origin+H-1), optionally a baseline's forecasts (O, H) and an interval band
    (lower, upper (O, H)). Long series are drawn thin so the forecasts stay readable."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 4), dpi=100)
    ax.plot(x, y, color="black", linewidth=0.8 if len(x) > 500 else 1.2, label="observed")
    for i, origin in enumerate(origins):
        steps = origin + np.arange(horizon)
        if lower is not None:
            ax.fill_between(steps, lower[i], upper[i], color="tab:blue", alpha=0.2,
                            label="interval" if i == 0 else None)
        ax.plot(steps, forecasts[i], color="tab:blue", linewidth=1.4, label="RNN" if i == 0 else None)
        if baseline is not None:
            ax.plot(steps, baseline[i], color="tab:orange", linewidth=1.0, linestyle="--",
                    label=baseline_label if i == 0 else None)
    ax.set_xlabel("step")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title)
    _save(fig, path)


def plot_word_map(path: Path, words: Sequence[str], xy, title: str = "") -> None:
    """Words placed at their 2-D coordinates xy (n, 2), each labelled."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    ax.scatter(xy[:, 0], xy[:, 1], s=12, color="tab:blue")
    for word, (x, y) in zip(words, xy):
        ax.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    if title:
        ax.set_title(title, fontsize=10)
    _save(fig, path)


def plot_attention(path: Path, examples: Sequence[tuple[Sequence[str], Sequence[str], np.ndarray]],
                   title: str = "") -> None:
    """Attention heat maps, one panel per (source tokens, output tokens, weights (T, S)) example:
    row t shows where the decoder looked while writing output token t."""
    plt = _pyplot()
    n = len(examples)
    cols = min(n, 2)
    rows = -(-n // cols)
    widths = [max(len(s) for s, _, _ in examples), max(len(t) for _, t, _ in examples)]
    cell = 0.32 if max(widths) <= 30 else 0.18
    fig, axes = plt.subplots(rows, cols, squeeze=False, dpi=100,
                             figsize=(cols * (2 + cell * widths[0]), rows * (1.5 + cell * widths[1])))
    for ax, (source, output, weights) in zip(axes.flat, examples):
        ax.imshow(weights, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=90, fontsize=8)
        ax.set_yticks(range(len(output)), output, fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_caption_attention(path: Path, examples: Sequence[tuple[np.ndarray, Sequence[str], np.ndarray]]
                           ) -> None:
    """For each (image (3, S, S), caption words, weights (T, G, G)): the image, then the image
    under each word with the regions it attended to lit and the rest dimmed ("Show, attend and
    tell", Fig. 3)."""
    plt = _pyplot()
    cols = 1 + max(len(words) for _, words, _ in examples)
    fig, axes = plt.subplots(len(examples), cols, squeeze=False, dpi=100,
                             figsize=(1.3 * cols, 1.45 * len(examples)))
    for row, (image, words, weights) in zip(axes, examples):
        picture = np.transpose(image, (1, 2, 0)).clip(0, 1)                      # (S, S, 3)
        S = picture.shape[0]
        row[0].imshow(picture)
        for ax, word, w in zip(row[1:], words, weights):
            G = w.shape[0]
            light = np.kron(w / max(float(w.max()), 1e-9), np.ones((S // G, S // G)))
            light = np.pad(light, ((0, S - light.shape[0]), (0, S - light.shape[1])), mode="edge")
            ax.imshow(picture * (0.25 + 0.75 * light[..., None]))
            ax.set_title(word, fontsize=8)
        for ax in row:
            ax.axis("off")
    _save(fig, path)


def plot_gradient_profiles(path: Path, result: dict) -> None:
    """‖∂loss/∂h_t‖ (solid) and ‖∂loss/∂x_t‖ (dotted) against the distance T - t from the loss, one
    line per cell; a panel at initialisation and one after training when there is one."""
    plt = _pyplot()
    profiles = result["profiles"]
    stages = [s for s in ("init", "trained") if any(s in p for p in profiles.values())]
    fig, axes = plt.subplots(1, len(stages), squeeze=False, sharey=True, dpi=100,
                             figsize=(5.5 * len(stages), 4))
    T = result["length"]
    distance = np.arange(T)[::-1]                                    # index t-1 -> T - t
    for ax, stage in zip(axes[0], stages):
        for i, (cell, p) in enumerate(profiles.items()):
            if stage not in p:
                continue
            color = f"C{i}"
            steps = f" ({p['trained_steps']} steps)" if stage == "trained" else ""
            ax.plot(distance, p[stage]["h"], color=color, lw=1.5, label=f"{cell}  ∂L/∂h_t{steps}")
            ax.plot(distance, p[stage]["x"], color=color, lw=1, ls=":", label=f"{cell}  ∂L/∂x_t")
        ax.set_yscale("log")
        ax.set_xlabel("distance from the loss (T − t)")
        title = "at initialisation" if stage == "init" else \
            f"after training (≤ {result['train_steps']} steps, less if solved)"
        ax.set_title(f"{result['task']} problem, T = {T}: {title}", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0][0].set_ylabel("gradient norm (mean over the batch)")
    axes[0][-1].legend(fontsize=8)
    _save(fig, path)


def plot_gate_statistics(path: Path, stats: Sequence[dict], title: str = "") -> None:
    """One row per layer (and direction): each unit's fraction of left-saturated (< 0.1) against
    right-saturated (> 0.9) steps, per gate, as in Karpathy et al. (2015, fig. 6); and the
    histogram of the forget (LSTM) or update (GRU) gate."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(stats), 2, squeeze=False, dpi=100, figsize=(9, 3.6 * len(stats)))
    for (scatter, hist), s in zip(axes, stats):
        name = f"layer {s['layer']}" + (" reverse" if s["direction"] else "")
        for gate, g in s["gates"].items():
            scatter.scatter(g["per_unit_left"], g["per_unit_right"], s=8, alpha=0.6,
                            label=f"{gate}: {g['left_saturated']:.0%} < 0.1, "
                                  f"{g['right_saturated']:.0%} > 0.9")
        scatter.plot([0, 1], [1, 0], color="#999", lw=0.8)
        scatter.set(xlim=(0, 1), ylim=(0, 1), xlabel="fraction left-saturated (< 0.1)",
                    ylabel="fraction right-saturated (> 0.9)", title=f"{name}: gates per unit")
        scatter.legend(fontsize=7)
        if "histogram" in s:
            h = s["histogram"]
            edges = np.asarray(h["edges"])
            hist.bar(edges[:-1], h["counts"], width=np.diff(edges), align="edge", color="C1")
            hist.set(xlabel=f"{h['gate']} gate value", ylabel="count (steps × units)",
                     title=f"{name}: {h['gate']} gate histogram")
        else:
            hist.axis("off")
    if title:
        fig.suptitle(title)
    _save(fig, path)
