"""Start-up time, peak memory and training speed of an image folder by where its decoded images
live (data.storage): decoded into memory by every run, decoded once into the folder cache and
mapped by later runs, or streamed from the files by DataLoader workers.

    python -m bench.folder_storage [--sizes 3786 50000] [--resolution 64] [--steps 30] [--out DIR]
                                   [--before-src CHECKOUT]

The folders are made by bench.make_icons (64 x 64 RGBA icons) under --work and kept there for the
next call. Every measurement runs in a fresh process, so its peak RSS is its own; the first cached
start finds an empty cache. Training speed: the DCGAN preset's nets at --resolution, batch --batch (64), on
the data as each storage gives it (the first step left out); streamed with data.workers=1.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CONFIGS, machine_line, parser, run_script, table_head, write_results

STARTS = (("memory", "memory"), ("cache, first run", "cache"), ("cache, later runs", "cache"), ("stream", "stream"))


def folder(work: Path, n: int) -> Path:
    root = work / f"icons{n}"
    if not (root / ".complete").is_file():
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "bench.make_icons", str(root), "--n", str(n)], check=True,
                       stdout=subprocess.DEVNULL)
        (root / ".complete").write_text("")  # not an image: the loader names it among the skipped files
    return root


def measure(*args: str, cache: Path, env: dict | None = None) -> dict:
    """One measurement in a fresh interpreter (this script's --measure mode)."""
    env = {**os.environ, "GANFORGE_FOLDER_CACHE": str(cache), **(env or {})}
    out = subprocess.run([sys.executable, "-m", "bench.folder_storage", "--measure", *args], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_here(kind: str, root: str, storage: str, resolution: str, steps: str, batch: str) -> None:
    """Print one JSON line: start-up (build the dataset) or training speed, and peak RSS."""
    import warnings

    from ganforge import api, validate
    from ganforge.data import build_dataset

    overrides = ["data.name=folder", f"data.root={root}", f"data.resolution={resolution}", "data.channels=3"]
    if storage != "before":  # "before": a ganforge from before data.storage, on PYTHONPATH
        overrides += [f"data.storage={storage}", "data.workers=1"]
    warnings.simplefilter("ignore")  # the marker file the bench leaves in each folder
    if kind == "start":
        cfg = validate.load(None, overrides)
        t0 = time.perf_counter()
        data = build_dataset(cfg.data, 0)
        row = {"seconds": time.perf_counter() - t0, "images": len(data)}
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            cfg = validate.load(CONFIGS / "fashion_dcgan.yaml", [*overrides, f"train.batch_size={batch}", f"train.max_steps={steps}",
                                                               "log.progress=false", "log.report=false", "eval.every_steps=0",
                                                               "log.sample_every_steps=0", "health.every_steps=0",
                                                               "health.watch_every=0", f"run.dir={tmp}"])
            _, result = api.train(cfg, log=lambda s: None)
        row = {"steps_per_s": result.step / result.train_time_s}
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(row))


def run(args) -> None:
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        root = folder(args.work, n)
        cache = args.work / f"cache{n}"
        shutil.rmtree(cache, ignore_errors=True)
        starts = ((("before: decoded into memory", "before"),) if args.before_src else ()) + STARTS
        for label, storage in starts:
            env = {"PYTHONPATH": str(args.before_src / "src")} if storage == "before" else None
            r = measure("start", str(root), storage, str(args.resolution), "0", "0", cache=cache, env=env)
            rows.append({"images": n, "storage": label, **r})
            print(f"{n} images, {label}: {r['seconds']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
        for storage in ("cache", "stream"):
            r = measure("train", str(root), storage, str(args.resolution), str(args.steps), str(args.batch), cache=cache)
            rows.append({"images": n, "storage": f"{storage}, training", **r})
            print(f"{n} images, training from {storage}: {r['steps_per_s']:.3f} steps/s", flush=True)
    lines = [f"Machine: {machine_line()}", "", table_head("images", "storage", "start-up s", "peak RSS MB", "steps/s")]
    for r in rows:
        start = f"{r['seconds']:.2f}" if "seconds" in r else ""
        speed = f"{r['steps_per_s']:.3f}" if "steps_per_s" in r else ""
        lines.append(f"| {r['images']:,} | {r['storage']} | {start} | {r['peak_rss_mb']:.0f} | {speed} |")
    write_results(args.out, "\n".join(lines), rows)


def smoke(tmp: Path) -> list[str]:
    return ["--sizes", "12", "--resolution", "32", "--steps", "2", "--batch", "4", "--work", str(tmp / "work")]


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        measure_here(*sys.argv[2:8])
        return
    ap = parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[3786, 50000])
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-folder-storage"))
    ap.add_argument("--out", type=Path, help="a folder for results.md and results.json")
    ap.add_argument("--before-src", type=Path, help="a checkout of an earlier ganforge (e.g. a git worktree) whose "
                                                    "start-up is measured first, for comparison")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
