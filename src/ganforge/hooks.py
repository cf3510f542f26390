"""What a run shows people: sample grids from fixed inputs during training (a hook), and the GIF,
the plots and the one-page report at the end (`write_run_report`). (In-training metrics:
metrics/hook.py.) Nothing here trains or exports; it reads the recipe's samples and the run's files.
"""

from __future__ import annotations

import time

import torch

from ganforge import config as config_mod
from ganforge.checkpoint import isolated_rng
from ganforge.config import Config
from ganforge.data import Dataset
from ganforge.reporting import make_gif, plot_curves, plot_metrics, save_image_grid, save_scatter, write_report
from ganforge.run import RunDir


def save_samples(x: torch.Tensor, path, data: Dataset, title: str, nrow: int | None = None):
    """A grid of images (`nrow` a row), or a scatter of toy points over the real ones."""
    if data.kind == "points":
        return save_scatter(x, path, real=data.samples(2000), centres=data.centres, title=title)
    return save_image_grid(x, path, data.value_range, nrow=nrow)


class SampleGrids:
    """samples/step_XXXXXXX.png from the same fixed inputs every time (rank 0 only)."""

    name = "samples"

    def __init__(self, cfg: Config, data: Dataset, recipe, run: RunDir):
        self.data, self.recipe, self.run = data, recipe, run
        g = torch.Generator().manual_seed(cfg.train.seed + 1)  # not the training RNG: sampling never perturbs it
        n = cfg.log.num_samples if data.kind == "image" else max(cfg.log.num_samples, 1000)
        self.fixed_inputs = recipe.fixed_inputs(n, g)
        self.num_reals = cfg.log.num_samples if data.kind == "image" else 2000
        c = self.fixed_inputs.get("c")  # a conditional model's grid has a row per class
        self.nrow = int((c == c[0]).sum()) if c is not None and (c == c[0]).sum() > 1 else None
        self._last_step = None  # the step of the last grid drawn

    def state_dict(self) -> dict:
        return {"fixed_inputs": {k: v.cpu() for k, v in self.fixed_inputs.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.fixed_inputs = {k: v.to(self.fixed_inputs[k].device) for k, v in state["fixed_inputs"].items()}

    def on_start(self, trainer) -> None:
        reals = self.run / "samples" / "reals.png"
        if not reals.is_file():
            save_samples(self.data.samples(self.num_reals), reals, self.data, "real data")
        if trainer.step == 0:
            self.on_sample(trainer)

    def on_sample(self, trainer) -> None:
        if trainer.step == self._last_step:
            return  # the end of training asks again after an epoch-end grid of the same step
        self._last_step = trainer.step
        x = self.recipe.sample(self.fixed_inputs)
        path = save_samples(x, self.run / "samples" / f"step_{trainer.step:07d}.png", self.data,
                            f"step {trainer.step}", self.nrow)
        self.run.image_written("samples (fixed inputs)", path, trainer.step)


def write_run_report(run: RunDir, cfg: Config, data: Dataset, recipe, trainer, export_dir, started: float):
    """report/: progress.gif, the recipe's statistic plots, metrics.png, report.html, summary.json."""
    report = run / "report"
    frames = sorted((run / "samples").glob("step_*.png"))
    gif = make_gif(frames, report / "progress.gif")
    stats, metrics_rows, health_rows = run.read("stats.jsonl"), run.read("metrics.jsonl"), run.read("health.jsonl")
    r = trainer.result
    plots = (plot_curves(stats, report, recipe.stat_plots()) + plot_metrics(metrics_rows, report)
             + plot_metrics([{k: v for k, v in row.items() if k != "num_modes"} for row in health_rows],  # a constant
                            report, "health.png", r.alarms))
    summary = {"run": run.name, "status": (f"interrupted ({r.interrupted_by})" if r.interrupted_by else
                          "stopped by a collapse alarm" if r.stopped_for else "finished"),
               "step": r.step, "epochs": round(r.step / trainer.batches_per_epoch, 2),
               "train time (s)": round(r.wall_s, 1), "wall time this session (s)": round(time.time() - started, 1),
               "device": str(trainer.device), "recipe": cfg.train.recipe, "precision": recipe.precision,
               "data": f"{data.name}: {len(data)} samples from {data.source}",
               **{f"{name} parameters": sum(p.numel() for p in player.net.parameters())
                  for name, player in recipe.players.items()},
               **{f"final {k}": v for k, v in (stats[-1] if stats else {}).items() if k not in ("step", "epoch")},
               **{f"last eval {k}": v for k, v in (metrics_rows[-1] if metrics_rows else {}).items() if k != "step"},
               **_health_summary(r, health_rows),
               "checkpoint": str(r.checkpoint), "export": str(export_dir)}
    from ganforge.api import SWEEP_THRESHOLDS, truncation_sweep

    with isolated_rng():
        sweep = truncation_sweep(recipe.generator(), report / "truncation.png")
    rows = ", ".join("none" if t is None else f"{t:g}" for t in SWEEP_THRESHOLDS)
    images = {"final samples (fixed inputs)": frames[-1] if frames else None, "progress": gif,
              "real data": run / "samples" / "reals.png", **{p.stem: p for p in plots},
              f"truncation sweep (rows: threshold {rows}; columns: the same latents)": sweep}
    return write_report(run.path, config_mod.dump(cfg), summary, images)


def _health_summary(r, health_rows: list[dict]) -> dict:
    """What the health checks saw, keep_best kept and on_collapse did, for the report."""
    out = {}
    if health_rows:
        out["health checks"] = f"{len(health_rows)}, {len(r.alarms)} alarm(s)"
    for i, (step, reason) in enumerate(r.alarms[:5]):
        out[f"alarm {i + 1}"] = f"step {step}: {reason}"
    if len(r.alarms) > 5:
        out["alarms not shown"] = f"{len(r.alarms) - 5} more in log.txt"
    for i, (at, back_to) in enumerate(r.rollbacks):
        out[f"rollback {i + 1}"] = f"at step {at}, to the weights of step {back_to}"
    if r.stopped_for:
        out["stopped for"] = r.stopped_for
    if r.best:
        out["best checkpoint"] = f"{r.best['name']}={r.best['value']:.6g} at step {r.best['step']} (ckpt/best.pt)"
    return out
