"""Recipes for a folder of one's own images, compared at equal training time, with quality read at
several points of the same runs.

    # four arms on a folder at 32 px, each on one core, two side by side, measured at 10 and 30 minutes
    python -m bench.own_folder --minutes 10 30 --jobs 2 --runs bench/out/own_folder/twemoji \
        --feature-net featurenets/twemoji-cnn.json --num-samples 2000 \
        --arm dcgan configs/fashion_dcgan.yaml data.name=folder data.root=DIR data.resolution=32 data.channels=3 \
        --arm dcgan-diffaug configs/fashion_dcgan.yaml ... train.augment=color,translation,cutout

Each arm trains until the first `--minutes` mark of training time (steps only: evaluation, pictures
and checkpoints excluded), is evaluated (FID and precision / recall in the feature space of
`--feature-net`, a `ganforge featurenet train` net of the folder's own sub-folders), resumes to the
next mark, and so on: the 10-minute figure and the 30-minute one come from the same run. With
`--jobs 2` two arms run at once, each pinned to its own core with one thread, so the arms share
nothing but the memory bus; the table says so. At the end a sheet puts the arms' last sample grids
side by side (grids.png in --runs).

Training time read off a clock is only as fair as the machine is quiet. With `--pace-steps N` each
arm's cost of a step is measured first, all arms in a phase of their own under the conditions of
the runs (pinned the same way, N steps after a warm-up), and the marks become step counts:
`minutes * 60 / seconds a step`. The runs then reach the same steps however busy the machine is
while they train; only the pace phase needs it quiet. With `--pace-whole-machine` the paces are
measured one arm at a time on every core (torch's default threads), so "30 minutes" means 30
minutes of the whole machine, while the runs themselves may still go two at a time. `--raw-too` also evaluates an arm's trained
weights beside their moving average (the same run: an EMA does not change training), as a row of
its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CONFIGS, machine_line, parser, run_script, table_head
from ganforge import api, config
from ganforge.core.io import atomic_write_text

COLUMNS = [("fid", "value", "FID", "lower"), ("prdc", "precision", "precision", "higher"),
           ("prdc", "recall", "recall", "higher")]


PACE_WARMUP = 5  # steps before the pace is timed: the first ones pay for allocation and warm caches


def arm_config(arm: dict, *limits: str) -> config.Config:
    return config.load(arm["config"], [*arm["overrides"], f"train.seed={arm['seed']}", *limits,
                                       "train.epochs=1000000", "eval.every_steps=0", "log.progress=false",
                                       f"run.dir={arm['runs']}", f"run.name={arm['label']}"])


def measure_pace(arm: dict) -> None:
    """Seconds a training step costs this arm here: PACE_WARMUP steps, then `pace_steps` timed ones
    (training time only, as the trainer counts it), in a run of its own under runs/pace."""
    arm = {**arm, "runs": str(Path(arm["runs"]) / "pace")}
    warm, timed = PACE_WARMUP, arm["pace_steps"]
    run_dir, first = api.train(arm_config(arm, f"train.max_steps={warm}", "train.max_minutes=0",
                                          "log.sample_every_steps=0", "log.ckpt_every_steps=0"), log=lambda s: None)
    _, second = api.train(arm_config(arm, f"train.max_steps={warm + timed}", "train.max_minutes=0"),
                          resume=str(run_dir), log=lambda s: None)
    pace = (second.train_time_s - first.train_time_s) / timed
    print(json.dumps({"label": arm["label"], "pace_s": round(pace, 4), "timed_steps": timed}), flush=True)


def train_arm(arm: dict) -> list[dict]:
    """One arm, in this process: train to each mark in turn, evaluate after each."""
    rows = []
    run_dir = None
    for minutes in arm["minutes"]:
        if arm.get("pace_s"):
            limits = [f"train.max_steps={max(1, round(minutes * 60 / arm['pace_s']))}", "train.max_minutes=0"]
        else:
            limits = ["train.max_steps=0", f"train.max_minutes={minutes}"]
        cfg = arm_config(arm, *limits)
        run_dir, result = api.train(cfg, resume=str(run_dir) if run_dir else None, log=lambda s: None)
        if result.interrupted_by:
            raise SystemExit(f"{result.interrupted_by}: stopped during {arm['label']} ({run_dir})")
        row = {"label": arm["label"], "config": arm["config"], "overrides": arm["overrides"], "seed": arm["seed"],
               "minutes": minutes, "run": str(run_dir), "steps": result.step,
               "images_seen": result.step * cfg.train.batch_size, "train_time_s": round(result.train_time_s, 1),
               "threads": arm["threads"], "pace_s": arm.get("pace_s")}
        weights = [(arm["label"], True)] + ([(f"{arm['label']} (raw G)", False)] if arm.get("raw_too") else [])
        for label, average in weights:
            G = api.load_generator(run_dir, average=average)
            records = api.evaluate(G, ["fid", "prdc"], num_samples=arm["num_samples"], seed=1000 + arm["seed"],
                                   feature_net=arm["feature_net"] or None)
            scored = {**row, "label": label, "weights": "average" if average else "trained"}
            for metric, key, column, _ in COLUMNS:
                scored[column] = next(r[key] for r in records if r["metric"] == metric)
            scored["feature_space"] = next(r.get("feature_extractor") for r in records if r["metric"] == "fid")
            print(json.dumps(scored), flush=True)
            rows.append(scored)
    return rows


def launch(arm: dict, core: int | None, phase: str) -> subprocess.Popen:
    """An arm's phase ("pace" or "train") in a process of its own; pinned to one core with one
    thread when `core` is given. Its output lines go to LABEL.PHASE.jsonl in the arm's runs."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "bench.own_folder", "--arm-json", json.dumps({**arm, "phase": phase})]
    if core is not None:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = ["taskset", "-c", str(core), *cmd]
    out = open(log_path(arm, phase), "w")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])


def log_path(arm: dict, phase: str) -> Path:
    return Path(arm["runs"]) / (f"{arm['label']}.jsonl" if phase == "train" else f"{arm['label']}.{phase}.jsonl")


def run_all(arms: list[dict], jobs: int, phase: str = "train") -> None:
    """At most `jobs` arms at once, arm i on core i % jobs."""
    waiting, running = list(arms), {}
    while waiting or running:
        free = [c for c in range(jobs) if c not in running]
        while waiting and free:
            core = free.pop(0)
            arm = waiting.pop(0)
            running[core] = (arm, launch(arm, core if jobs > 1 else None, phase))
        time.sleep(2)
        for core, (arm, proc) in list(running.items()):
            if proc.poll() is not None:
                del running[core]
                if proc.returncode:
                    print(f"{arm['label']}: exit {proc.returncode}; see {log_path(arm, phase)}", flush=True)


def read_pace(arm: dict) -> float:
    path = log_path(arm, "pace")
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{arm['label']}: its pace was not measured; see {path}")
    return lines[-1]["pace_s"]


def collect(runs: Path, labels: list[str]) -> list[dict]:
    rows = []
    for label in labels:
        path = runs / f"{label}.jsonl"
        if path.is_file():
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return rows


def table(rows: list[dict]) -> str:
    head = ["arm", "minutes", "steps", "kimg", *(f"{c} ({d} is better)" for *_, c, d in COLUMNS)]
    lines = [table_head(*head)]
    for r in rows:
        lines.append("| " + " | ".join([r["label"], f"{r['minutes']:g}", str(r["steps"]), f"{r['images_seen'] / 1000:.0f}",
                                         *(f"{r[c]:.3f}" for _, _, c, _ in COLUMNS)]) + " |")
    return "\n".join(lines)


def grid_sheet(rows: list[dict], out: Path) -> None:
    """The arms' newest sample grids side by side, each under its label."""
    from PIL import Image, ImageDraw

    tiles = []
    for label in dict.fromkeys(r["label"] for r in rows):
        run = Path(next(r["run"] for r in rows if r["label"] == label))
        grids = sorted((run / "samples").glob("*.png"))
        if grids:
            tiles.append((label, Image.open(grids[-1]).convert("RGB")))
    if not tiles:
        return
    w, h = max(t.width for _, t in tiles), max(t.height for _, t in tiles)
    sheet = Image.new("RGB", (len(tiles) * (w + 8), h + 24), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        sheet.paste(tile, (i * (w + 8), 24))
        draw.text((i * (w + 8) + 4, 6), label, fill="black")
    sheet.save(out)


def run(args, ap) -> None:
    if args.arm_json:  # a child process: one arm's phase
        arm = json.loads(args.arm_json)
        measure_pace(arm) if arm["phase"] == "pace" else train_arm(arm)
        return
    if args.runs is None or not args.arm:
        ap.error("give --runs and at least one --arm LABEL CONFIG [KEY=VALUE ...]")
    args.runs.mkdir(parents=True, exist_ok=True)
    threads = 1 if args.jobs > 1 else None
    arms = [{"label": a[0], "config": a[1], "overrides": a[2:], "seed": args.seed, "minutes": sorted(args.minutes),
             "runs": str(args.runs), "num_samples": args.num_samples, "feature_net": args.feature_net,
             "threads": threads, "pace_steps": args.pace_steps, "raw_too": args.raw_too} for a in args.arm]
    if not args.table_only:
        if args.pace_steps:  # the whole machine: one arm at a time, unpinned
            run_all(arms, 1 if args.pace_whole_machine else args.jobs, "pace")
            for arm in arms:
                arm["pace_s"] = read_pace(arm)
        run_all(arms, args.jobs)
    rows = collect(args.runs, [a["label"] for a in arms])
    how = f"{args.jobs} arms at once, each pinned to one core with one thread" if args.jobs > 1 else "one arm at a time"
    if args.pace_steps:
        how += (f"; marks as step counts from each arm's measured pace ({args.pace_steps} steps"
                + (", every core, one arm at a time" if args.pace_whole_machine else ", as the arms run") + "): "
                + ", ".join(f"{a['label']} {read_pace(a):.3f} s" for a in arms))
    text = f"{machine_line()}; {how}\n\n" + table(rows) + "\n"
    atomic_write_text(args.runs / "results.md", text)
    (args.runs / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    grid_sheet(rows, args.runs / "grids.png")
    print(text)


def smoke(tmp: Path) -> list[str]:
    # the toy ring: FID and PRDC on the 2-D points, no feature network; one arm, two marks
    return ["--minutes", "0.002", "0.004", "--num-samples", "200", "--runs", str(tmp), "--jobs", "1",
            "--pace-steps", "3", "--raw-too",
            "--arm", "ring", str(CONFIGS / "toy_ring.yaml"), "health.every_steps=0", "log.report=false",
            "train.ema_halflife_kimg=0.1"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--arm", nargs="+", action="append", default=[], metavar="LABEL CONFIG [KEY=VALUE",
                    help="a labelled run: a config and overrides")
    ap.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0],
                    help="training-time marks at which each arm is evaluated")
    ap.add_argument("--jobs", type=int, default=1, help="arms at once, each pinned to one core (default 1)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pace-steps", type=int, default=0,
                    help="measure each arm's seconds a step over this many steps first, then train to step "
                         "counts (robust to a busy machine); 0: stop on the training-time clock")
    ap.add_argument("--pace-whole-machine", action="store_true",
                    help="measure the paces one arm at a time on every core (minutes of the whole machine)")
    ap.add_argument("--raw-too", action="store_true",
                    help="evaluate each arm's trained weights too, beside their moving average")
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--feature-net", default="", help="NAME.json of `ganforge featurenet train` (the folder's own)")
    ap.add_argument("--runs", type=Path, help="where the runs, results.md/.json and grids.png go")
    ap.add_argument("--table-only", action="store_true", help="only collect the arms' results already in --runs")
    ap.add_argument("--arm-json", help=argparse.SUPPRESS)  # a child process's arm
    run_script(ap, lambda args: run(args, ap), smoke)


if __name__ == "__main__":
    main()
