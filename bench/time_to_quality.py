"""Time to quality: training time until an in-training metric crosses a threshold, for several
settings and seeds, and the final value of each run (to tell whether the fast settings cost quality).

    # train the demo DCGAN twice per setting and compare fp32 with bf16 (+ channels_last)
    python -m bench.time_to_quality --config configs/demo.yaml --metric fid --threshold 8 \
        --variant fp32= --variant bf16=train.precision=bf16,train.channels_last=true --seeds 0 1

    # read a finished run instead (e.g. the paper preset, trained with eval.metrics=[parzen])
    python -m bench.time_to_quality --from-run runs/00001-mnist_goodfellow2014 --metric parzen --threshold 225

Times are `train_time_s` from metrics.jsonl: seconds spent in training steps up to that evaluation
(evaluation, pictures and checkpoints excluded, so settings compare fairly). Lower is better for
fid / kid, higher for parzen. The runs go one after another, never side by side: they would share
the cores.
"""

import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import CONFIGS, parser, run_script
from ganforge import api, config

HIGHER_IS_BETTER = {"parzen": True, "fid": False, "kid": False}


def crossing(rows: list[dict], metric: str, threshold: float) -> dict | None:
    """The first evaluation that reaches the threshold (step, train_time_s, value), or None."""
    better = HIGHER_IS_BETTER[metric]
    for row in rows:
        v = row.get(metric)
        if v is not None and (v >= threshold if better else v <= threshold):
            return {"step": row["step"], "train_time_s": row.get("train_time_s"), "value": v}
    return None


def summarise(rows: list[dict], metric: str, threshold: float) -> dict:
    values = [r[metric] for r in rows if metric in r]
    return {"crossed": crossing(rows, metric, threshold), "final": values[-1] if values else None,
            "best": (max if HIGHER_IS_BETTER[metric] else min)(values) if values else None,
            "evaluations": len(values), "train_time_s": rows[-1].get("train_time_s") if rows else None,
            "curve": [(r["step"], r.get("train_time_s"), r.get(metric)) for r in rows]}


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def train_variant(config_path: str, overrides: list[str], seed: int, metric: str, eval_every: int,
                  num_samples: int) -> tuple[list[dict], float]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.load(config_path, [*overrides, f"train.seed={seed}", f"eval.every_steps={eval_every}",
                                        f"eval.metrics=[{metric}]", f"eval.num_samples={num_samples}",
                                        "log.progress=false", f"run.dir={tmp}"])
        t0 = time.perf_counter()
        run_dir, _ = api.train(cfg, log=lambda s: None)
        wall = time.perf_counter() - t0
        return read_rows(run_dir), wall


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, overrides = text.partition("=")
    return name, [o for o in overrides.split(",") if o]


def run(args) -> None:
    report = {"metric": args.metric, "threshold": args.threshold, "runs": {}}
    for run_dir in args.from_run:
        report["runs"][str(run_dir)] = summarise(read_rows(run_dir), args.metric, args.threshold)
    for text in args.variant or ([] if args.from_run else ["preset="]):
        name, overrides = parse_variant(text)
        finals = []
        for seed in args.seeds:
            rows, wall = train_variant(args.config, overrides, seed, args.metric, args.eval_every, args.num_samples)
            s = summarise(rows, args.metric, args.threshold)
            s["wall_s"], s["overrides"] = round(wall, 1), overrides
            report["runs"][f"{name}/seed{seed}"] = s
            finals.append(s["final"])
            c = s["crossed"]
            print(f"{name} seed {seed}: final {args.metric} {s['final']:.3f}; "
                  + (f"reached {args.threshold} at step {c['step']} after {c['train_time_s']} s of training"
                     if c else "never reached the threshold") + f"; wall {wall:.0f} s", flush=True)
        report.setdefault("finals", {})[name] = {
            "values": finals, "mean": statistics.mean(finals),
            "sd": statistics.stdev(finals) if len(finals) > 1 else None}
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))
    for name, s in report["runs"].items():
        c = s["crossed"]
        print(f"{name}: {'reached at step %d, %s s of training' % (c['step'], c['train_time_s']) if c else 'not reached'}"
              f"; final {s['final']}, best {s['best']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))


def smoke(tmp: Path) -> list[str]:
    # the toy ring: FID on the 2-D points, no feature network to run
    return ["--config", str(CONFIGS / "toy_ring.yaml"), "--metric", "fid", "--threshold", "10", "--eval-every", "2",
            "--num-samples", "200", "--seeds", "0", "--out", str(tmp / "time_to_quality.json"),
            "--variant", "tiny=train.max_steps=4,health.every_steps=0,log.report=false"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--config")
    ap.add_argument("--from-run", type=Path, action="append", default=[])
    ap.add_argument("--metric", choices=sorted(HIGHER_IS_BETTER), required=True)
    ap.add_argument("--threshold", type=float, required=True)
    ap.add_argument("--variant", action="append", default=[], help="NAME=key=value,key=value (NAME= for the preset)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--eval-every", type=int, default=390)
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
