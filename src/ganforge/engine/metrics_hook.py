"""In-training metrics: every `eval.every_steps` steps, evaluate the current generator into
metrics.jsonl (one line per evaluation, numbers flattened), and plot them for the report."""

from __future__ import annotations

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.engine.run import RunDir
from ganforge.metrics import better_of, evaluate_generator, flatten_records


class MetricsHook:
    """Runs on every rank under torchrun (each generates its share of the samples); only rank 0,
    the one given a run folder, computes the metrics and writes."""

    name = "metrics"

    def __init__(self, cfg: Config, recipe, run: RunDir | None, dist: DistInfo = DistInfo()):
        self.cfg, self.recipe, self.run, self.dist = cfg, recipe, run, dist
        self.cache: dict = {}  # real-data features, computed once per run
        self.reports_every = cfg.eval.every_steps  # steps at which it may report to the trainer

    def on_start(self, trainer) -> None:
        if self.run is not None:
            self.run.truncate("metrics.jsonl", trainer.step)  # on resume, evaluations after the checkpoint are redone

    def on_step(self, trainer) -> None:
        if trainer.step % self.cfg.eval.every_steps == 0:
            row = self.evaluate(trainer.step, trainer.elapsed_s)
            if row is not None:  # rank 0: train.keep_best may keep this step
                trainer.observe(row, {k: better_of(k) for k in row})

    def evaluate(self, step: int, train_time_s: float | None = None) -> dict | None:
        e = self.cfg.eval
        records = evaluate_generator(self.recipe.generator(), list(e.metrics), e.num_samples, e.seed, step,
                                     cache=self.cache, dist=self.dist)
        if self.run is None:
            return None
        row = {"step": step, "num_samples": e.num_samples, **flatten_records(records)}
        if train_time_s is not None:  # time spent in training steps, for time-to-quality
            row["train_time_s"] = round(train_time_s, 1)
        extractor = next((r.get("feature_extractor") for r in records if r.get("feature_extractor")), None)
        if extractor:
            row["feature_extractor"] = extractor
        self.run.append("metrics.jsonl", row)
        return row
