"""Pictures and records of a run: fixed-input sample grids, the progress GIF, plots of the step
statistics (which ones, and how to read them, the recipe says through `StatPlot`s) and a one-page
HTML report.

Everything here reads tensors and files; nothing here trains. matplotlib is imported lazily with
the non-interactive Agg backend so plotting works on machines without a screen.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


# --- images ------------------------------------------------------------------------------------

def to_uint8(x: torch.Tensor, value_range: str) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] or [0, 1] -> uint8 [N, H, W, C]."""
    x = x.detach().float().cpu()
    if value_range == "signed":
        x = (x + 1) / 2
    return (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 [N, H, W, C] -> one uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad, C] image."""
    n, h, w, c = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i]
    return grid


def save_image_grid(x: torch.Tensor, path: Path, value_range: str, scale: int = 2, nrow: int | None = None) -> Path:
    """A PNG grid of images; `nrow` images per row (default: a square)."""
    from PIL import Image

    grid = make_grid(to_uint8(x, value_range), nrow)
    im = Image.fromarray(grid[:, :, 0] if grid.shape[2] == 1 else grid)
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    from ganforge.checkpoint import atomic_write

    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    atomic_write(path, lambda f: im.save(f, format=fmt))
    return path


def save_scatter(points: torch.Tensor, path: Path, real: torch.Tensor | None = None,
                 centres: torch.Tensor | None = None, title: str = "") -> Path:
    """Toy 2-D data: generated points over real points and the mixture's centres."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.75", label="real")
    ax.scatter(points[:, 0].cpu(), points[:, 1].cpu(), s=3, c="tab:blue", label="generated")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], s=30, marker="x", c="tab:red", label="modes")
    if real is not None or centres is not None:
        lim = float(max(real.abs().max() if real is not None else 0, centres.abs().max() if centres is not None else 0)) * 1.3
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=6)
    fig.tight_layout()
    from ganforge.checkpoint import atomic_write

    atomic_write(path, lambda f: fig.savefig(f, format=path.suffix[1:].lower() or "png"))
    plt.close(fig)
    return path


def save_gif(frames: np.ndarray, path, duration_ms: int = 80, scale: int = 4):
    """uint8 [F, H, W, C] frames as a looping GIF (upscaled `scale` x, nearest), written atomically
    to a path, or into a file object."""
    from PIL import Image

    from ganforge.checkpoint import atomic_write

    images = [Image.fromarray(f[..., 0] if f.shape[-1] == 1 else f).convert("RGB") for f in frames]
    if scale > 1:
        images = [im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST) for im in images]
    def write(f):
        images[0].save(f, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)

    if hasattr(path, "write"):  # a file object (the web explorer's walk, in memory)
        write(path)
    else:
        atomic_write(path, write)
    return path


def make_gif(frames: list[Path], path: Path, duration_ms: int = 200) -> Path | None:
    """A GIF of the sample grids in order, the last held longer. The final grid also comes first:
    a page shown without animation (a print, a static preview, a screenshot) shows a GIF's first
    frame, and that should be the trained generator, not the untrained one's grey noise."""
    from PIL import Image

    if not frames:
        return None
    images = [Image.open(f).convert("RGB") for f in [frames[-1], *frames]]
    durations = [duration_ms * 10] + [duration_ms] * (len(images) - 2) + [duration_ms * 10]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


# --- curves ------------------------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill -9; the rest is still good
    return rows


def truncate_jsonl(path: Path, max_step: int) -> None:
    """On resume: keep only the lines logged at or before the resumed step (a line cut by a
    kill -9 is dropped too); what comes after will be logged again."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if _line_step(line) <= max_step]
    path.write_text("".join(line + "\n" for line in keep))


def _line_step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62


@dataclass(frozen=True)
class StatPlot:
    """How to draw some step statistics: the recipe and its loss say which, the report draws them."""
    file: str  # e.g. "losses.png"
    keys: tuple[str, ...]  # keys of stats.jsonl
    ylabel: str
    labels: dict[str, str] = field(default_factory=dict)  # key -> legend label
    ylim: tuple[float, float] | None = None
    hline: tuple[float, str] | None = None  # (y, label) of a reference line


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
    for ax, key in zip(axes.flat, keys):
        label, better = describe(key)
        ax.plot(steps, [r[key] for r in rows], marker="o", ms=4)
        for step, _ in marks:
            ax.axvline(step, color="tab:red", lw=0.8, ls="--")
        ax.set_title(f"{label}: {better} is better" if better else label, fontsize=10)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    path = out_dir / file
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return [path]


# --- the report ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Figure:
    caption: str
    path: Path | None
    width: int | None = None  # display width in CSS pixels (None: the image's own, at most the page's)
    pixels: bool = False  # enlarged: keep the pixels sharp instead of blurring them


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:1.6em;border-bottom:1px solid #ddd}
ul.words{font-size:15px;max-width:900px}ul.words li{margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;display:flex;flex-direction:column;align-items:center}
figcaption{font-size:13px;color:#555;text-align:center;max-width:560px;margin-top:3px}
img{max-width:100%;image-rendering:auto}img.pixels{image-rendering:pixelated}
.strip figure{flex:0 0 auto}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}
"""


def write_report(run_dir: Path, config_yaml: str, summary: dict, words: list[str],
                 sections: list[tuple[str, list[Figure], str]]) -> Path:
    """report/report.html: the run in words, then `sections` of (heading, figures, CSS class: "row"
    or "row strip"), all numbers in a table and the config (images referenced relatively, so the
    folder can be moved or served as it is); report/summary.json holds `summary`."""
    report_dir = run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    e = html.escape
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>" for k, v in summary.items())
    body = []
    for heading, figures, css in sections:
        figs = "".join(_figure(f, report_dir) for f in figures if f.path is not None and Path(f.path).is_file())
        if figs:
            body.append(f"<h2>{e(heading)}</h2><div class=\"{css}\">{figs}</div>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganforge run {e(run_dir.name)}</title>
<style>{_CSS}</style></head>
<body><h1>ganforge run {e(run_dir.name)}</h1>
<ul class="words">{"".join(f"<li>{e(w)}</li>" for w in words)}</ul>
{"".join(body)}
<h2>All numbers</h2><details><summary>the run's summary ({len(summary)} entries, also in summary.json)</summary>
<table>{rows}</table></details>
<h2>Config</h2><details><summary>the resolved config (config.yaml)</summary><pre>{e(config_yaml)}</pre></details>
</body></html>
"""
    path = report_dir / "report.html"
    path.write_text(page)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return path


def _figure(f: Figure, report_dir: Path) -> str:
    e = html.escape
    pixels = ' class="pixels"' if f.pixels else ""
    width = f' width="{f.width}"' if f.width else ""
    src = e(_rel(f.path, report_dir))
    return (f'<figure><a href="{src}"><img src="{src}"{pixels}{width} alt="{e(f.caption)}"></a>'
            f"<figcaption>{e(f.caption)}</figcaption></figure>")


def _rel(p: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(Path(p).resolve(), start.resolve())).as_posix()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
