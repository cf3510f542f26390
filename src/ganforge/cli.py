"""`ganforge` command line: parse, load the config, call the library, report errors plainly."""

from __future__ import annotations

import argparse
import sys
import warnings

from ganforge import __version__
from ganforge.errors import GanforgeError


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and explore GANs.")
    ap.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN from a YAML config")
    t.add_argument("config", help="YAML config, e.g. configs/mnist_mlp.yaml")
    t.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.epochs=5 model.width=64")
    t.add_argument("--resume", metavar="auto|PATH", help="continue the newest run of this config (auto), "
                                                          "or a checkpoint file / run folder")
    t.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    t.add_argument("--dry-run", action="store_true", help="a couple of steps on fake data, nothing kept")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides train.device")

    s = sub.add_parser("sample", help="sample a grid from a checkpoint or an export")
    s.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    s.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--class", dest="c", type=int, help="class index (conditional generators)")
    s.add_argument("--truncation", type=float, help="truncation trick: redraw latents with |z_i| above this")
    s.add_argument("--psi", type=float, help="truncation toward the mean latent, 0 to 1 (1: none, 0: the mean image)")
    s.add_argument("--labels", action="store_true",
                   help="write a labelled dataset to --out (a folder): conditional generators, classes in turn")
    s.add_argument("--format", choices=["png", "idx"], default="png",
                   help="with --labels: a folder of PNGs per class, or MNIST-style IDX files")

    w = sub.add_parser("interp", help="a latent walk through seeds, as a GIF or a PNG strip")
    w.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    w.add_argument("--out", default="walk.gif", help="walk.gif (loops back to the first seed) or walk.png (a strip)")
    w.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="the seeds to pass through (default 0 1 2 3)")
    w.add_argument("--steps", type=int, default=16, help="frames from one seed to the next (default 16)")
    w.add_argument("--fps", type=float, default=12.0, help="GIF frames per second (default 12)")
    w.add_argument("--class", dest="c", type=int, help="class index (conditional generators; default 0)")
    w.add_argument("--psi", type=float, help="truncation toward the mean latent, 0 to 1 (default 1: none)")
    w.add_argument("--space", choices=["z", "w"], default="z",
                   help="walk the input latent z (default) or StyleGAN's intermediate latent w (straight lines)")

    m = sub.add_parser("stylemix", help="StyleGAN's style-mixing grid: coarse styles from one set of seeds, fine from another")
    m.add_argument("source", help="a StyleGAN run folder, checkpoint .pt, or export")
    m.add_argument("--out", default="mixing.png", help="output PNG (default mixing.png)")
    m.add_argument("--rows", type=int, nargs="+", default=[0, 1, 2, 3], help="seeds giving the coarse styles")
    m.add_argument("--cols", type=int, nargs="+", default=[4, 5, 6, 7], help="seeds giving the fine styles")
    m.add_argument("--cut", type=int, help="the first layer taking the column's style (default: half the layers)")
    m.add_argument("--psi", type=float, help="truncation toward the mean w, 0 to 1")

    x = sub.add_parser("translate", help="translate images with a pix2pix / CycleGAN model")
    x.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    x.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    x.add_argument("--out", required=True, help="output folder: the same relative paths, as PNG")
    x.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default), or BtoA (CycleGAN models translate both ways)")
    x.add_argument("--keep-size", action="store_true",
                   help="translate at each image's own size (cropped to the net's stride) instead of the training size")

    r = sub.add_parser("serve", help="a web page to explore a generator (seed, class, truncation, directions, walks)")
    r.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    r.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    r.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    r.add_argument("--directions", type=int, default=5, help="latent direction sliders (default 5, at most 20)")

    e = sub.add_parser("export", help="export the generator as safetensors + JSON")
    e.add_argument("source", help="checkpoint .pt or run folder")
    e.add_argument("--out", required=True, help="output folder (safetensors) or file.onnx (onnx)")
    e.add_argument("--format", dest="fmt", choices=["safetensors", "onnx"], default="safetensors",
                   help="safetensors + JSON for ganforge (default), or ONNX for any runtime (pip install ganforge[onnx])")

    v = sub.add_parser("eval", help="metrics of a checkpoint or an export (Parzen, FID, KID, PRDC, modes, ...)")
    v.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    v.add_argument("--metrics", help="comma-separated: parzen,fid,kid,prdc,modes,memorization "
                                     "(default: those that apply to the generator's data)")
    v.add_argument("--num-samples", type=int, default=10_000, help="generated samples (default 10000)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", help="write the records as JSON here")
    v.add_argument("--inception-weights", metavar="PATH",
                   help="Inception-v3 FID weights (pt_inception-2015-12-05-6726825d.pth) for image-folder models")
    v.add_argument("--feature-net", metavar="PATH", help="a feature net from `ganforge featurenet train` (its .json)")

    f = sub.add_parser("featurenet", help="train a domain feature network for FID / KID / PRDC on your images")
    fsub = f.add_subparsers(dest="featurenet_command", required=True)
    ft = fsub.add_parser("train", help="a small CNN classifier on a folder with one sub-folder per class")
    ft.add_argument("data", help="image folder, one sub-folder per class")
    ft.add_argument("--out", default="featurenets", help="folder for NAME.safetensors + NAME.json (default featurenets/)")
    ft.add_argument("--name", help="default: the folder's name + -cnn")
    ft.add_argument("--resolution", type=int, default=32, help="input size the generator's images have (default 32)")
    ft.add_argument("--channels", type=int, choices=[1, 3], default=3)
    ft.add_argument("--epochs", type=int, default=8)
    ft.add_argument("--background", default="white", help="transparent pixels are composited onto this colour")

    d = sub.add_parser("data", help="list, describe or download datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="known datasets and where they were found")
    di = dsub.add_parser("info", help="files, splits and checks of one dataset")
    di.add_argument("name")
    df = dsub.add_parser("fetch", help="download a dataset (verified by checksum)")
    df.add_argument("name")
    df.add_argument("--dest", help="folder to put <name>/ in (default: the user cache)")
    df.add_argument("--mirror", action="append", help="base URL to download from (repeatable)")
    df.add_argument("--timeout", type=float, default=60.0, help="seconds per connection (default 60)")
    return ap


def _train(args) -> int:
    from ganforge import api, config

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    cfg = config.load(args.config, overrides)
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


def _data(args) -> int:
    from ganforge.data import sources
    from ganforge.data.fetch import fetch, verify

    if args.data_command == "fetch":
        fetch(args.name, args.dest, args.mirror, args.timeout)
        return 0
    if args.data_command == "list":
        from ganforge.data import DATASETS

        print("search path: " + ", ".join(str(p) for p in sources.search_path()))
        width = max(map(len, DATASETS))
        for name, spec in DATASETS.items():
            where = ""
            if name in sources.IDX_DATASETS:
                ds = sources.IDX_DATASETS[name]
                found = sources.find_idx_file(ds, ds.files["train_images"])
                where = f" - found at {found.parent}" if found else f" - not found (ganforge data fetch {name})"
            print(f"  {name:{width}s} {spec.summary}{where}")
        return 0
    ds = sources.get_idx_dataset(args.name)
    print(f"{ds.name}: 28x28 grey, {len(ds.classes)} classes ({', '.join(ds.classes)}); licence {ds.licence}")
    print("splits: train (60,000), train50k = train[0:50000], validation = train[50000:60000], test (10,000)")
    for filename in ds.files.values():
        path = sources.find_idx_file(ds, filename)
        state = "missing" if path is None else ("ok (MD5 verified)" if verify(path, ds.md5[filename]) else "CORRUPT (MD5 mismatch)")
        print(f"  {filename:26s} {state:24s} {path or ''}")
    return 0


def _eval(args, api) -> int:
    from ganforge.metrics import format_table

    if args.num_samples < 2:
        raise GanforgeError(f"--num-samples {args.num_samples}: need at least 2 samples")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    records = api.evaluate(args.source, names, args.num_samples, args.seed, args.out, args.inception_weights,
                           args.feature_net)
    print(format_table(records))
    if args.out:
        print(f"records: {args.out}")
    refused = [r for r in records if "refused" in r]
    if refused and (names or len(refused) == len(records)):  # asked for by name, or nothing computed
        by_reason: dict[str, list[str]] = {}
        for r in refused:
            by_reason.setdefault(r["refused"], []).append(r["metric"])
        print("error: refused: " + "; ".join(f"{', '.join(m)} ({why})" for why, m in by_reason.items()), file=sys.stderr)
        return 2
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one `warning:` line on stderr, without Python's file / source-line echo."""
    print(f"warning: {message}", file=file or sys.stderr)


def _featurenet(args) -> int:
    from ganforge.metrics.featurenet import train_on_folder

    if args.epochs < 1 or args.resolution < 8:
        raise GanforgeError(f"--epochs {args.epochs} --resolution {args.resolution}: need at least 1 epoch and 8 px")
    command = (f"ganforge featurenet train {args.data} --resolution {args.resolution} --channels {args.channels} "
               f"--epochs {args.epochs} --background {args.background}")
    meta = train_on_folder(args.data, args.out, args.resolution, args.channels, args.epochs, args.name,
                           args.background, command=command)
    import json

    info = json.loads(meta.read_text())
    print(f"feature net: {meta} (held-out accuracy {info['test_accuracy']:.4f} on {info['test_split']})")
    print(f"use it: ganforge eval RUN --feature-net {meta}   (or eval.feature_net={meta} in a config)")
    return 0


def _serve(args) -> int:
    from ganforge.serve.app import ExplorerServer

    if not 0 <= args.directions <= 20:
        raise GanforgeError(f"--directions {args.directions}: 0 to 20 sliders")
    server = ExplorerServer(args.source, args.host, args.port, args.directions)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach this page", file=sys.stderr)
    print(f"serving {args.source} at {server.url}  (Ctrl+C stops)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl+C on: the usual way to stop
        pass
    print("stopped", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # Overrides may come after flags (`train CFG --dry-run k=v`): argparse leaves those unknown.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    with warnings.catch_warnings():  # restored on return: a caller's (a notebook's) warnings stay theirs
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args) -> int:
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "data":
            return _data(args)
        from ganforge import api

        if args.command == "sample":
            if args.n < 1:
                raise GanforgeError(f"--n {args.n}: need at least one sample")
            if args.labels:
                print(api.sample_dataset(args.source, args.n, args.out, args.seed, args.format))
            else:
                print(api.sample(args.source, args.n, args.out, args.seed, c=args.c, truncation=args.truncation,
                                 psi=args.psi))
            return 0
        if args.command == "interp":
            print(api.interp(args.source, args.out, args.seeds, args.steps, args.fps, args.c, args.psi, args.space))
            return 0
        if args.command == "eval":
            return _eval(args, api)
        if args.command == "stylemix":
            print(api.style_mixing(args.source, args.out, args.rows, args.cols, args.cut, args.psi))
            return 0
        if args.command == "translate":
            out, n = api.translate(args.source, args.input, args.out, args.direction, args.keep_size)
            print(f"{n} image(s) translated ({args.direction}) into {out}")
            return 0
        if args.command == "serve":
            return _serve(args)
        if args.command == "featurenet":
            return _featurenet(args)
        if args.command == "export":
            print(api.export(args.source, args.out, args.fmt))
            return 0
    except GanforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the disk or the file system said no (full, read-only, permissions)
        print(f"error: {e.filename or 'writing'}: {e.strerror or e}: check the path, its permissions and "
              "free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
