"""Presets trained for the same training time on this machine, then evaluated side by side.

    # StyleGAN2 against DCGAN on MNIST and Fashion-MNIST, 8 minutes each, two seeds
    GANFORGE_DATA=../shared/data python -m bench.equal_time --minutes 8 --seeds 0 1 \
        --pair configs/mnist_stylegan.yaml configs/mnist_dcgan.yaml \
        --pair configs/fashion_stylegan.yaml configs/fashion_dcgan.yaml --runs bench/out/equal_time

    # one preset with different settings ("arms"): LABEL CONFIG [KEY=VALUE ...]
    GANFORGE_DATA=../shared/data python -m bench.equal_time --minutes 5 --seeds 0 --runs bench/out/ada \
        --arm plain configs/fashion_stylegan.yaml data.max_images=2000 \
        --arm ada configs/fashion_stylegan.yaml data.max_images=2000 train.augment=translation,cutout \
              train.augment_p=0 train.ada_target=0.6

Each run stops at `train.max_minutes` of training time (steps only: evaluation, pictures and
checkpoints excluded), so a recipe with a slower step trains for fewer steps. The final generator
(the EMA of G where the preset keeps one) is then evaluated with `ganforge eval`'s metrics on
`--num-samples` samples in the dataset's domain feature space. The runs go one after another,
alternating between the two presets of a pair seed by seed, never side by side: they would share
the cores. Prints a Markdown table (mean and each seed) and writes everything to --runs/results.json.
"""

import json
import statistics
import time
from pathlib import Path

from bench.common import CONFIGS, parser, run_script, table_head
from ganforge import api, config

COLUMNS = [("fid", "value", "FID", "lower"), ("prdc", "precision", "precision", "higher"),
           ("prdc", "recall", "recall", "higher"), ("prdc", "density", "density", "higher"),
           ("prdc", "coverage", "coverage", "higher")]


def train_and_evaluate(label: str, config_path: str, overrides: list[str], seed: int, minutes: float, runs: Path,
                       num_samples: int) -> dict:
    cfg = config.load(config_path, [*overrides, f"train.seed={seed}", f"train.max_minutes={minutes}",
                                    "train.max_steps=0", "train.epochs=100000", "eval.every_steps=0",
                                    "log.progress=false", f"run.dir={runs}", f"run.name={label}-s{seed}"])
    t0 = time.perf_counter()
    run_dir, result = api.train(cfg, log=lambda s: None)
    if result.interrupted_by:  # the trainer turned Ctrl-C / SIGTERM into a clean stop: end the benchmark too
        raise SystemExit(f"{result.interrupted_by}: stopped during {label} seed {seed} ({run_dir}); "
                         "results so far are in results.json")
    wall = time.perf_counter() - t0
    records = api.evaluate(run_dir, ["fid", "prdc"], num_samples=num_samples, seed=1000 + seed)
    row = {"label": label, "config": config_path, "overrides": overrides, "seed": seed, "run": str(run_dir), "steps": result.step,
           "train_time_s": round(result.wall_s, 1), "images_seen": result.step * cfg.train.batch_size,
           "wall_s": round(wall, 1)}
    for metric, key, column, _ in COLUMNS:
        row[column] = next(r[key] for r in records if r["metric"] == metric)
    row["feature_space"] = next(r.get("feature_extractor") for r in records if r["metric"] == "fid")
    print(json.dumps(row), flush=True)
    return row


def table(rows: list[dict]) -> str:
    head = ["run", "seeds", "steps", "kimg", *(f"{c} ({d} is better)" for *_, c, d in COLUMNS)]
    lines = [table_head(*head)]
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = sorted((r for r in rows if r["label"] == label), key=lambda r: r["seed"])
        cells = [label, " ".join(str(r["seed"]) for r in mine),
                 " / ".join(str(r["steps"]) for r in mine),
                 " / ".join(f"{r['images_seen'] / 1000:.0f}" for r in mine)]
        for *_, column, _ in COLUMNS:
            values = [r[column] for r in mine]
            each = " / ".join(f"{v:.3f}" for v in values)
            cells.append(f"{statistics.mean(values):.3f} ({each})" if len(values) > 1 else f"{values[0]:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args, ap) -> None:
    if args.table:
        print(table([row for path in args.table for row in json.loads(path.read_text())]))
        return
    if args.runs is None:
        ap.error("--runs is required")
    if any(len(arm) < 2 for arm in args.arm) or not (args.pair or args.arm):
        ap.error("give --pair CONFIG_A CONFIG_B or --arm LABEL CONFIG [KEY=VALUE ...]")
    groups = [[(Path(c).stem, c, []) for c in pair] for pair in args.pair]
    if args.arm:
        groups.append([(arm[0], arm[1], arm[2:]) for arm in args.arm])
    args.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for group in groups:
        for seed in args.seeds:  # seed by seed, the arms of a group in turn
            for label, cfg_path, overrides in group:
                rows.append(train_and_evaluate(label, cfg_path, overrides, seed, args.minutes, args.runs,
                                               args.num_samples))
                (args.runs / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))


def smoke(tmp: Path) -> list[str]:
    # the toy ring: its FID and PRDC are computed on the 2-D points, no feature network to run
    return ["--minutes", "0.005", "--seeds", "0", "--num-samples", "200", "--runs", str(tmp),
            "--arm", "ring", str(CONFIGS / "toy_ring.yaml"), "health.every_steps=0", "log.report=false"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("CONFIG_A", "CONFIG_B"),
                    help="two presets, as they are")
    ap.add_argument("--arm", nargs="+", action="append", default=[], metavar="LABEL CONFIG [KEY=VALUE",
                    help="a labelled run: a config and overrides; all arms form one group")
    ap.add_argument("--minutes", type=float, default=8.0, help="training time per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--runs", type=Path, help="where the runs and results.json go")
    ap.add_argument("--table", type=Path, nargs="+", metavar="RESULTS_JSON",
                    help="only print the table of earlier results.json files (rows in the order given)")
    run_script(ap, lambda args: run(args, ap), smoke)


if __name__ == "__main__":
    main()
