"""The watch: says, while a run goes, when it is not learning, and what to try.

Every `health.watch_every` steps (100 by default, whatever the health checks' schedule, so a
run of a few hundred steps is watched too) it looks at three things:

- D winning outright: D's accuracy (the `D_acc` statistic) averaged over the steps since the
  last look reaches `health.watch_d_acc` twice in a row. G may get little gradient to learn from;
  on a small folder the usual cause is D memorising the reals. It is not always fatal: on a real
  emoji folder the DCGAN kept improving for 30 minutes with D at 98 % (docs/RESULTS.md), so the
  advice says to look at the samples before changing anything.
- samples that stopped changing: G's images from fixed latents move, on average, by less than
  STILL of the real images' typical distance from each other, twice in a row (a learning rate of
  0, a G whose outputs saturate, a dead ReLU net).
- samples that all look alike: their spread (mean distance between two of them) falls below
  ALIKE of the reals' spread and below half the largest spread seen so far in the run (mode
  collapse; a young G whose samples start out alike is not reported).

Each finding is said once, when it starts (again if it clears and comes back), above the progress
bar and in log.txt, and written to watch.jsonl for the report. It is advice: the watch never
stops or steers a run (the health checks' alarms and train.on_collapse do that).
"""

from __future__ import annotations

import torch

from ganforge.config import Config
from ganforge.data import Dataset
from ganforge.engine.run import RunDir

NUM_SAMPLES = 32  # fixed latents the watch draws at each look
STILL = 0.005  # samples moving less than this share of the reals' spread: not changing
ALIKE = 0.25  # samples spread less than this share of the reals' spread: alike
TWICE = 2  # looks in a row before D winning or still samples are said

ADVICE = {
    "d_wins": ("G can still improve while D wins (on a real emoji folder the DCGAN improved for 30 minutes at 98 %): "
               "look at the grids, and if they stop improving, try augmentation of what D sees (train.augment=color,"
               "translation,cutout, or adaptive with train.augment_p=0 train.ada_target=0.6) or a lower optim.lr_D"),
    "still": ("Check optim.lr_G (a tiny one barely moves G) and G's last statistics; if D also wins outright, G's gradient "
              "has vanished: augmentation or a lower optim.lr_D gives it back"),
    "alike": ("G may be collapsing: try train.pack=2 (PacGAN), augmentation, loss.r1_gamma, or keep the best "
              "checkpoint and roll back (train.keep_best=... train.on_collapse=rollback)"),
}


def spread(x: torch.Tensor) -> float:
    """Mean Euclidean distance between two different rows of x [N, ...]."""
    flat = x.float().flatten(1)
    n = flat.shape[0]
    d = torch.cdist(flat, flat)
    return float(d.sum() / max(n * (n - 1), 1))


class Watch:
    """On rank 0 only: it reads the statistics every rank agrees on and draws samples like the grids do."""

    name = "watch"

    def __init__(self, cfg: Config, data: Dataset, recipe, run: RunDir):
        self.every, self.d_acc_limit = cfg.health.watch_every, cfg.health.watch_d_acc
        self.data, self.recipe, self.run = data, recipe, run
        g = torch.Generator().manual_seed(cfg.train.seed + 2)  # not the training RNG
        self.inputs = recipe.fixed_inputs(NUM_SAMPLES, g)
        self.real_spread = 1.0
        self.previous: torch.Tensor | None = None
        self.acc_sum, self.acc_n = 0.0, 0
        self.streaks = {"d_wins": 0, "still": 0}
        self.max_spread = 0.0
        self.active: set[str] = set()  # findings said and not yet cleared

    def state_dict(self) -> dict:
        return {"acc_sum": self.acc_sum, "acc_n": self.acc_n, "streaks": dict(self.streaks),
                "max_spread": self.max_spread, "active": sorted(self.active)}

    def load_state_dict(self, state: dict) -> None:
        self.acc_sum, self.acc_n = float(state["acc_sum"]), int(state["acc_n"])
        self.streaks = {k: int(v) for k, v in state["streaks"].items()}
        self.max_spread, self.active = float(state["max_spread"]), set(state["active"])

    def on_start(self, trainer) -> None:
        self.run.truncate("watch.jsonl", trainer.step)
        self.real_spread = max(spread(self.data.samples(NUM_SAMPLES)), 1e-8)
        self.previous = self._samples()

    def on_rollback(self, trainer) -> None:
        self.acc_sum, self.acc_n, self.streaks = 0.0, 0, {k: 0 for k in self.streaks}
        self.previous = self._samples()

    def on_step(self, trainer) -> None:
        if "D_acc" in trainer.stats:
            self.acc_sum += trainer.stats["D_acc"]
            self.acc_n += 1
        if trainer.step % self.every == 0:
            for kind, message in self.look(trainer.step):
                trainer.say(f"step {trainer.step}: {message}")

    def _samples(self) -> torch.Tensor:
        return self.recipe.sample(self.inputs).detach().float().cpu()

    def look(self, step: int) -> list[tuple[str, str]]:
        """The findings that start at this step, as (kind, message with advice)."""
        found: dict[str, str] = {}
        if self.acc_n:
            acc = self.acc_sum / self.acc_n
            self.streaks["d_wins"] = self.streaks["d_wins"] + 1 if acc >= self.d_acc_limit else 0
            if self.streaks["d_wins"] >= TWICE:
                found["d_wins"] = (f"D is winning outright: it told real from generated {acc:.1%} of the time over the "
                                   f"last {self.acc_n} steps, and as often before")
        self.acc_sum, self.acc_n = 0.0, 0
        x = self._samples()
        moved = float((x - self.previous).flatten(1).norm(dim=1).mean()) / self.real_spread
        self.previous = x
        self.streaks["still"] = self.streaks["still"] + 1 if moved < STILL else 0
        if self.streaks["still"] >= TWICE:
            found["still"] = (f"the samples have stopped changing: from fixed latents they moved {moved:.2%} of the "
                              f"real images' spread over the last {self.every} steps")
        ratio = spread(x) / self.real_spread
        if ratio < ALIKE and ratio < 0.5 * self.max_spread:
            found["alike"] = (f"the samples all look alike: their spread is {ratio:.0%} of the real images' "
                              f"(it was {self.max_spread:.0%})")
        self.max_spread = max(self.max_spread, ratio)
        new = [(kind, f"{message}. {ADVICE[kind]}.") for kind, message in found.items()
               if kind not in self.active]
        self.active = set(found)
        for kind, message in new:
            self.run.append("watch.jsonl", {"step": step, "kind": kind, "message": message})
        return new
