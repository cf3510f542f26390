"""PacGAN Table 1 (Lin et al. 2018, 2-D mixtures, the VEEGAN setup) reproduced with ganforge.

    GANFORGE_DATA=DATA_DIR python -m bench.pacgan_table --trials 10 --steps 8000 \
        --datasets ring,grid --recipes gan,pac2,pac3,pac4,wgan_gp --out bench/out/pacgan_table.json

(the command of the reported run, with defaults --width 64 --packs 100 --lr 1e-4 --beta1 0.8
--threads 1; 100 trials in 2,604 s on one core: docs/results_pacgan.md).

Protocol, as in the paper and its code (fjxmlzn/PacGAN, synthetic_data_experiments):
- data: ring of 8 Gaussians (radius 1, std 0.01) and grid of 25 Gaussians (centres {-4,-2,0,2,4}^2,
  std 0.05), 100,000 training points each (ganforge's configs/toy_ring.yaml, configs/toy_grid.yaml);
- after training, 2,500 samples; a sample is high quality when within 3 std of its nearest mode, a
  mode is captured when at least one high-quality sample is nearest to it, reverse KL is
  KL(q || uniform) of the samples' nearest-mode histogram (ganforge.metrics.modes.toy_modes);
- 10 trials (train.seed = trial, samples drawn with seed = trial), mean +- standard error;
- the reference optimiser: Adam, lr 1e-4, beta1 0.8 (beta2 0.999), 2-D normal z, the non-saturating
  loss (the code's softplus losses), 100 packs of `pack` samples per step (batch_size = 100 * pack,
  as the reference draws `pack` independent batches of 100 and concatenates them feature-wise).

Deviations (the budget is one core of a shared 2-core CPU for the whole table):
- training length: the reference trains 400 epochs of 100,000 points at 100 per step, i.e. 400,000
  steps per trial; here every trial runs --steps D updates (a few thousand), two orders of magnitude
  fewer. This is the deviation that matters most for "% high quality" (std 0.01 on the ring).
- nets: the reference G is 4 x 400 ReLU layers with batch norm, D 3 x (200 units, 5-piece maxout).
  ganforge's MLP family is used instead (G z -> w -> 2w -> 4w -> 2, D 4w -> 2w -> w -> 1, LeakyReLU
  0.2, no batch norm, no maxout) with --width w; ganforge's maxout D (goodfellow2014) is for images.
- float32 is forced (train.precision=fp32, the reference's precision): `auto` picks bf16 on AMX
  CPUs, whose 8-bit mantissa rounds a coordinate near 1 to steps of 0.004-0.008 during training, a
  sizable fraction of the ring's 0.03 radius of "high quality" (not measured here).
- train.max_steps is only a cap (train.epochs still ends a run), so epochs are set out of the way;
  each trial's JSON records the steps it really ran.
- WGAN-GP is not in the paper's table; it is run as configs/toy_ring_wgan_gp.yaml sets it (the
  WGAN-GP authors' toy settings: lambda 0.1, 5 critic updates per G update, Adam 1e-4 with betas
  (0.5, 0.9), batch 100 here), with the same number of D updates as the other rows, hence 1/5 of their
  G updates.

Prints a Markdown table (measured rows beside the published ones) and writes every trial to --out.
Trials run one after another with one thread: the machine is shared.
"""

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import CONFIGS, machine, mean_se, parser, run_script, table_head
from ganforge import api, config
from ganforge.data import toy_centres, toy_std
from ganforge.metrics.modes import toy_modes

TOY_CONFIGS = {"ring": "toy_ring.yaml", "grid": "toy_grid.yaml"}

# Lin et al. 2018, Table 1: (modes mean, s.e.), (high-quality %), (reverse KL mean, s.e.).
PUBLISHED = {
    ("ring", "gan"): ((6.3, 0.5), 98.2, (0.45, 0.09)),
    ("ring", "pac2"): ((7.9, 0.1), 95.6, (0.07, 0.03)),
    ("ring", "pac3"): ((7.8, 0.1), 97.7, (0.10, 0.02)),
    ("ring", "pac4"): ((7.8, 0.1), 95.9, (0.07, 0.02)),
    ("grid", "gan"): ((17.3, 0.8), 94.8, (0.70, 0.07)),
    ("grid", "pac2"): ((23.8, 0.7), 91.3, (0.13, 0.04)),
    ("grid", "pac3"): ((24.6, 0.4), 94.2, (0.06, 0.02)),
    ("grid", "pac4"): ((24.8, 0.2), 93.6, (0.04, 0.01)),
}

LABELS = {"gan": "GAN", "pac2": "PacGAN2", "pac3": "PacGAN3", "pac4": "PacGAN4", "wgan_gp": "WGAN-GP"}


def recipe_overrides(recipe: str, packs: int, lr: float, beta1: float) -> list[str]:
    """Config overrides of one table row. The packed rows keep `packs` judgements of D per step
    (the reference's batch of 100 packs), so G makes packs * pack samples a step."""
    if recipe == "wgan_gp":
        # configs/toy_ring_wgan_gp.yaml's loss and optimiser, on either dataset
        return ["loss.kind=wasserstein", "loss.gp_weight=0.1", "train.n_dis=5", "train.reuse_fake=false",
                "optim.lr_G=1e-4", "optim.lr_D=1e-4", "optim.betas=[0.5,0.9]", f"train.batch_size={packs}"]
    pack = 1 if recipe == "gan" else int(recipe.removeprefix("pac"))
    return ["loss.kind=ns", f"train.pack={pack}", f"train.batch_size={packs * pack}",
            f"optim.lr_G={lr}", f"optim.lr_D={lr}", f"optim.betas=[{beta1},0.999]"]


def run_trial(dataset: str, recipe: str, seed: int, args) -> dict:
    """Train one (dataset, recipe, seed) in a throw-away run folder and score 2,500 samples."""
    tmp = tempfile.mkdtemp(prefix="pacgan-")
    try:
        cfg = config.load(CONFIGS / TOY_CONFIGS[dataset], [
            *recipe_overrides(recipe, args.packs, args.lr, args.beta1), *args.set,
            f"train.seed={seed}", f"train.max_steps={args.steps}", "train.epochs=100000",  # max_steps decides
            f"model.width={args.width}", "model.z_dim=2", "model.d_dropout=0.0",
            "train.precision=fp32", "train.device=cpu", f"run.dir={tmp}",
            # nothing but training: no pictures, in-training metrics, health checks or report
            "log.progress=false", "log.report=false", "log.sample_every_steps=1000000000",
            "log.stats_every_steps=1000", "eval.every_steps=0", "health.every_steps=0"])
        t0 = time.perf_counter()
        run_dir, result = api.train(cfg, log=lambda s: None)
        train_s = time.perf_counter() - t0
        x = api.load_generator(run_dir).sample(args.num_samples, seed=seed)
        r = toy_modes(x, toy_centres(cfg.data), toy_std(cfg.data))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"dataset": dataset, "recipe": recipe, "seed": seed, "steps": result.step,
            "g_updates": result.step // cfg.train.n_dis, "batch_size": cfg.train.batch_size,
            "pack": cfg.train.pack, "train_s": train_s, "modes_captured": r["modes_captured"],
            "num_modes": r["num_modes"], "high_quality": r["high_quality_fraction"], "reverse_kl": r["reverse_kl"],
            "histogram": r["histogram"]}


def summarise(trials: list[dict], dataset: str, recipe: str) -> dict | None:
    rows = [t for t in trials if t["dataset"] == dataset and t["recipe"] == recipe]
    if not rows:
        return None
    modes, hq, kl = (mean_se([t[k] for t in rows]) for k in ("modes_captured", "high_quality", "reverse_kl"))
    full = sum(t["modes_captured"] == t["num_modes"] for t in rows)
    return {"modes": modes, "hq": hq, "kl": kl, "all_modes_trials": full, "trials": len(rows),
            "hq95_all_modes_trials": sum(t["modes_captured"] == t["num_modes"] and t["high_quality"] >= 0.95
                                         for t in rows),
            "g_updates": rows[0]["g_updates"], "train_s": statistics.fmean(t["train_s"] for t in rows)}


def table(trials: list[dict], datasets: list[str], recipes: list[str]) -> str:
    lines = [table_head("data", "recipe", "modes (ganforge)", "modes (paper)", "high quality (ganforge)",
                        "high quality (paper)", "reverse KL (ganforge)", "reverse KL (paper)",
                        "trials with all modes / all modes and >= 95 % HQ", "G updates", "s per trial")]
    for dataset in datasets:
        for recipe in recipes:
            s = summarise(trials, dataset, recipe)
            if s is None:
                continue
            pub = PUBLISHED.get((dataset, recipe))
            p_modes, p_hq, p_kl = ((f"{pub[0][0]} +- {pub[0][1]}", f"{pub[1]} %", f"{pub[2][0]:.2f} +- {pub[2][1]:.2f}")
                                   if pub else ("-", "-", "-"))
            lines.append(
                f"| {dataset} | {LABELS[recipe]} | {s['modes'][0]:.1f} +- {s['modes'][1]:.1f} | {p_modes} | "
                f"{100 * s['hq'][0]:.1f} +- {100 * s['hq'][1]:.1f} % | {p_hq} | "
                f"{s['kl'][0]:.2f} +- {s['kl'][1]:.2f} | {p_kl} | "
                f"{s['all_modes_trials']}/{s['trials']} / {s['hq95_all_modes_trials']}/{s['trials']} | "
                f"{s['g_updates']:,} | {s['train_s']:.0f} |")
    return "\n".join(lines)


def run(args, ap) -> None:
    torch.set_num_threads(args.threads)
    datasets, recipes = args.datasets.split(","), args.recipes.split(",")
    for r in recipes:
        if r not in LABELS:
            ap.error(f"unknown recipe {r!r}: choose from {', '.join(LABELS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    trials, t_start = [], time.perf_counter()

    def save():  # after every trial, so an interrupted run keeps what it finished
        out.write_text(json.dumps({"args": vars(args), "command": " ".join(sys.argv), "trials": trials,
                                   "wall_s": time.perf_counter() - t_start, **machine()}, indent=1))

    # Seeds outermost: a shortened run still has every row, with fewer trials each.
    for seed in range(args.trials):
        for dataset in datasets:
            for recipe in recipes:
                t = run_trial(dataset, recipe, seed, args)
                trials.append(t)
                save()
                print(f"[{time.perf_counter() - t_start:7.0f} s] {dataset} {recipe} seed {seed}: "
                      f"{t['modes_captured']}/{t['num_modes']} modes, {100 * t['high_quality']:.1f} % HQ, "
                      f"rev KL {t['reverse_kl']:.3f} ({t['train_s']:.0f} s)", flush=True)
    print()
    print(table(trials, datasets, recipes))
    print(f"\nwall time {time.perf_counter() - t_start:.0f} s for {len(trials)} trials; trials written to {out}")


def smoke(tmp: Path) -> list[str]:
    return ["--trials", "1", "--steps", "5", "--datasets", "ring", "--recipes", "gan,wgan_gp", "--num-samples", "200",
            "--out", str(tmp / "pacgan_table.json")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--steps", type=int, default=2000, help="D updates per trial (the reference: 400,000)")
    ap.add_argument("--datasets", default="ring,grid")
    ap.add_argument("--recipes", default="gan,pac2,pac3,pac4,wgan_gp")
    ap.add_argument("--width", type=int, default=64, help="MLP width w (G w-2w-4w, D 4w-2w-w)")
    ap.add_argument("--packs", type=int, default=100, help="D judgements per step (the reference's batch 100)")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam lr of GAN / PacGAN (the reference's 1e-4)")
    ap.add_argument("--beta1", type=float, default=0.8, help="Adam beta1 of GAN / PacGAN (the reference's 0.8)")
    ap.add_argument("--num-samples", type=int, default=2500)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="config overrides for every row, e.g. train.ema_halflife_kimg=10 (an EMA of G is sampled)")
    ap.add_argument("--out", default="bench/out/pacgan_table.json")
    run_script(ap, lambda args: run(args, ap), smoke)


if __name__ == "__main__":
    main()
