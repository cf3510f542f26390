"""How well real images come back through a generator: the encoder alone, the projector from the
mean latent, and the projector started at the encoder's guess, on held-out images.

    ganforge train configs/mnist_dcgan.yaml                                       # G
    ganforge train configs/mnist_encoder.yaml model.G_from=runs/00000-mnist_dcgan  # E for it
    python -m bench.reconstruction --run runs/00001-mnist_encoder --n 1000 --out bench/out/reconstruction/mnist

For each way: the mean squared pixel error of the reconstructions (pixels in [0, 1]), their squared
distance in the domain feature net's 128 features (the projector's own feature term), the share
the domain classifier reads as the image's class (its label for MNIST / Fashion-MNIST test images;
for a folder, the classifier's reading of the original), and seconds per image on this machine.
"Equal error": the projector from the mean runs to 1x, 2x and 4x the encoder-started one's steps
(each a whole run with its own schedule), and the first budget whose final distance (the
projector's objective: pixels in the data's range plus features) reaches the encoder-started
projector's says how many times the steps it needed.
The held-out images are the first --n of the dataset's test split (MNIST, Fashion-MNIST) or of a
folder (--folder, with --feature-net).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import (machine_line, need_data, parser, real_split, run_script, table_head, tiny_run, to_unit,
                          write_results)
from ganforge import api, training, validate
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
        return to_range(torch.from_numpy(np.stack(images)), d.range), None
    x, y = real_split(args.data, "test")
    x, y = x[:args.n], y[:args.n]
    return (x * 2 - 1 if d.range == "signed" else x), y


def classifier(G, feature_net: str | None):
    if feature_net:
        return load_extractor_file(feature_net)[0]
    return load_extractor({"mnist": "mnist-cnn", "fashion-mnist": "fashion-mnist-cnn"}.get(G.cfg.data.name, "mnist-cnn"))


def measure(G, x: torch.Tensor, labels, extractor, features, way: str, steps: int) -> dict:
    """One way of reconstructing every image of x: its errors, class agreement, seconds per image."""
    recs, distances = [], []
    started = time.perf_counter()
    for i in range(0, len(x), BATCH):
        xb = x[i:i + BATCH]
        if way == "encoder":
            recs.append(G.generate(G.encode(xb)))
        else:
            result = project(G, xb, "z", steps, "encoder" if way == "encoder + projector" else "mean", None, features)
            recs.append(result.x)
            distances.append(result.pixel + (result.feature if result.feature is not None else 0))
    seconds = (time.perf_counter() - started) / len(x)
    rec = torch.cat(recs)
    real01, rec01 = to_unit(x, G.value_range), to_unit(rec, G.value_range)
    f_real, pred_real = extractor.run(real01)
    f_rec, pred_rec = extractor.run(rec01)
    target = labels if labels is not None else pred_real
    row = {"way": way, "steps": 0 if way == "encoder" else steps, "images": len(x),
           "pixel_mse": float((rec01 - real01).pow(2).flatten(1).mean(1).mean()),
           "feature_distance": float((f_rec - f_real).pow(2).sum(1).div(f_rec.shape[1]).mean()),
           "class_agreement": float((pred_rec == target).float().mean()), "seconds_per_image": seconds}
    if distances:
        row["distance"] = float(torch.cat(distances).mean())  # the projector's own objective
    print(json.dumps(row), flush=True)
    return row


def equal_error_speedup(rows: list[dict]) -> str:
    """The smallest budget of the projector from the mean whose distance reaches the
    encoder-started projector's, as a multiple of that one's steps."""
    started = next((r for r in rows if r["way"] == "encoder + projector"), None)
    budgets = sorted((r for r in rows if r["way"] == "projector"), key=lambda r: r["steps"])
    if started is None or not budgets:
        return ""
    reached = next((r for r in budgets if r["distance"] <= started["distance"]), None)
    if reached is None:
        return (f"The projector from the mean did not reach the encoder-started projector's distance "
                f"({started['distance']:.4f} in {started['steps']} steps) in up to {budgets[-1]['steps']} steps: "
                f"more than {budgets[-1]['steps'] / started['steps']:g}x the steps.")
    return (f"The projector from the mean reached the encoder-started projector's distance "
            f"({started['distance']:.4f} in {started['steps']} steps) with {reached['steps']} steps: "
            f"{reached['steps'] / started['steps']:g}x the steps.")


def run(args) -> None:
    G = api.load_generator(args.run)
    features, distance = domain_features(G, args.feature_net)
    x, labels = held_out(G, args)
    extractor = classifier(G, args.feature_net)
    rows = []
    if G.E is not None and not args.no_encoder:
        rows.append(measure(G, x, labels, extractor, features, "encoder", 0))
        rows.append(measure(G, x, labels, extractor, features, "encoder + projector", args.steps))
    for k in args.budgets:
        rows.append(measure(G, x, labels, extractor, features, "projector", k * args.steps))
    lines = [table_head("way", "steps", "pixel MSE ([0, 1])", "feature distance", "read as its class",
                        "s / image")]
    for r in rows:
        lines.append(f"| {r['way']} | {r['steps']} | {r['pixel_mse']:.4f} | {r['feature_distance']:.4f} | "
                     f"{100 * r['class_agreement']:.1f} % | {r['seconds_per_image']:.3f} |")
    text = (f"{machine_line()}; {len(x)} held-out images; distance: {distance}\n\n" + "\n".join(lines) + "\n\n"
            + equal_error_speedup(rows) + "\n")
    write_results(args.out, text, rows)


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    g = tiny_run(tmp, "mnist_dcgan.yaml", "model.width=8", "model.z_dim=8")
    cfg = validate.load(Path(__file__).resolve().parents[1] / "configs/mnist_encoder.yaml",
                        [f"model.G_from={g}", "train.max_steps=2", "train.batch_size=16", "log.report=false",
                         "log.progress=false", f"run.dir={tmp / 'runs'}"])
    e, _ = training.train(cfg, log=lambda s: None)
    return ["--run", str(e), "--n", "8", "--steps", "3"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", required=True, help="a run (or export); with an encoder, all three ways")
    ap.add_argument("--data", default="mnist", help="the IDX dataset whose test split is held out (mnist, fashion-mnist)")
    ap.add_argument("--folder", help="held-out images from this folder instead (give --feature-net)")
    ap.add_argument("--feature-net", help="NAME.json of `ganforge featurenet train` (a folder's model)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=200, help="steps of the encoder-started projector")
    ap.add_argument("--budgets", type=lambda s: [int(k) for k in s.split(",")], default=[1, 2, 4],
                    help="the projector from the mean at these multiples of --steps (default 1,2,4; split them over "
                         "processes to use more cores, each writing its rows)")
    ap.add_argument("--no-encoder", action="store_true", help="only the projector from the mean (with --budgets)")
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
