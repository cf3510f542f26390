"""Text to image, checked: does a caption's class, tone and size reach the image?

On held-out captions (the Fashion-MNIST test split's, data.name=fashion-captions), each model draws
one image per caption; the domain classifier (the shipped fashion-mnist-cnn) reads the image's
class, and the image's tone and area are measured by the rule that wrote the captions
(ganforge.data.fashion_captions: against the training split's class medians). Beside the
text-to-image G: a class-conditional cGAN given the caption's class (the upper bound for the class
part: it is told the class exactly, and nothing of tone or size) and an unconditional G (chance).
FID is in the domain classifier's feature space against the test split.

    ganforge train configs/fashion_text2image.yaml train.max_kimg=200 train.batch_size=64 run.name=text-chars
    ganforge train configs/fashion_dcgan.yaml model.conditional=cgan train.max_kimg=200 train.batch_size=64 \\
        train.ema_halflife_kimg=10 run.name=cgan
    ganforge train configs/fashion_dcgan.yaml train.max_kimg=200 train.batch_size=64 train.ema_halflife_kimg=10 \\
        run.name=uncond
    python -m bench.text_to_image --run runs/00000-text-chars --run runs/00001-cgan --run runs/00002-uncond \\
        --grid docs/img/text2image_grid.png --out results/text2image

A run's row: share of images read as the caption's class, share whose tone / size / both
attributes match the caption, share with all three right, FID, and how far apart two seeds' images
of one caption are in the domain features (beside two real images with the same caption: a G that
ignores z draws one image per caption); the captions of `--unseen` rows use a third wording of
each class that training never showed (ganforge.data.fashion_captions.UNSEEN).
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.common import machine_line, need_data, parser, run_script, table_head, tiny_run, write_results
from ganforge import api
from ganforge.config import DataConfig
from ganforge.core.images import save_image_grid
from ganforge.data import build_dataset
from ganforge.data.fashion_captions import UNSEEN, attributes, captions_of
from ganforge.metrics.fid import fid
from ganforge.metrics.features import load_extractor

GRID_CAPTIONS = ("a large dark ankle boot", "a small light sneaker", "a pair of trousers, dark and large",
                 "a small light bag", "a large light t-shirt", "a dress, dark and small",
                 "a small dark sandal", "a large light coat")


def held_out(n: int, seed: int, unseen: bool) -> tuple[list[str], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(captions, classes, dark, large, test images) of the first n test images, one caption each
    (drawn by the seed among the image's captions; with `unseen`, in the held-out wording)."""
    test = build_dataset(DataConfig(name="fashion-captions", split="test", max_images=n), seed)
    y = test.y
    dark, large = attributes(test.x, y)
    if unseen:
        per_image = captions_of(y, dark, large, UNSEEN)
        g = torch.Generator().manual_seed(seed)
        texts = [c[int(torch.randint(len(c), (1,), generator=g))] for c in per_image]
    else:
        texts = [test.captions.texts[int(i)] for i in test.captions.draw(torch.arange(len(y)), step=seed)]
    return texts, y, dark, large, test.x


def draw(G, texts: list[str], y: torch.Tensor, seed: int) -> torch.Tensor:
    """One image per caption (text G), per class (cGAN) or per seed (unconditional), in [-1, 1]."""
    n = len(texts)
    if G.takes_text:
        return G.sample(n, seed=seed, text=texts, batch=500)
    if G.num_classes:
        inputs = G.inputs(n, seed)
        inputs["c"] = y.clone()
        return G.generate(inputs, batch=500)
    return G.sample(n, seed=seed, batch=500)


def real_spread(texts: list[str], feats: torch.Tensor) -> float:
    """Mean feature distance between two real test images that have the same caption."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(text, []).append(i)
    pairs = [(g[k], g[(k + 1) % len(g)]) for g in groups.values() if len(g) > 1 for k in range(len(g))]
    a, b = zip(*pairs)
    return float((feats[list(a)] - feats[list(b)]).norm(dim=1).mean())


def measure(run: Path, n: int, seed: int, unseen: bool, extractor, real_feats) -> dict:
    G = api.load_generator(run)
    texts, y, dark, large, _ = held_out(n, seed, unseen)
    x = draw(G, texts, y, seed)
    feats, pred = extractor.run((x + 1) / 2)
    again, _ = extractor.run((draw(G, texts, y, seed + 1) + 1) / 2)  # the same captions (classes), new z
    g_dark, g_large = attributes(x, y)
    right_class = pred == y
    tone, size = g_dark == dark, g_large == large
    kind = "cGAN, given the class" if G.num_classes else "unconditional"
    if G.takes_text:
        m, L = G.cfg.model, G.cfg.loss
        kind = (f"text ({m.text_encoder}{', CA' if m.text_ca else ''}"
                f"{f', mode seeking {L.ms_weight:g}' if L.ms_weight else ''})")
    return {"run": run.name, "model": kind, "captions": "unseen wording" if unseen else "held-out (seen wording)",
            "n": n, "step": G.step, "class": float(right_class.float().mean()), "tone": float(tone.float().mean()),
            "size": float(size.float().mean()), "tone_and_size": float((tone & size).float().mean()),
            "all_three": float((right_class & tone & size).float().mean()),
            "fid": float(fid(real_feats.double(), feats.double())),
            "spread": float((feats - again).norm(dim=1).mean())}


def grid(runs: list[Path], path: Path, seeds: int = 8) -> Path:
    """A row per caption, a column per seed, for the first text-to-image run given."""
    text_runs = [r for r in runs if api.load_generator(r).takes_text]
    if not text_runs:
        raise SystemExit("--grid needs a text-to-image run among --run")
    G = api.load_generator(text_runs[0])
    z = G.inputs(seeds, 0)["z"]
    t = G.text_input(list(GRID_CAPTIONS)).repeat_interleave(seeds, 0)
    x = G.generate({"z": z.repeat(len(GRID_CAPTIONS), 1), "t": t})
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_image_grid(x, path, G.value_range, nrow=seeds)


def table(rows: list[dict], spread_real: float) -> list[str]:
    lines = [table_head("model", "captions", "step", "class read right", "tone right", "size right",
                        "tone and size", "all three", "FID (domain features)", "spread under one caption")]
    for r in rows:
        lines.append(f"| {r['model']} | {r['captions']} | {r['step']:,} | {r['class']:.1%} | {r['tone']:.1%} | "
                     f"{r['size']:.1%} | {r['tone_and_size']:.1%} | {r['all_three']:.1%} | {r['fid']:.2f} | "
                     f"{r['spread']:.2f} |")
    lines += ["", f"spread under one caption: mean distance in the domain features between the images of two seeds "
                  f"for the same caption (cGAN: the same class; unconditional: any two); two real test images "
                  f"with the same caption: {spread_real:.2f}"]
    return lines


def run(args) -> None:
    runs = [Path(r) for r in args.run]
    extractor = load_extractor("fashion-mnist-cnn")
    texts, _, _, _, real = held_out(args.n, args.seed, False)
    real_feats, _ = extractor.run(real)
    spread = real_spread(texts, real_feats)
    rows = []
    for r in runs:
        rows.append(measure(r, args.n, args.seed, False, extractor, real_feats))
        if args.unseen and rows[-1]["model"].startswith("text"):
            rows.append(measure(r, args.n, args.seed, True, extractor, real_feats))
    if args.grid:
        print(f"grid: {grid(runs, Path(args.grid))}")
    text = "\n".join([*table(rows, spread), "", machine_line()]) + "\n"
    write_results(Path(args.out) if args.out else None, text, [*rows, {"real_spread": spread}])


def smoke(tmp: Path) -> list[str]:
    need_data("fashion-mnist")
    text = tiny_run(tmp / "t", "fashion_text2image.yaml", "data.name=fashion-captions", "data.max_images=256")
    return ["--run", str(text), "--n", "64", "--unseen", "--grid", str(tmp / "grid.png")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", required=True, help="a finished run folder (repeat)")
    ap.add_argument("--n", type=int, default=2000, help="held-out captions (test images) per row (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unseen", action="store_true", help="also rows for captions in wordings training never showed")
    ap.add_argument("--grid", help="write a captions-by-seeds grid of the first text run here")
    ap.add_argument("--out", help="folder for results.md / results.json")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
