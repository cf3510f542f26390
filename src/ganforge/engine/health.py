"""Health checks while training: mode coverage, a discriminator that wins outright, gradient norms.

Every `health.every_steps` steps the monitor

- counts the modes G covers: `health.num_samples` samples from fixed latents, read by the domain
  classifier (MNIST / Fashion-MNIST classes, Stacked MNIST digit triples) or placed on the toy
  mixture's modes; a mode is covered when it gets at least `health.mode_share` of its uniform
  share (metrics.modes.covered_modes);
- averages D's accuracy (the `D_acc` statistic: real above D's decision boundary, generated
  below) over every step since the previous check;
- reads the gradient norm of every player at the last update before the check.

It writes a line to health.jsonl and tells the trainer what it saw: `trainer.observe({"coverage":
...})`, which `train.keep_best: coverage` may keep, and `trainer.alarm(reason)` when the covered
modes fall below `health.coverage_drop` of the most seen at any check, or when D's accuracy reaches
`health.d_win_accuracy`. What an alarm does (warn, stop, rollback) is the trainer's business, as
`train.on_collapse` says; the monitor only watches.
"""

from __future__ import annotations

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.engine.run import RunDir
from ganforge.metrics import METRICS, evaluate_generator
from ganforge.metrics.modes import covered_modes

# What health.jsonl's numbers are, for the report (the metrics describe their own).
LABELS = {"coverage": ("modes covered", "higher"), "D_acc": ("D's accuracy (real vs generated)", None),
          "grad_G": ("gradient norm of G", None), "grad_D": ("gradient norm of D", None)}


class HealthMonitor:
    """Runs on every rank under torchrun (sample generation is shared; rank 0 counts the modes and
    writes). The trainer agrees the alarms across ranks."""

    name = "health"

    def __init__(self, cfg: Config, recipe, data, run: RunDir | None, dist: DistInfo = DistInfo()):
        self.cfg, self.recipe, self.run, self.dist = cfg, recipe, run, dist
        self.h = cfg.health
        # the modes metric says whether this data has modes it can count (a classifier for them, or toy centres)
        # (an image-to-image model restores or translates images: it has no samples of its own to count)
        self.count_modes = recipe.draws_from_latent and METRICS["modes"].refuse(cfg, data.spec, 0) is None
        self.reports_every = cfg.health.every_steps  # steps at which it may report to the trainer
        self.cache: dict = {}  # the classifier, loaded once
        self.best_coverage = 0  # the most modes covered at any check so far
        self.acc_sum, self.acc_steps = 0.0, 0  # D's accuracy since the previous check
        self.since = 0  # the step of the previous check

    def state_dict(self) -> dict:
        return {"best_coverage": self.best_coverage, "acc_sum": self.acc_sum, "acc_steps": self.acc_steps,
                "since": self.since}

    def load_state_dict(self, state: dict) -> None:
        self.best_coverage, self.since = int(state["best_coverage"]), int(state["since"])
        self.acc_sum, self.acc_steps = float(state["acc_sum"]), int(state["acc_steps"])

    def on_start(self, trainer) -> None:
        if self.run is not None:
            self.run.truncate("health.jsonl", trainer.step)

    def on_step(self, trainer) -> None:
        step, every = trainer.step, self.h.every_steps
        if "D_acc" in trainer.stats:
            self.acc_sum += trainer.stats["D_acc"]
            self.acc_steps += 1
        # measure the gradients of the last n_dis updates before a check, so G's last one is among them
        self.recipe.measure_grads = 0 < every - step % every <= max(self.cfg.train.n_dis, 1)
        if step % every == 0:
            self.check(trainer)

    def on_rollback(self, trainer) -> None:
        """After the trainer returns to the best weights: D's accuracy is counted afresh."""
        self.acc_sum, self.acc_steps, self.since = 0.0, 0, trainer.step

    def check(self, trainer) -> dict:
        step = trainer.step
        row: dict = {"step": step}
        alarms: list[str] = []
        coverage = self._coverage()
        if coverage is not None:
            covered, num_modes = coverage
            row.update(coverage=covered, num_modes=num_modes)
            if covered < self.h.coverage_drop * self.best_coverage:
                alarms.append(f"mode collapse: {covered}/{num_modes} modes covered, down from {self.best_coverage}")
            self.best_coverage = max(self.best_coverage, covered)
            trainer.observe({"coverage": covered}, {"coverage": "higher"})
        if self.acc_steps:
            acc = self.acc_sum / self.acc_steps
            row["D_acc"] = round(acc, 5)
            if acc >= self.h.d_win_accuracy:
                alarms.append(f"D wins outright: it told real from generated {acc:.1%} of the time over steps "
                              f"{self.since + 1}-{step}")
        # measured at each player's last update of the window (every player updates within n_dis steps)
        row.update({k: round(v, 6) for k, v in self.recipe.grad_norms().items()})
        row["alarms"] = alarms
        if self.run is not None:
            self.run.append("health.jsonl", row)
        for reason in alarms:
            trainer.alarm(reason)
        self.acc_sum, self.acc_steps, self.since = 0.0, 0, step
        return row

    def _coverage(self) -> tuple[int, int] | None:
        """(covered modes, modes) on rank 0; None elsewhere or when the data has no countable modes."""
        if not self.count_modes:
            return None

        records = evaluate_generator(self.recipe.generator(), ["modes"], self.h.num_samples, seed=self.cfg.eval.seed + 1,
                                     cache=self.cache, dist=self.dist)
        if not records or "histogram" not in records[0]:  # not rank 0, or refused (the reason is in eval)
            return None
        histogram = records[0]["histogram"]
        return covered_modes(histogram, self.h.mode_share), len(histogram)
