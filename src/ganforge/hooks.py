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
from ganforge.reporting import (Figure, make_gif, plot_curves, plot_metrics, save_image_grid, save_scatter,
                                write_report)
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
        self.nrow = recipe.grid_columns(self.fixed_inputs)
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


STRIP_LENGTH = 8  # fixed-latent grids shown side by side in the report


def write_run_report(run: RunDir, cfg: Config, data: Dataset, recipe, trainer, export_dir, started: float):
    """report/: progress.gif, a strip of grids through training, the recipe's statistic plots,
    metrics.png, health.png, the final generator's truncation sweep and latent walk, report.html
    (the run in words first) and summary.json."""
    from ganforge.metrics import describe

    report = run / "report"
    frames = sorted((run / "samples").glob("step_*.png"))
    gif = make_gif(frames, report / "progress.gif")
    stats, metrics_rows, health_rows = run.read("stats.jsonl"), run.read("metrics.jsonl"), run.read("health.jsonl")
    r = trainer.result
    curves = plot_curves(stats, report, recipe.stat_plots())
    metric_plots = plot_metrics(metrics_rows, report, describe=describe)
    health_plots = plot_metrics([{k: v for k, v in row.items() if k != "num_modes"} for row in health_rows],  # a constant
                                report, "health.png", r.alarms, describe)
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
    sweep = walk = walk_w = mixing = None
    latent_pictures = data.kind == "image" and recipe.generator().takes_latent
    if latent_pictures:
        from ganforge.api import SWEEP_PSI, interp, truncation_sweep

        with isolated_rng():
            G = recipe.generator()
            sweep = truncation_sweep(G, report / "truncation.png")
            walk = interp(G, report / "walk.gif", seeds=[0, 1, 2, 3], steps=12, fps=10)
            if G.num_ws:  # a style-based generator: the walk in w and the StyleGAN paper's mixing figure
                from ganforge.api import style_mixing

                walk_w = interp(G, report / "walk_w.gif", seeds=[0, 1, 2, 3], steps=12, fps=10, space="w")
                mixing = style_mixing(G, report / "style_mixing.png")
        psis = ", ".join(f"{p:g}" for p in SWEEP_PSI)
    final = frames[-1] if frames else None
    fixed = "latents" if latent_pictures or data.kind == "points" else "inputs"
    final_caption = (f"final samples (step {r.step:,}, fixed latents)" if fixed == "latents" else
                     f"step {r.step:,}, rows: {recipe.inputs_caption}, outputs, {recipe.grid_rows_caption}")
    strip = [Figure(f"step {int(f.stem.split('_')[1]):,}", f, width=100) for f in _spread(frames, STRIP_LENGTH)]
    sections = [
        (f"Training, from the same {fixed} throughout",
         [Figure("progress: every grid (GIF; the final one first)", gif, width=240)] + strip, "row strip"),
        ("The final generator", [
            Figure(final_caption, final, width=360 if fixed == "latents" else 720),
            Figure("real data", run / "samples" / "reals.png", width=360),
            *([Figure("latent walk through seeds 0, 1, 2, 3 (spherical for normal z)", walk, width=224, pixels=True),
               Figure("the same seeds, walked in straight lines in w", walk_w, width=224, pixels=True),
               Figure(f"truncation toward the mean latent: rows psi = {psis}; columns the same latents", sweep,
                      width=448),
               Figure("style mixing: coarse styles from the seed of the row (left), fine styles from the seed of "
                      "the column (top)", mixing, width=360)] if latent_pictures else [])], "row"),
        ("Curves", [Figure(_plot_caption(p), p) for p in curves], "row"),
        ("Evaluation", [Figure("metrics of the generator during training (one panel each)", p) for p in metric_plots],
         "row"),
        ("Health checks", [Figure("what the health checks measured; red lines: alarms", p) for p in health_plots], "row"),
    ]
    words = _in_words(summary, r, cfg, data, stats, metrics_rows, health_rows)
    return write_report(run.path, config_mod.dump(cfg), summary, words, sections)


def _spread(items: list, k: int) -> list:
    """k items evenly spread from the first to the last (all when there are at most k)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def _plot_caption(path) -> str:
    return {"losses.png": "losses of D and G per step", "d_outputs.png": "what D says of real and generated batches",
            "wasserstein.png": "the critic's estimate of the Wasserstein distance",
            "l1.png": "L1 distance of G's outputs to the targets", "cycle.png": "cycle-consistency and identity L1"
            }.get(path.name, path.stem)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def _in_words(summary: dict, r, cfg: Config, data: Dataset, stats: list[dict], metrics_rows: list[dict],
              health_rows: list[dict]) -> list[str]:
    """The run in a few sentences, with units and which way is better."""
    from ganforge.metrics import describe

    params = ", ".join(f"{k.split()[0]} {v:,}" for k, v in summary.items() if k.endswith(" parameters"))
    words = [f"{summary['status'].capitalize()} after {r.step:,} steps ({summary['epochs']:g} epochs, batches of "
             f"{cfg.train.batch_size}) in {_duration(r.wall_s)} of training on {summary['device']} "
             f"({summary['precision']}).",
             f"Recipe {cfg.train.recipe} ({cfg.loss.kind} loss) with G {config_mod.net_names(cfg)[0]} and D "
             f"{config_mod.net_names(cfg)[1]}, {params} parameters, "
             f"on {data.name}: {len(data):,} {'points' if data.kind == 'points' else 'images'} from {data.source}."]
    if metrics_rows:
        first, last = metrics_rows[0], metrics_rows[-1]
        parts = []
        for key, value in last.items():
            if key in ("step", "num_samples", "train_time_s") or not isinstance(value, (int, float)):
                continue
            label, better = describe(key)
            moved = first is not last and key in first and first[key] != value
            was = f", from {first[key]:.4g} at step {first['step']:,}" if moved else ""
            parts.append(f"{label} {value:.4g}{was}" + (f" ({better} is better)" if better else ""))
        space = f" in the {last['feature_extractor']} feature space" if "feature_extractor" in last else ""
        words.append(f"Last evaluation at step {last['step']:,} on {last.get('num_samples', 0):,} samples{space}: "
                     + "; ".join(parts) + ".")
    end = stats[-1] if stats else {}
    if "L1" in end:
        words.append(f"At the end G's outputs were {end['L1']:.3f} from their targets in mean absolute pixel "
                     f"difference (pixels in {'[-1, 1]' if data.value_range == 'signed' else '[0, 1]'}; lower is "
                     "closer).")
    if "cycle" in end:
        words.append(f"At the end an image translated there and back was {end['cycle']:.3f} from itself in mean "
                     "absolute pixel difference, A and B summed (cycle consistency; lower is better).")
    if "D_x" in end and "D_G_z" in end:
        words.append(f"At the end D gave real batches D(x) = {end['D_x']:.2f} and generated ones D(G(z)) = "
                     f"{end['D_G_z']:.2f} on average (1 means sure it is real; the game's equilibrium is 0.5 for both).")
    if health_rows:
        alarms = len(r.alarms)
        words.append(f"{len(health_rows)} health checks, " + ("no alarm." if not alarms else
                     f"{alarms} alarm(s), the first at step {r.alarms[0][0]:,}: {r.alarms[0][1]}."))
    if r.best:
        words.append(f"Best checkpoint by {r.best['name']}: {r.best['value']:.4g} at step {r.best['step']:,} "
                     "(ckpt/best.pt).")
    for at, back_to in r.rollbacks:
        words.append(f"Rolled back at step {at:,} to the weights of step {back_to:,}.")
    return words


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
