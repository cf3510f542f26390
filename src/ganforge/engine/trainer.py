"""The training loop: infrastructure only.

The trainer feeds batches (dicts from `Dataset.batch`) to `recipe.train_step`, keeps the step
count, writes stats.jsonl, fires the hooks on their schedule, saves checkpoints, stops cleanly on
Ctrl-C / SIGTERM and stops loudly on a non-finite statistic. It knows nothing about GANs: the
recipe owns the step and says what its statistics are called; the hooks own the pictures.

Hooks watch and report; the trainer decides. A hook hands it numbers (`observe`), and the one
named by `train.keep_best` makes ckpt/best.pt when it improves; a hook raises an alarm (`alarm`:
the health checks' mode collapse or winning D), and `train.on_collapse` says what follows: a
warning, a stop, or a rollback to the best weights. Under torchrun the ranks agree on both before
anyone acts, so every rank keeps and restores the same state.

The position in the data is derived from the step alone (epoch, batch = divmod(step, batches
per epoch)) and each epoch's order comes from its own generator seeded by (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganforge import checkpoint
from ganforge.core import rng
from ganforge.config import Config, to_dict
from ganforge.core.distributed import DistInfo, all_reduce_max, all_reduce_mean, cores_per_process, gather_rows, seed_rank_stream
from ganforge.core.errors import CheckpointError, ConfigError, DataError, TrainingDiverged
from ganforge.engine.run import RunDir


@dataclass
class TrainResult:
    step: int
    train_time_s: float  # time in training steps (over resumes); evaluation, pictures and checkpoints excluded
    wall_s: float = 0.0  # wall-clock time of this fit, everything included
    last_stats: dict = field(default_factory=dict)
    interrupted_by: str = ""  # "SIGINT" / "SIGTERM" when stopped by a signal
    checkpoint: Path | None = None
    stopped_for: str = ""  # the alarm that stopped the run (train.on_collapse=stop, or too many rollbacks)
    best: dict | None = None  # {"name", "value", "step", "path"} of ckpt/best.pt, with train.keep_best
    alarms: list = field(default_factory=list)  # (step, reason) of every alarm, in order
    rollbacks: list = field(default_factory=list)  # (at step, back to the state of step)
    # the last value of every number the hooks measured ({name: {"value", "step", "better"}}): FID,
    # coverage, ..., for the run's closing lines
    measured: dict = field(default_factory=dict)


class _Meter:
    """Running means of the step statistics between two stats.jsonl lines."""

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def pop(self) -> dict[str, float]:
        means = {k: self.sums[k] / self.counts[k] for k in self.sums}
        self.sums, self.counts = {}, {}
        return means


def _hook_name(hook) -> str:
    """The key of a hook's state in checkpoints: its `name`, or its class name."""
    return getattr(hook, "name", type(hook).__name__)


def _cpu_copy(state):
    """A deep copy of a (nested) state dict with every tensor cloned to the CPU."""
    if isinstance(state, dict):
        return {k: _cpu_copy(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cpu_copy(v) for v in state)
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    return state


def data_workers(asked: int, info: DistInfo) -> int:
    """DataLoader processes reading streamed images: data.workers, or (0) the cores this process
    has beside its own (at least one), shared with the other processes on the machine."""
    if asked:
        return asked
    return min(8, max(1, cores_per_process(info.world_size) - 1))


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


@dataclass(frozen=True)
class Schedule:
    """How many steps a run takes. `make_schedule` checks the batch size against the data and the
    processes before anything is written."""
    batch_size: int  # global, over all ranks
    batches_per_epoch: int
    total_steps: int
    epochs: int


def make_schedule(cfg: Config, num_samples: int, dist: DistInfo = DistInfo(), what: str | None = None) -> Schedule:
    t = cfg.train
    if t.batch_size % dist.world_size:
        raise ConfigError(f"train.batch_size={t.batch_size} is the global batch and must divide "
                          f"evenly between the {dist.world_size} processes")
    batches_per_epoch = num_samples // t.batch_size
    if batches_per_epoch == 0:
        raise DataError(f"{what or f'the dataset has {num_samples} samples'}: fewer than train.batch_size="
                        f"{t.batch_size}; lower the batch size (train.batch_size={max(1, num_samples)}) or add data")
    total = t.epochs * batches_per_epoch
    if t.max_steps:
        total = min(total, t.max_steps)
    if t.max_kimg:
        total = min(total, max(1, math.ceil(t.max_kimg * 1000 / t.batch_size)))
    return Schedule(t.batch_size, batches_per_epoch, total, t.epochs)


PACE_STEPS = 20  # steps timed for the budget line at the start of a fit


def _improves(better: str, value: float, best: float | None) -> bool:
    return best is None or (value < best if better == "lower" else value > best)


class Trainer:
    def __init__(self, cfg: Config, recipe, data, device: torch.device, schedule: Schedule, run: RunDir | None = None,
                 hooks=(), log=print, dist: DistInfo = DistInfo()):
        self.cfg, self.recipe, self.data, self.device, self.dist = cfg, recipe, data, device, dist
        self.schedule, self.run, self.hooks, self.log = schedule, run, list(hooks), log
        self.batches_per_epoch, self.total_steps = schedule.batches_per_epoch, schedule.total_steps
        self.step = 0
        self.elapsed_s = 0.0
        self.result: TrainResult | None = None
        self._labels = recipe.stat_labels()  # how the progress line names the statistics
        self._stop_signal = ""  # set by the signal handler of this process
        self._stop_agreed = False  # set at the same step on every rank (see _reduce)
        self._time_up = False  # train.max_minutes reached, agreed like _stop_agreed
        self._last_ckpt: Path | None = None
        self.stats: dict[str, float] = {}  # the last step's statistics, for the hooks
        # keep_best and on_collapse (see the module docstring)
        self.best: dict | None = None  # {"name", "value", "step"}
        self._best_state: dict | None = None  # the recipe's state at the best step, on every rank
        self._new_best: float | None = None  # reported this step, not yet acted on
        self._pending_alarms: list[str] = []  # raised this step, not yet acted on
        self.alarms: list[tuple[int, str]] = []
        self.rollbacks: list[tuple[int, int]] = []
        self._stopped_for = ""
        self.measured: dict[str, dict] = {}  # see TrainResult.measured
        self._bar = None  # the progress bar while fit runs, for `say`

    # --- checkpoint state --------------------------------------------------------------------
    def state_dict(self, ranks: dict | None = None) -> dict:
        """The checkpoint's payload; `ranks`: every rank's own state, from `_rank_state` (a
        collective, which every rank calls at the same step)."""
        return {"config": to_dict(self.cfg), "step": self.step, "elapsed_s": self.elapsed_s,
                "recipe": self.recipe.state_dict(), "rng": rng.rng_state(), **({"ranks": ranks} if ranks else {}),
                "hooks": {_hook_name(h): h.state_dict() for h in self.hooks if hasattr(h, "state_dict")},
                "watch": {"best": self.best, "alarms": [list(a) for a in self.alarms],
                          "rollbacks": [list(r) for r in self.rollbacks]}}

    def load_state_dict(self, ckpt: dict) -> None:
        try:
            self.recipe.load_state_dict(ckpt["recipe"])
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"the checkpoint does not fit this model or ganforge version "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
        self.step, self.elapsed_s = int(ckpt["step"]), float(ckpt["elapsed_s"])
        for h in self.hooks:
            if hasattr(h, "load_state_dict") and _hook_name(h) in ckpt["hooks"]:
                h.load_state_dict(ckpt["hooks"][_hook_name(h)])
        rng.set_rng_state(ckpt["rng"])
        self._load_rank_state(ckpt.get("ranks"))
        watch = ckpt.get("watch", {})  # absent in checkpoints written before keep_best and on_collapse existed
        best = watch.get("best")
        self.best = best if best and best.get("name") == self.cfg.train.keep_best else None
        self.alarms = [(int(s), str(r)) for s, r in watch.get("alarms", [])]
        self.rollbacks = [(int(a), int(b)) for a, b in watch.get("rollbacks", [])]

    def _rank_state(self) -> dict | None:
        """Every rank's random stream and buffers (batch-norm statistics stay per rank), as rows in
        rank order: what rank 0's own state does not hold. Collected from every rank with
        all_gather (tensors, nothing pickled); rank 0 writes them."""
        if not self.dist.enabled:
            return None
        buffers = self.recipe.rank_local_buffers()
        local = {"torch_rng": torch.get_rng_state(),
                 "buffers": torch.cat([b.detach().flatten().double() for b in buffers]) if buffers
                 else torch.zeros(0, dtype=torch.float64)}
        if self.device.type == "cuda":
            local["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return {"world_size": self.dist.world_size,
                **{k: gather_rows(v.to(self.device), self.dist).cpu() for k, v in local.items()}}

    def _load_rank_state(self, ranks: dict | None) -> None:
        """Each rank takes back its own row; a checkpoint of another world size (or of one process,
        or written before ranks were kept) gives every rank other than 0 a fresh stream from the
        step, and rank 0's buffers."""
        if not self.dist.enabled:
            return
        if not ranks or int(ranks["world_size"]) != self.dist.world_size:
            seed_rank_stream(self.cfg.train.seed, self.dist, self.step)
            return
        r, buffers = self.dist.rank, self.recipe.rank_local_buffers()
        row = ranks["buffers"][r]
        if row.numel() != sum(b.numel() for b in buffers):
            raise CheckpointError(f"the checkpoint's per-process buffers ({row.numel()} numbers) do not fit this "
                                  f"model's ({sum(b.numel() for b in buffers)}): resume with the settings it was "
                                  "trained with (e.g. the same train.ema_halflife_kimg)")
        if self.device.type == "cuda":
            if "cuda_rng" in ranks:
                torch.cuda.set_rng_state(ranks["cuda_rng"][r].clone(), self.device)
            else:  # written on a CPU: the CUDA stream starts fresh (the CPU stream is set below)
                seed_rank_stream(self.cfg.train.seed, self.dist, self.step)
        torch.set_rng_state(ranks["torch_rng"][r].clone())  # a row of the stack is refused as a view
        at = 0
        with torch.no_grad():
            for b in buffers:
                b.copy_(row[at:at + b.numel()].view_as(b))
                at += b.numel()

    def save_checkpoint(self) -> Path | None:
        ranks = self._rank_state()  # on every rank: a collective
        if self.run is None:
            return None
        self._last_ckpt = self.run.save_checkpoint(self.step, self.state_dict(ranks), self.cfg.log.ckpt_keep)
        return self._last_ckpt

    # --- stats ---------------------------------------------------------------------------------
    def _write_stats(self, meter: _Meter, t_window: float, n_window: int) -> None:
        means = meter.pop()
        if self.run is not None:
            self.run.append("stats.jsonl", {
                "step": self.step, "epoch": self.step / self.batches_per_epoch, **means,
                "time_s": round(self.elapsed_s, 3), "samples_per_s": round(n_window / max(t_window, 1e-9), 1)})

    def _fire(self, event: str) -> None:
        """Hooks watch; they never steer. Each runs with the global random streams saved and restored,
        so sampling, metrics or pictures cannot change what training draws next."""
        for h in self.hooks:
            if hasattr(h, event):
                with rng.isolated_rng():
                    getattr(h, event)(self)

    # --- the loop ------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._stop_signal = signal.Signals(signum).name

    def _due(self, every: int, epoch_end: bool) -> bool:
        return self.step % every == 0 if every else epoch_end

    def fit(self, resume: dict | None = None, best: dict | None = None) -> TrainResult:
        """Train to the end of the schedule. `resume`: a checkpoint to continue from; `best`: the
        run's ckpt/best.pt, the state a rollback returns to."""
        cfg, B = self.cfg, self.cfg.train.batch_size
        t_fit = time.perf_counter()
        if resume is not None:
            self.load_state_dict(resume)
            if self.run is not None:
                self.run.truncate("stats.jsonl", self.step)
        if best is not None and self.best is not None and int(best["step"]) == self.best["step"]:
            self._best_state = _cpu_copy(best["recipe"])
        old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        bar = self._bar = self._progress_bar()
        meter, last = _Meter(), {}
        pace_from = None  # (step, elapsed_s) where the pace for the budget line is measured from
        self._fire("on_start")
        feed = self.data.feed(self._plan(), self.device, data_workers(cfg.data.workers, self.dist) if self.data.streamed else 0)
        epoch_set = -1
        t_window, n_window = time.perf_counter(), 0
        try:
            while self.step < self.total_steps and not self._stop_agreed and not self._time_up:
                t0 = time.perf_counter()
                epoch = self.step // self.batches_per_epoch
                if epoch != epoch_set:
                    self.recipe.set_epoch(epoch)
                    epoch_set = epoch
                step, batch = next(feed)
                assert step == self.step, f"the data feed is at step {step}, training at {self.step}"
                stats = self._reduce(self.recipe.train_step(batch))
                if not all(math.isfinite(v) for v in stats.values()):
                    self._diverged(stats)
                self.step += 1
                n_window += B
                self.elapsed_s += time.perf_counter() - t0
                meter.add(stats)
                last.update(stats)
                self.stats = stats
                epoch_end = self.step % self.batches_per_epoch == 0
                if self.step % cfg.log.stats_every_steps == 0:
                    self._write_stats(meter, time.perf_counter() - t_window, n_window)
                    t_window, n_window = time.perf_counter(), 0
                self._fire("on_step")
                self._act_on_reports(bar)
                if self._due(cfg.log.sample_every_steps, epoch_end):
                    self._fire("on_sample")
                if self._due(cfg.log.ckpt_every_steps, epoch_end) and self.step < self.total_steps:
                    self.save_checkpoint()
                if epoch_end:
                    self._fire("on_epoch_end")
                self._update_bar(bar, epoch, last)
                if pace_from is None:  # the first step of a fit is slow (allocation, warm-up): start after it
                    pace_from = (self.step, self.elapsed_s)
                elif self.step - pace_from[0] == PACE_STEPS:
                    self._tell_budget(pace_from, bar)
                if self._time_up:
                    self._say(f"step {self.step}: train.max_minutes={cfg.train.max_minutes:g} of training "
                              f"time reached ({self.elapsed_s:.0f} s); stopping", bar)
        finally:
            feed.close()  # stops streaming workers reading ahead
            if bar is not None:
                bar.close()
            self._bar = None
            for s, h in old_handlers.items():
                signal.signal(s, h)
        if meter.sums:
            self._write_stats(meter, time.perf_counter() - t_window, n_window)
        if not self._stop_signal:
            self._fire("on_sample")  # the final samples, whatever the schedule
        ckpt = self.save_checkpoint()
        best = {**self.best, "path": self.run / "ckpt" / "best.pt" if self.run else None} if self.best else None
        result = TrainResult(self.step, self.elapsed_s, time.perf_counter() - t_fit, last, self._stop_signal, ckpt, self._stopped_for, best,
                             list(self.alarms), list(self.rollbacks), dict(self.measured))
        self.result = result
        self._fire("on_end")
        return result

    def _plan(self):
        """(step, this rank's indices) for every step from the current one to the end: each epoch's
        order comes from (seed, epoch), so the plan is a function of the step alone."""
        B, order_epoch, order = self.cfg.train.batch_size, -1, None
        for step in range(self.step, self.total_steps):
            epoch, i = divmod(step, self.batches_per_epoch)
            if epoch != order_epoch:
                order, order_epoch = epoch_order(len(self.data), self.cfg.train.seed, epoch), epoch
            yield step, order[i * B:(i + 1) * B][self.dist.rank::self.dist.world_size]  # this rank's share

    # --- what the hooks report: keep_best and on_collapse --------------------------------------
    def observe(self, values: dict, better: dict[str, str]) -> None:
        """Numbers a hook measured at this step, and which way ("lower" | "higher") is better for
        each; the one named by train.keep_best is kept when it improves."""
        for key, v in values.items():
            if key in better and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.measured[key] = {"value": float(v), "step": self.step, "better": better[key]}
        name = self.cfg.train.keep_best
        value = values.get(name) if name else None
        if isinstance(value, (int, float)) and _improves(better[name], value, self.best["value"] if self.best else None):
            self._new_best = float(value)

    def alarm(self, reason: str) -> None:
        """A hook saw a collapse or a winning D at this step; train.on_collapse says what follows."""
        self._pending_alarms.append(reason)

    def _act_on_reports(self, bar) -> None:
        """After this step's hooks: keep a new best, then answer the alarms (the same on every rank)."""
        new_best, alarms = self._new_best, self._pending_alarms
        self._new_best, self._pending_alarms = None, []
        if self.dist.enabled and self._decision_step():
            flags = all_reduce_max(torch.tensor([new_best is not None, bool(alarms)], dtype=torch.float32,
                                                device=self.device), self.dist).tolist()
            if flags[1] and not alarms:
                alarms = ["an alarm on another process"]
            if flags[0] and new_best is None:
                new_best = float("nan")  # rank 0 measured it; this rank only keeps the state
        if new_best is not None:
            self._keep_best(new_best)
        if alarms:
            self._answer_alarms(alarms, bar)

    def _decision_step(self) -> bool:
        """Steps at which a hook may report (each says how often with `reports_every`): every rank
        must enter the agreement below at the same steps."""
        return any(every and self.step % every == 0 for every in (getattr(h, "reports_every", 0) for h in self.hooks))

    def _keep_best(self, value: float) -> None:
        self.best = {"name": self.cfg.train.keep_best, "value": value, "step": self.step}
        self._best_state = _cpu_copy(self.recipe.state_dict())
        ranks = self._rank_state()  # on every rank: a collective
        if self.run is not None:
            checkpoint.save(self.run / "ckpt" / "best.pt", self.state_dict(ranks))
            self.run.log(f"best {self.best['name']}={value:.6g} at step {self.step}: ckpt/best.pt")

    def _answer_alarms(self, alarms: list[str], bar) -> None:
        policy = self.cfg.train.on_collapse
        for reason in alarms:
            self.alarms.append((self.step, reason))
        what = "; ".join(alarms)
        if policy == "rollback" and self._best_state is not None and len(self.rollbacks) < self.cfg.health.max_rollbacks:
            self.recipe.load_state_dict(_cpu_copy(self._best_state))
            self.rollbacks.append((self.step, self.best["step"]))
            for h in self.hooks:
                if hasattr(h, "on_rollback"):
                    h.on_rollback(self)
            self._say(f"step {self.step}: {what} -> rolled back to the weights of step {self.best['step']} "
                      f"(best {self.best['name']}); training continues from step {self.step} with fresh batches "
                      f"(rollback {len(self.rollbacks)} of at most {self.cfg.health.max_rollbacks})", bar)
        elif policy in ("stop", "rollback"):
            why = ("train.on_collapse=stop" if policy == "stop" else
                   "no best checkpoint yet to roll back to" if self._best_state is None else
                   f"health.max_rollbacks={self.cfg.health.max_rollbacks} reached")
            self._stopped_for = f"{what} (step {self.step})"
            self._stop_agreed = True
            self._say(f"step {self.step}: {what} -> stopping ({why})", bar)
        else:
            self._say(f"step {self.step}: {what} (train.on_collapse=warn: training goes on)", bar)

    def say(self, message: str) -> None:
        """What a hook has to tell the person watching (the watch's findings)."""
        self._say(message, self._bar)

    def _tell_budget(self, pace_from: tuple[int, float], bar) -> None:
        """After the first steps of this fit: what the budget (train.max_minutes / max_kimg) buys on
        this machine, at the pace of those steps."""
        t = self.cfg.train
        per_step = (self.elapsed_s - pace_from[1]) / (self.step - pace_from[0])
        ends = {f"train.epochs={t.epochs}": t.epochs * self.batches_per_epoch}  # the step each limit ends at
        if t.max_steps:
            ends[f"train.max_steps={t.max_steps}"] = t.max_steps
        if t.max_kimg:
            ends[f"train.max_kimg={t.max_kimg:g}"] = max(1, math.ceil(t.max_kimg * 1000 / t.batch_size))
        if t.max_minutes:
            ends[f"train.max_minutes={t.max_minutes:g}"] = self.step + int((t.max_minutes * 60 - self.elapsed_s) / per_step)
        why, end = min(ends.items(), key=lambda item: item[1])
        minutes = max(end - self.step, 0) * per_step / 60
        self._say(f"budget: {per_step:.3f} s a step on this machine, so {why} ends near step {end:,} "
                  f"({end * t.batch_size / 1000:,.0f} kimg), about {minutes:.0f} more minute(s) of training", bar)
        if bar is not None and bar.total is None:
            bar.total = end  # an estimate: the time budget, not this number, ends the run

    def _say(self, message: str, bar) -> None:
        """A message for the person watching (above the progress bar) and for the run's log."""
        if self.run is not None:
            self.run.log(message)
        if bar is not None:
            bar.write(message)
        else:
            self.log(message)

    def _reduce(self, stats: dict[str, torch.Tensor]) -> dict[str, float]:
        """Step statistics as floats, averaged over ranks; the stop flag travels along, so a signal
        on any rank stops every rank after the same step."""
        budget_s = self.cfg.train.max_minutes * 60
        time_up = bool(budget_s) and self.elapsed_s >= budget_s  # the time before this step
        if not self.dist.enabled:
            self._stop_agreed, self._time_up = bool(self._stop_signal), time_up
            return {k: v.item() for k, v in stats.items()}
        keys = list(stats)  # the same order on every rank: the same code made the dict
        flags = [torch.tensor(float(f), device=self.device) for f in (bool(self._stop_signal), time_up)]
        packed = all_reduce_mean(torch.stack([stats[k].float() for k in keys] + flags), self.dist).tolist()
        self._stop_agreed, self._time_up = packed[-2] > 0, packed[-1] > 0  # any rank's clock stops all
        if self._stop_agreed and not self._stop_signal:
            self._stop_signal = "SIGTERM"  # another rank was signalled
        return dict(zip(keys, packed[:-2]))

    def _diverged(self, stats: dict) -> None:
        values = ", ".join(f"{k}={v:.4g}" for k, v in stats.items())
        kept = f"the last good checkpoint is {self._last_ckpt}" if self._last_ckpt else "no checkpoint was written yet"
        raise TrainingDiverged(f"training diverged at step {self.step + 1}: {values} is not finite; {kept}. "
                               "Lower the learning rates (optim.lr_*) or check the data.")

    # --- progress --------------------------------------------------------------------------------
    def _progress_bar(self):
        if not self.cfg.log.progress:
            return None
        from tqdm import tqdm

        # under a time budget the last step is not known until the budget line estimates it
        total = None if self.cfg.train.max_minutes else self.total_steps
        return tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, leave=True)

    def _epoch_label(self, epoch: int) -> str:
        """"epoch 3/25" where the epochs end the run, "epoch 3" where another budget does."""
        limit = self.total_steps == self.cfg.train.epochs * self.batches_per_epoch and not self.cfg.train.max_minutes
        return f"epoch {epoch + 1}" + (f"/{self.cfg.train.epochs}" if limit else "")

    def _update_bar(self, bar, epoch: int, last: dict) -> None:
        if bar is None:
            if self.step % self.batches_per_epoch == 0:
                self.log(f"{self._epoch_label(epoch)} step {self.step} " + self._fmt_stats(last))
            return
        bar.update(1)
        if self.step % 10 == 0 or self.step == self.total_steps:
            bar.set_description(self._epoch_label(epoch), refresh=False)
            bar.set_postfix_str(self._fmt_stats(last), refresh=False)

    def _fmt_stats(self, s: dict) -> str:
        return " ".join(f"{self._labels.get(k, k)}={v:.3f}" for k, v in s.items())

