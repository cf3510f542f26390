"""How well real images come back through a generator: the encoder alone, the projector from the
mean latent, and the projector started at the encoder's guess, on held-out images.

    ganforge train configs/mnist_dcgan.yaml                                       # G
    ganforge train configs/mnist_encoder.yaml model.G_from=runs/00000-mnist_dcgan  # E for it
    python -m bench.reconstruction --run runs/00001-mnist_encoder --n 1000 --out bench/out/reconstruction/mnist

For each way: the mean squared pixel error of the reconstructions (pixels in [0, 1]), their squared
distance in the domain feature net's 128 features (the projector's own feature term), the share
the domain classifier reads as the image's class (its label for MNIST / Fashion-MNIST test images;
for a folder, the classifier's reading of the original), and seconds per image on this machine.
"Equal error": the step at which the projector from the mean first reaches the final distance of
the encoder-started one (its running distance, recorded every step), as a speed-up in steps.
The held-out images are the first --n of the dataset's test split (MNIST, Fashion-MNIST) or of a
folder (--folder, with --feature-net).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from bench.common import machine_line, need_data, parser, real_split, run_script, table_head, tiny_run
from ganforge import api, training, validate
from ganforge.core.io import atomic_write_text
from ganforge.data.dataset import to_range
from ganforge.data.folder import FolderScan, candidates, load_image, parse_background
from ganforge.explore import domain_features, project
from ganforge.metrics.features import load_extractor, load_extractor_file

BATCH = 50


def held_out(G, args) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images [N, C, H, W] in G's data range, labels or None)."""
    d = G.cfg.data
    if args.folder:
        files = candidates(Path(args.folder), FolderScan(Path(args.folder)))[:args.n]
        images = [load_image(f, d.resolution, d.channels, parse_background(d.background))[0] for f in files]
        return to_range(torch.tensor(images), d.range), None
    x, y = real_split(args.data, "test")
    x, y = x[:args.n], y[:args.n]
    return (x * 2 - 1 if d.range == "signed" else x), y


def classifier(G, feature_net: str | None):
    if feature_net:
        return load_extractor_file(feature_net)[0]
    return load_extractor({"mnist": "mnist-cnn", "fashion-mnist": "fashion-mnist-cnn"}.get(G.cfg.data.name, "mnist-cnn"))


def to01(x: torch.Tensor, value_range: str) -> torch.Tensor:
    return (x + 1) / 2 if value_range == "signed" else x


def measure(G, x: torch.Tensor, labels, extractor, features, way: str, steps: int) -> dict:
    """One way of reconstructing every image of x: its errors, class agreement, seconds per image."""
    recs, histories = [], []
    started = time.perf_counter()
    for i in range(0, len(x), BATCH):
        xb = x[i:i + BATCH]
        if way == "encoder":
            recs.append(G.generate(G.encode(xb)))
        else:
            result = project(G, xb, "z", steps, "encoder" if way == "encoder + projector" else "mean", None, features)
            recs.append(result.x)
            histories.append(torch.tensor(result.history))
    seconds = (time.perf_counter() - started) / len(x)
    rec = torch.cat(recs)
    real01, rec01 = to01(x, G.value_range), to01(rec, G.value_range)
    f_real, pred_real = extractor.run(real01)
    f_rec, pred_rec = extractor.run(rec01)
    target = labels if labels is not None else pred_real
    row = {"way": way, "steps": 0 if way == "encoder" else steps, "images": len(x),
           "pixel_mse": float((rec01 - real01).pow(2).flatten(1).mean(1).mean()),
           "feature_distance": float((f_rec - f_real).pow(2).sum(1).div(f_rec.shape[1]).mean()),
           "class_agreement": float((pred_rec == target).float().mean()), "seconds_per_image": seconds}
    if histories:
        row["history"] = torch.stack(histories).mean(0).tolist()  # the mean distance at every step
    print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)
    return row


def equal_error_speedup(rows: list[dict]) -> str:
    """Steps the projector from the mean needs to reach the encoder-started projector's last
    distance, over the steps that one took."""
    by_way = {r["way"]: r for r in rows}
    if "projector" not in by_way or "encoder + projector" not in by_way:
        return ""
    target = by_way["encoder + projector"]["history"][-1]
    mean_run = by_way["projector"]["history"]
    reached = next((i + 1 for i, d in enumerate(mean_run) if d <= target), None)
    steps = by_way["encoder + projector"]["steps"]
    if reached is None:
        return (f"The projector from the mean did not reach the encoder-started projector's distance "
                f"({target:.4f}) in {len(mean_run)} steps: more than {len(mean_run) / steps:.1f}x its {steps}.")
    return (f"The projector from the mean reached the encoder-started projector's distance ({target:.4f}) "
            f"after {reached} steps, {reached / steps:.1f}x its {steps}.")


def run(args) -> None:
    G = api.load_generator(args.run)
    features, distance = domain_features(G, args.feature_net)
    x, labels = held_out(G, args)
    extractor = classifier(G, args.feature_net)
    rows = [measure(G, x, labels, extractor, features, "encoder", 0) if G.E is not None else None,
            measure(G, x, labels, extractor, features, "projector", args.mean_steps or 4 * args.steps),
            measure(G, x, labels, extractor, features, "encoder + projector", args.steps) if G.E is not None else None]
    rows = [r for r in rows if r is not None]
    lines = [table_head("way", "steps", "pixel MSE ([0, 1])", "feature distance", "read as its class",
                        "s / image")]
    for r in rows:
        lines.append(f"| {r['way']} | {r['steps']} | {r['pixel_mse']:.4f} | {r['feature_distance']:.4f} | "
                     f"{100 * r['class_agreement']:.1f} % | {r['seconds_per_image']:.3f} |")
    text = (f"{machine_line()}; {len(x)} held-out images; distance: {distance}\n\n" + "\n".join(lines) + "\n\n"
            + equal_error_speedup(rows) + "\n")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out / "results.md", text)
        atomic_write_text(args.out / "results.json", json.dumps(rows, indent=2) + "\n")
    print(text)


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    g = tiny_run(tmp, "mnist_dcgan.yaml", "model.width=8", "model.z_dim=8")
    cfg = validate.load(Path(__file__).resolve().parents[1] / "configs/mnist_encoder.yaml",
                        [f"model.G_from={g}", "train.max_steps=2", "train.batch_size=16", "log.report=false",
                         "log.progress=false", f"run.dir={tmp / 'runs'}"])
    e, _ = training.train(cfg, log=lambda s: None)
    return ["--run", str(e), "--n", "8", "--steps", "3", "--mean-steps", "6"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", required=True, help="a run (or export); with an encoder, all three ways")
    ap.add_argument("--data", default="mnist", help="the IDX dataset whose test split is held out (mnist, fashion-mnist)")
    ap.add_argument("--folder", help="held-out images from this folder instead (give --feature-net)")
    ap.add_argument("--feature-net", help="NAME.json of `ganforge featurenet train` (a folder's model)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=200, help="steps of the encoder-started projector")
    ap.add_argument("--mean-steps", type=int, default=0, help="steps of the projector from the mean (default 4x)")
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
