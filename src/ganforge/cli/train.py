"""`ganforge train`: train from a YAML config (dotted overrides after it)."""

from __future__ import annotations

import sys

from ganforge import api, config, validate

HELP = "train a GAN from a YAML config"


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config, e.g. configs/mnist_mlp.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5 model.width=64")
    p.add_argument("--resume", metavar="auto|PATH", help="continue the newest run of this config (auto), "
                                                          "or a checkpoint file / run folder")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--dry-run", action="store_true", help="a couple of steps on fake data, nothing kept")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")


def run(args) -> int:
    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    cfg = validate.load(args.config, overrides)
    if args.print_config:
        print(config.dump(cfg), end="")
        return 0
    run_dir, result = api.train(cfg, resume=args.resume, dry_run=args.dry_run)
    if args.dry_run or run_dir is None:  # run_dir is None on torchrun ranks other than 0
        return 0
    print(f"run folder:   {run_dir}")
    print(f"samples:      {run_dir / 'samples'}")
    if (run_dir / "report" / "report.html").is_file():
        print(f"report:       {run_dir / 'report' / 'report.html'}  (progress.gif and the plots beside it)")
    print(f"checkpoint:   {result.checkpoint}")
    if result.best:
        print(f"best:         {result.best['path']}  ({result.best['name']}={result.best['value']:.6g} "
              f"at step {result.best['step']})")
    if result.stopped_for:
        print(f"stopped at step {result.step}: {result.stopped_for}", file=sys.stderr)
        return 6
    if result.interrupted_by:
        print(f"stopped by {result.interrupted_by} at step {result.step}; continue with: "
              f"ganforge train {args.config} {' '.join(args.overrides)} --resume auto".replace("  ", " "))
        return 130 if result.interrupted_by == "SIGINT" else 143
    return 0
