"""The report's curves: step statistics (as the recipe's `StatPlot`s say) and evaluations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ganforge.core.images import _pyplot
from ganforge.core.stats import StatPlot


def plot_curves(stats: list[dict], out_dir: Path, plots: tuple[StatPlot, ...]) -> list[Path]:
    """One PNG per StatPlot, each statistic against the step, sized to be read at 1:1 in the report."""
    if not stats:
        return []
    plt = _pyplot()
    steps = [r["step"] for r in stats]
    paths = []
    for spec in plots:
        if not any(r.get(key) is not None for r in stats for key in spec.keys):
            continue  # nothing to draw (e.g. no D statistics in an L1-only run)
        fig, ax = plt.subplots(figsize=(6.4, 3.4), dpi=110)
        for key in spec.keys:
            pts = [(s, r[key]) for s, r in zip(steps, stats) if r.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), label=spec.labels.get(key, key), lw=1.2)
        if spec.hline:
            ax.axhline(spec.hline[0], color="0.5", ls="--", lw=0.8, label=spec.hline[1])
        if spec.ylim:
            ax.set_ylim(*spec.ylim)
        ax.set_xlabel("training step")
        ax.set_ylabel(spec.ylabel)
        ax.legend(fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / spec.file
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_metrics(rows: list[dict], out_dir: Path, file: str = "metrics.png",
                 marks: list[tuple[int, str]] = (), describe=lambda key: (key, None)) -> list[Path]:
    """metrics.png: one panel per numeric metric from metrics.jsonl (or health.jsonl), against the
    step, titled with what it is and which way is better (`describe(key)` -> (label, "lower" |
    "higher" | None)); `marks` (step, label) are drawn as vertical lines in every panel (the alarms)."""
    keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "num_samples", "train_time_s")
            and all(isinstance(r.get(k), (int, float)) for r in rows)]
    if not keys:
        return []
    plt = _pyplot()
    cols = min(len(keys), 2)
    rows_n = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.2 * cols, 3.3 * rows_n), dpi=110, squeeze=False)
    steps = [r["step"] for r in rows]
    # quality against the time it cost: minutes of training (steps only) where the rows have them
    timed = all("train_time_s" in r for r in rows) and len(rows) > 1
    xs = [r["train_time_s"] / 60 for r in rows] if timed else steps
    for ax, key in zip(axes.flat, keys):
        label, better = describe(key)
        ax.plot(xs, [r[key] for r in rows], marker="o", ms=4)
        for step, _ in marks:
            ax.axvline(float(np.interp(step, steps, xs)) if timed else step, color="tab:red", lw=0.8, ls="--")
        ax.set_title(f"{label}: {better} is better" if better else label, fontsize=10)
        ax.set_xlabel("minutes of training (steps on the top axis)" if timed else "training step")
        if timed:
            ax.secondary_xaxis("top", functions=(lambda m: np.interp(m, xs, steps), lambda s: np.interp(s, steps, xs)))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    path = out_dir / file
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return [path]
