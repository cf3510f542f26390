"""Image-to-image translation, measured: quality of trained pix2pix / CycleGAN runs on held-out
images, and training throughput against the reference repository's loop.

    python -m bench.translation pix2pix RUN [--baseline L1_ONLY_RUN] [--picture docs/img/pix2pix.png]
    python -m bench.translation cyclegan RUN [--picture docs/img/cyclegan.png]
    python -m bench.translation throughput --model pix2pix|cyclegan [--steps 40] [--rounds 2] [--extra K=V ...]

pix2pix, on the 1,000 held-out pairs (Fashion-MNIST's test split, its first 1,000 items and their
edge maps): L1 and SSIM to the ground truth (pixels in [0, 1]); FID between the outputs and the
real items in the Fashion-MNIST classifier's feature space (images resized 32 -> 28, the size the
classifier was trained at); sharpness = mean Sobel gradient magnitude, as a fraction of the real
items'. An L1-only baseline is the same U-Net trained with loss.adv_weight=0.

CycleGAN, on the held-out sneakers and ankle boots (1,000 each, test split): translation success =
the share of translated sneakers the Fashion-MNIST classifier calls "Ankle boot" (and boots it calls
"Sneaker"); cycle-consistency L1 (A -> B -> A); FID of the translations to the real target domain,
beside the FID of the untranslated inputs to it (where translation starts from).

Throughput: A = translation_refs.py (the reference's step, same nets and batch), B = `ganforge
train` with the preset; C (with --extra) = B with those overrides; samples/s and ratios to A,
median of rounds, alternating A B C.
"""

import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from bench import translation_refs as ref
from bench.common import (CONFIGS, WARMUP, ganforge_samples_per_s, machine, machine_line, parser,
                          reference_samples_per_s, to_unit)
from ganforge import config, load_generator
from ganforge.data import build_dataset
from ganforge.data.translation import ANKLE_BOOT, SNEAKER
from ganforge.metrics.features import load_extractor
from ganforge.metrics.fid import fid
from ganforge.recipes import RECIPES
from ganforge.core.images import save_image_grid

PRESETS = {"pix2pix": "fashion_edges2clothes_pix2pix.yaml", "cyclegan": "fashion_sneaker2boot_cyclegan.yaml"}


def ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, range 1)."""
    g = torch.exp(-(torch.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None, :] / g.sum() ** 2)[None, None].expand(x.shape[1], 1, 11, 11)
    blur = lambda t: F.conv2d(t, w, groups=x.shape[1])  # noqa: E731  (valid windows only)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def sharpness(x01: torch.Tensor) -> float:
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    k = torch.stack([kx, kx.T])[:, None]
    g = F.conv2d(x01, k)
    return float(g.pow(2).sum(1).sqrt().mean())


def features(x01: torch.Tensor):
    ex = load_extractor("fashion-mnist-cnn")
    return ex.run(F.interpolate(x01, size=(28, 28), mode="bilinear", antialias=True, align_corners=False))


def held_out(run: Path) -> tuple[dict, str]:
    cfg = config.load(run / "config.yaml")
    data = build_dataset(cfg.data)
    return data.extra["held_out"], cfg.data.range


def pix2pix_quality(run: Path) -> tuple[dict, torch.Tensor]:
    held, rng = held_out(run)
    G = load_generator(run)
    a, b = to_unit(held["a"], rng), to_unit(held["x"], rng)
    a_in = a * 2 - 1 if rng == "signed" else a
    out = to_unit(G.translate(a_in), rng).clamp(0, 1)
    f_out, _ = features(out)
    f_real, _ = features(b)
    row = {"run": str(run), "step": G.step, "pairs": len(a), "L1": float((out - b).abs().mean()), "SSIM": ssim(out, b),
           "FID": fid(f_real, f_out), "sharpness_vs_real": sharpness(out) / sharpness(b)}
    return row, out


def cyclegan_quality(run: Path) -> tuple[dict, tuple]:
    held, rng = held_out(run)
    G = load_generator(run)
    a, b = to_unit(held["a"], rng), to_unit(held["x"], rng)
    to_in = (lambda t: t * 2 - 1) if rng == "signed" else (lambda t: t)
    ab = to_unit(G.translate(to_in(a), "AtoB"), rng).clamp(0, 1)
    ba = to_unit(G.translate(to_in(b), "BtoA"), rng).clamp(0, 1)
    aba = to_unit(G.translate(to_in(ab), "BtoA"), rng).clamp(0, 1)
    bab = to_unit(G.translate(to_in(ba), "AtoB"), rng).clamp(0, 1)
    (f_a, _), (f_b, _), (f_ab, p_ab), (f_ba, p_ba) = features(a), features(b), features(ab), features(ba)
    _, p_a = features(a)
    row = {"run": str(run), "step": G.step, "images": [len(a), len(b)],
           "sneakers_read_as_boots": float((p_ab == ANKLE_BOOT).float().mean()),
           "boots_read_as_sneakers": float((p_ba == SNEAKER).float().mean()),
           "untranslated_sneakers_read_as_sneakers": float((p_a == SNEAKER).float().mean()),
           "cycle_L1_A": float((aba - a).abs().mean()), "cycle_L1_B": float((bab - b).abs().mean()),
           "FID_AtoB_to_boots": fid(f_b, f_ab), "FID_sneakers_to_boots_untranslated": fid(f_b, f_a),
           "FID_BtoA_to_sneakers": fid(f_a, f_ba), "FID_boots_to_sneakers_untranslated": fid(f_a, f_b)}
    return row, (a, ab, aba, b, ba, bab)


def picture(rows: list[torch.Tensor], path: str, n: int = 10) -> None:
    grid = torch.cat([r[:n] for r in rows])
    save_image_grid(grid, Path(path), "unit", scale=3, nrow=n)
    print(f"picture: {path} (rows: {len(rows)}, {n} held-out items each)")


def throughput(model: str, steps: int, rounds: int, extra: list[str] = ()) -> dict:
    cfg = config.load(CONFIGS / PRESETS[model])
    data = build_dataset(cfg.data)
    shape, batch = data.sample_shape, cfg.train.batch_size
    recipe = RECIPES[cfg.train.recipe]

    def reference() -> float:
        torch.manual_seed(0)
        if model == "pix2pix":
            G, D = recipe.build_nets(cfg, shape[0], shape)
            step = ref.pix2pix_step(G, D, cfg.loss.l1_weight)
        else:
            (G_A, D_A), (G_B, D_B) = recipe.build_nets(cfg, shape[0], shape), recipe.build_nets(cfg, shape[0], shape)
            step = ref.cyclegan_step(G_A, G_B, D_A, D_B, cfg.loss.cycle_weight, cfg.loss.identity_weight,
                                     cfg.train.pool_size)
        return reference_samples_per_s(ref.loader(data.a, data.x, batch, unaligned=model == "cyclegan"), steps, batch,
                                       step)

    results = {"A_reference": [], "B_ganforge": [], **({"C_extra": []} if extra else {})}
    for r in range(rounds):
        results["A_reference"].append(reference())
        results["B_ganforge"].append(ganforge_samples_per_s(PRESETS[model], cfg.data.name, steps))
        if extra:
            results["C_extra"].append(ganforge_samples_per_s(PRESETS[model], cfg.data.name, steps, list(extra)))
        print(f"round {r + 1}: " + ", ".join(f"{k}={v[-1]:.1f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    return {"model": model, "preset": PRESETS[model], "batch": batch, "steps": steps, "warmup": WARMUP,
            "rounds": rounds, "samples_per_s": {k: round(v, 1) for k, v in med.items()},
            "B_over_A": round(med["B_ganforge"] / med["A_reference"], 3),
            **({"C_over_A": round(med["C_extra"] / med["A_reference"], 3), "extra": list(extra)} if extra else {}),
            "all_rounds": results, **machine()}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("what", choices=["pix2pix", "cyclegan", "throughput"])
    ap.add_argument("run", nargs="?")
    ap.add_argument("--baseline", help="pix2pix: an L1-only run (loss.adv_weight=0) to compare with")
    ap.add_argument("--picture")
    ap.add_argument("--model", choices=list(PRESETS), default="pix2pix")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--extra", nargs="*", default=[], help="throughput: overrides for a third variant C")
    args = ap.parse_args()
    if args.what == "throughput":
        print(json.dumps(throughput(args.model, args.steps, args.rounds, args.extra), indent=2))
        return
    print(f"machine: {machine_line()}")
    if args.what == "pix2pix":
        row, out = pix2pix_quality(Path(args.run))
        rows = [row]
        pics = [out]
        if args.baseline:
            base, base_out = pix2pix_quality(Path(args.baseline))
            rows.append(base)
            pics.append(base_out)
        for r in rows:
            print(json.dumps(r))
        if args.picture:
            held, rng = held_out(Path(args.run))
            picture([to_unit(held["a"], rng), *reversed(pics), to_unit(held["x"], rng)], args.picture)
    else:
        row, (a, ab, aba, b, ba, bab) = cyclegan_quality(Path(args.run))
        print(json.dumps(row))
        if args.picture:
            picture([a, ab, aba, b, ba, bab], args.picture)


if __name__ == "__main__":
    main()
