"""Training hooks that are about GANs: fixed-latent samples during training, and the GIF,
plots, generator export and report at the end. (In-training metrics: metrics/hook.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ganforge import checkpoint, config as config_mod
from ganforge.config import Config
from ganforge.data import InMemoryDataset
from ganforge.reporting import (make_gif, plot_curves, plot_metrics, read_jsonl, save_image_grid,
                                save_scatter, write_report)
from ganforge.trainer import Trainer, TrainResult


class Reporter:
    """Fixed-latent samples during training, and the GIF, plots, report and export at the end."""

    def __init__(self, cfg: Config, data: InMemoryDataset, recipe, run_dir: Path, log=print):
        self.cfg, self.data, self.recipe, self.run_dir, self.log = cfg, data, recipe, run_dir, log
        g = torch.Generator().manual_seed(cfg.train.seed + 1)  # not the training RNG: sampling never perturbs it
        n = cfg.log.num_samples if data.kind == "image" else max(cfg.log.num_samples, 1000)
        self.fixed_z = recipe.sample_z(n, generator=g)
        self.started = time.time()

    def state_dict(self) -> dict:
        return {"fixed_z": self.fixed_z.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.fixed_z = state["fixed_z"].to(self.fixed_z.device)

    def _save(self, x: torch.Tensor, path: Path, title: str) -> Path:
        if self.data.kind == "points":
            real = self.data.x[:2000]
            return save_scatter(x, path, real=real, centres=self.data.centres, title=title)
        return save_image_grid(x, path, self.cfg.data.range)

    def on_start(self, trainer: Trainer) -> None:
        samples = self.run_dir / "samples"
        if not (samples / "reals.png").is_file():
            self._save(self.data.x[: self.cfg.log.num_samples if self.data.kind == "image" else 2000],
                       samples / "reals.png", "real data")
        if trainer.step == 0:
            self.on_sample(trainer)

    def on_sample(self, trainer: Trainer) -> None:
        x = self.recipe.generate(self.fixed_z)
        self._save(x, self.run_dir / "samples" / f"step_{trainer.step:07d}.png", f"step {trainer.step}")

    def on_end(self, trainer: Trainer) -> None:
        report = self.run_dir / "report"
        frames = sorted((self.run_dir / "samples").glob("step_*.png"))
        gif = make_gif(frames, report / "progress.gif")
        stats = read_jsonl(self.run_dir / "stats.jsonl")
        plots = plot_curves(stats, report)
        metrics_rows = read_jsonl(self.run_dir / "metrics.jsonl")
        plots += plot_metrics(metrics_rows, report)
        export = checkpoint.export_generator(self.run_dir / "export", self.recipe.G, config_mod.to_dict(self.cfg),
                                             trainer.step)
        r: TrainResult = trainer.result
        summary = {"run": self.run_dir.name, "status": f"interrupted ({r.interrupted_by})" if r.interrupted_by else "finished",
                   "step": r.step, "epochs": round(r.step / trainer.batches_per_epoch, 2),
                   "train time (s)": round(r.wall_s, 1), "wall time this session (s)": round(time.time() - self.started, 1),
                   "device": str(trainer.device), "data": f"{self.data.name}: {len(self.data)} samples from {self.data.source}",
                   "G parameters": sum(p.numel() for p in self.recipe.G.parameters()),
                   "D parameters": sum(p.numel() for p in self.recipe.D.parameters()),
                   **{f"final {k}": v for k, v in (stats[-1] if stats else {}).items() if k not in ("step", "epoch")},
                   **{f"last eval {k}": v for k, v in (metrics_rows[-1] if metrics_rows else {}).items() if k != "step"},
                   "checkpoint": str(r.checkpoint), "export": str(export)}
        images = {"final samples (fixed latents)": frames[-1] if frames else None, "progress": gif,
                  "real data": self.run_dir / "samples" / "reals.png",
                  **{p.stem: p for p in plots}}
        self.report_path = write_report(self.run_dir, config_mod.dump(self.cfg), summary, images)
