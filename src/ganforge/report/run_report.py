"""What a run shows people at the end: the progress GIF, the plots and the one-page report
(`write_run_report`). Nothing here trains or exports; it reads the run's files and what the recipe
and the hooks declare (their statistic plots and captions, sentences on the last statistics, the
labels of the numbers they log)."""

from __future__ import annotations

import time

from ganforge import config as config_mod
from ganforge.config import Config
from ganforge.core.rng import isolated_rng
from ganforge.data import Dataset
from ganforge.engine import health
from ganforge.engine.run import RunDir
from ganforge.explore import SWEEP_PSI, interp, style_mixing, truncation_sweep
from ganforge.metrics import METRICS, describe as describe_metric
from ganforge.report.html import Figure, write_report
from ganforge.core.images import make_gif
from ganforge.report.plots import plot_curves, plot_metrics


STRIP_LENGTH = 8  # fixed-latent grids shown side by side in the report


def write_run_report(run: RunDir, cfg: Config, data: Dataset, recipe, trainer, export_dir, started: float):
    """report/: progress.gif, a strip of grids through training, the recipe's statistic plots,
    metrics.png, health.png, the final generator's truncation sweep and latent walk, report.html
    (the run in words first) and summary.json."""
    report = run / "report"
    frames = sorted((run / "samples").glob("step_*.png"))
    gif = make_gif(frames, report / "progress.gif")
    stats, metrics_rows, health_rows = run.read("stats.jsonl"), run.read("metrics.jsonl"), run.read("health.jsonl")
    watch_rows = run.read("watch.jsonl")
    r = trainer.result
    captions = {plot.file: plot.caption or plot.file.removesuffix(".png") for plot in recipe.stat_plots()}
    curves = [(captions[path.name], path) for path in plot_curves(stats, report, recipe.stat_plots())]
    metric_plots = plot_metrics(metrics_rows, report, describe=describe)
    health_plots = plot_metrics([{k: v for k, v in row.items() if k != "num_modes"} for row in health_rows],  # a constant
                                report, "health.png", r.alarms, describe)
    summary = {"run": run.name, "status": (f"interrupted ({r.interrupted_by})" if r.interrupted_by else
                          "stopped by a collapse alarm" if r.stopped_for else "finished"),
               "step": r.step, "epochs": round(r.step / trainer.batches_per_epoch, 2),
               "train time (s)": round(r.train_time_s, 1), "wall time this session (s)": round(time.time() - started, 1),
               "device": str(trainer.device), "recipe": cfg.train.recipe, "precision": recipe.precision,
               "data": f"{data.name}: {len(data)} samples from {data.source}",
               **{f"{name} parameters": sum(p.numel() for p in player.net.parameters())
                  for name, player in recipe.players.items()},
               **{f"final {k}": v for k, v in (stats[-1] if stats else {}).items() if k not in ("step", "epoch")},
               **{f"last eval {k}": v for k, v in (metrics_rows[-1] if metrics_rows else {}).items() if k != "step"},
               **_health_summary(r, health_rows),
               **{f"watch {i + 1}": f"step {w['step']}: {w['message']}" for i, w in enumerate(watch_rows[:5])},
               "checkpoint": str(r.checkpoint), "export": str(export_dir)}
    sweep = walk = walk_w = mixing = None
    latent_pictures = data.kind == "image" and recipe.generator().takes_latent
    if latent_pictures:
        with isolated_rng():
            G = recipe.generator()
            sweep = truncation_sweep(G, report / "truncation.png")
            walk = interp(G, report / "walk.gif", seeds=[0, 1, 2, 3], steps=12, fps=10)
            if G.num_ws:  # a style-based generator: the walk in w and the StyleGAN paper's mixing figure
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
        ("Curves", [Figure(caption, p) for caption, p in curves], "row"),
        ("Evaluation", [Figure("metrics of the generator during training (one panel each)", p) for p in metric_plots],
         "row"),
        ("Health checks", [Figure("what the health checks measured; red lines: alarms", p) for p in health_plots], "row"),
    ]
    words = _in_words(summary, r, cfg, data, recipe, stats, metrics_rows, health_rows)
    words += [f"At step {w['step']:,}: {w['message']}" for w in watch_rows]
    return write_report(run.path, config_mod.dump(cfg), summary, words, sections)


def _spread(items: list, k: int) -> list:
    """k items evenly spread from the first to the last (all when there are at most k)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def describe(key: str) -> tuple[str, str | None]:
    """(label, which way is better) of a number in metrics.jsonl or health.jsonl."""
    return health.LABELS.get(key) or describe_metric(key)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def _in_words(summary: dict, r, cfg: Config, data: Dataset, recipe, stats: list[dict], metrics_rows: list[dict],
              health_rows: list[dict]) -> list[str]:
    """The run in a few sentences, with units and which way is better."""
    params = ", ".join(f"{k.split()[0]} {v:,}" for k, v in summary.items() if k.endswith(" parameters"))
    words = [f"{summary['status'].capitalize()} after {r.step:,} steps ({summary['epochs']:g} epochs, batches of "
             f"{cfg.train.batch_size}) in {_duration(r.train_time_s)} of training on {summary['device']} "
             f"({summary['precision']}).",
             f"Recipe {cfg.train.recipe} ({recipe.loss_words or cfg.loss.kind + ' loss'}) with G {config_mod.net_names(cfg)[0]} and D "
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
        drawn = any(METRICS[m].needs_samples for m in cfg.eval.metrics if m in METRICS)  # accuracy draws none
        samples = f" on {last.get('num_samples', 0):,} samples" if drawn else ""
        words.append(f"Last evaluation at step {last['step']:,}{samples}{space}: "
                     + "; ".join(parts) + ".")
    words += recipe.report_words(stats[-1] if stats else {}, data.value_range)
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
