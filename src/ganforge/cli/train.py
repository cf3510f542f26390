"""`ganforge train`: train from a YAML config, or from a folder of images with `--data DIR` (every
setting chosen from the data and said); dotted overrides after either."""

from __future__ import annotations

import sys

from ganforge.recipes import RECIPES
from ganforge import api, autoconfig, config, validate
from ganforge.core.errors import ConfigError
from ganforge.report.run_report import describe
from ganforge.training import resolve_device

HELP = "train a GAN from a YAML config, or from a folder of images (--data DIR)"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="?", help="YAML config, e.g. configs/mnist_mlp.yaml (not with --data)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5 model.width=64")
    p.add_argument("--data", metavar="DIR", help="a folder of your own images: the resolution, nets, augmentation "
                                                 "and a time budget are chosen for it and printed")
    p.add_argument("--resume", metavar="auto|PATH", help="continue the newest run of this config (auto), "
                                                          "or a checkpoint file / run folder")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--dry-run", action="store_true", help="a couple of steps on fake data, nothing kept")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")


def run(args) -> int:
    overrides = list(args.overrides)
    if args.data and args.config is not None:
        if "=" not in args.config:
            raise ConfigError(f"{args.config}: give a config file or --data DIR, not both")
        overrides.insert(0, args.config)  # argparse took the first override for the config
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.data:
        cfg = _folder_config(args.data, overrides, quiet=args.print_config)
    elif args.config is None:
        raise ConfigError("give a config file (e.g. configs/mnist_mlp.yaml) or --data DIR (a folder of your images)")
    else:
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
    print(_reached(result, cfg, run_dir))
    if result.stopped_for:
        print(f"stopped at step {result.step}: {result.stopped_for}", file=sys.stderr)
        return 6
    if result.interrupted_by:
        again = f"--data {args.data}" if args.data else args.config
        print(f"stopped by {result.interrupted_by} at step {result.step}; continue with: "
              f"ganforge train {again} {' '.join(args.overrides)} --resume auto".replace("  ", " "))
        return 130 if result.interrupted_by == "SIGINT" else 143
    return 0


def _folder_config(root: str, overrides: list[str], quiet: bool) -> config.Config:
    """The config `--data` chooses, each choice printed on a line of its own (unless quiet)."""
    device = dict(config.parse_overrides(overrides)).get("train.device", "auto")
    cuda = device in ("auto", "cuda") and resolve_device(device).type == "cuda"
    probe, choices = autoconfig.choose(root, overrides, cuda)
    cfg = validate.from_dict(autoconfig.config_dict(choices, overrides), where=f"--data {root}")
    if not quiet:
        print(autoconfig.describe_probe(probe))
        for choice in choices:
            print(choice.line())
        print("(every choice is a config key: override it with KEY=VALUE; the run's config.yaml repeats the run)")
    return cfg


# the distance to the targets each image-to-image recipe reports, with its words
TARGET_STATS = (("RMSE_missing", "RMSE on the missing pixels"), ("MSE", "pixel MSE to the originals"),
                ("L1", "L1 to the targets"), ("cycle", "cycle L1"))


def _reached_image_to_image(result, cfg: config.Config, run_dir) -> str:
    """The closing line of a translation or restoration run: its last distance to the targets on
    the training batches, and the command that measures it on held-out images."""
    stats = result.last_stats or {}
    said = next((f"{words} {float(stats[k]):.4g} at step {result.step:,} (training batches; lower is better)"
                 for k, words in TARGET_STATS if k in stats), "")
    bench = f"bench.restoration --run {run_dir}" if cfg.data.degrade else f"bench.translation {cfg.train.recipe} {run_dir}"
    held_out = f"held-out images: python -m {bench}"
    return f"reached:      {said}; {held_out}" if said else f"reached:      {held_out}"


def _reached(result, cfg: config.Config, run_dir) -> str:
    """The closing line: the last value of each headline number the run measured, or how to measure it."""
    parts = []
    for key, m in result.measured.items():
        label, better = describe(key)
        if better:
            parts.append(f"{label} {m['value']:.4g} at step {m['step']:,} ({better} is better)")
    if parts:
        return "reached:      " + "; ".join(parts)
    if not RECIPES[cfg.train.recipe].draws_from_latent:  # image-to-image: no samples of its own to measure
        return _reached_image_to_image(result, cfg, run_dir)
    if cfg.data.name == "folder" and not cfg.eval.feature_net:
        return (f"reached:      not measured (no feature space for this folder): ganforge featurenet train "
                f"{cfg.data.root}, then ganforge eval {run_dir} --feature-net featurenets/NAME.json")
    return f"reached:      not measured during training (eval.every_steps=0): ganforge eval {run_dir}"
