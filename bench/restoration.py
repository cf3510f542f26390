"""Restoration models against honest baselines, on the held-out test images of a data.degrade run
(the test split's first 1,000, each degraded the same way every time).

    ganforge train configs/fashion_inpaint_pix2pix.yaml                        # and loss.adv_weight=0
    python -m bench.restoration --run RUN [--run RUN_WITHOUT_D] [--gan A_GAN_RUN]

For each way of restoring: PSNR and SSIM (on the missing pixels where the degradation leaves
holes, on the whole image otherwise; pixels in [0, 1], SSIM with an 11 x 11 Gaussian window of
sigma 1.5, as Wang et al. 2004), the FID of the 1,000 restored images against the other 9,000 test
images in the domain net's features (mnist-cnn / fashion-mnist-cnn; the clean images' own FID
is the floor), and the share the domain classifier reads as the image's label.

Baselines, by degradation (each needs no training; where one has a parameter it is chosen on 100
training images degraded the same way, never on the test images):
- holes (box, strokes, missing, masks): zero fill, the per-pixel training mean, the nearest training
  image on the observed pixels, and with --gan a GAN's G by Yeh et al.'s search (explore.inpaint);
- down=K: the low-resolution image repeated (nearest) and bicubic upsampling;
- blur / motion: unsharp masking and a Wiener filter with a Gaussian guess of the blur;
- noise: a Gaussian smoothing filter.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common import machine_line, need_data, parser, run_script, table_head, write_results
from bench.imputation import CLASSIFIER, mean_fill, nearest_fill
from ganforge import api, validate
from ganforge.data import build_dataset, load_idx_split
from ganforge.data.degrade import gaussian_kernel, makes_holes, parse
from ganforge.core.images import save_image_grid
from ganforge.explore.inpaint import inpaint
from ganforge.metrics.features import load_extractor, load_extractor_file
from ganforge.metrics.fid import fid
from ganforge.nets.srgan import scale_of

TUNE = 100  # training images the baselines' parameters are chosen on
PICTURE = 8  # held-out images in the --picture grid


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2004's SSIM at every pixel ([N, 1, H, W], channels averaged), images in [0, 1]."""
    w = gaussian_kernel(1.5)[None, None].to(x).repeat(x.shape[1], 1, 1, 1)  # 11 x 11, sums to 1

    def blur(t):
        return F.conv2d(F.pad(t, (5, 5, 5, 5), mode="reflect"), w, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.mean(1, keepdim=True)


def measures(restored, clean, region, labels, extractor, reference) -> dict:
    """PSNR and SSIM over `region` (1 = counted), FID against `reference` features, class accuracy."""
    r = region.expand_as(clean)
    mse = ((restored - clean) ** 2 * r).flatten(1).sum(1) / r.flatten(1).sum(1).clamp_min(1)
    psnr = float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())
    s = ssim_map(restored, clean)
    ssim = float(((s * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1)).mean())
    features, predicted = extractor.run(restored)
    return {"psnr": psnr, "ssim": ssim, "fid": fid(reference, features),
            "class_accuracy": None if labels is None else float((predicted == labels).float().mean())}


def unsharp(a, amount: float, sigma: float = 1.0):
    k = gaussian_kernel(sigma)
    k = (k / k.sum())[None, None].to(a)
    pad = k.shape[-1] // 2
    soft = F.conv2d(F.pad(a, (pad,) * 4, mode="replicate"), k)
    return (a + amount * (a - soft)).clamp(0, 1)


def smooth(a, sigma: float):
    return unsharp(a, -1.0, sigma)  # a - (a - soft) = the Gaussian-smoothed image


def wiener(a, sigma: float, k: float):
    """Wiener deconvolution by a Gaussian blur of `sigma` px with noise-to-signal ratio k."""
    H, W = a.shape[-2:]
    g = gaussian_kernel(sigma)
    g = g / g.sum()
    psf = torch.zeros(H, W)
    r = g.shape[-1] // 2
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            psf[dy % H, dx % W] += g[dy + r, dx + r]
    P = torch.fft.rfft2(psf)
    filt = P.conj() / (P.abs() ** 2 + k)
    return torch.fft.irfft2(torch.fft.rfft2(a) * filt, s=(H, W)).clamp(0, 1)


def bicubic(a, scale: int):
    low = F.avg_pool2d(a, scale)
    return F.interpolate(low, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def best(fn, grid, a_tune, clean_tune):
    """The parameter of `grid` whose output is closest to the clean tuning images in MSE."""
    return min(grid, key=lambda p: float((fn(a_tune, p) - clean_tune).pow(2).mean()))


def baselines(spec: str, a, mask, train, a_tune, clean_tune) -> list[tuple[str, torch.Tensor]]:
    name, _ = parse(spec)
    if makes_holes(spec):
        return [("zero fill", a), ("per-pixel training mean", mean_fill(a, mask, train)),
                ("nearest training image", nearest_fill(a, mask, train))]
    if name == "down":
        return [("nearest (the low-resolution image as given)", a), ("bicubic upsampling", bicubic(a, scale_of(spec)))]
    if name in ("blur", "motion"):
        amount = best(unsharp, [0.5, 1, 1.5, 2, 3, 4], a_tune, clean_tune)
        s, k = best(lambda t, p: wiener(t, *p), [(s, k) for s in (0.5, 0.75, 1, 1.5, 2, 2.5) for k in (1e-3, 3e-3, 1e-2, 3e-2, 0.1)],
                    a_tune, clean_tune)
        return [("as given", a), (f"unsharp mask (amount {amount})", unsharp(a, amount)),
                (f"Wiener filter (Gaussian sigma {s}, k {k})", wiener(a, s, k))]
    if name == "noise":
        sigma = best(smooth, [0.5, 0.75, 1, 1.25, 1.5, 2], a_tune, clean_tune)
        return [("as given", a), (f"Gaussian smoothing (sigma {sigma})", smooth(a, sigma))]
    return [("as given", a)]


def run(args) -> None:
    first = api.load_generator(args.run[0])
    cfg = first.cfg
    if not cfg.data.degrade:
        raise SystemExit(f"{args.run[0]}: give a run on data.degrade")
    data = build_dataset(cfg.data)
    held = data.extra["held_out"]
    a, clean, mask = held["a"].float() / 255, held["x"].float() / 255, held["mask"].float()
    a_tune, _ = data.degrader(data.x[:TUNE], torch.arange(TUNE), None)
    a_tune, clean_tune = a_tune.float() / 255, data.x[:TUNE].float() / 255
    if cfg.data.name in CLASSIFIER:  # the rest of the test split is the reference; labels are known
        extractor = load_extractor(CLASSIFIER[cfg.data.name])
        test, labels, _ = load_idx_split(cfg.data.name, "test")
        labels = torch.from_numpy(labels[:len(clean)]).long()
        reference, _ = extractor.run(torch.from_numpy(test[len(clean):]).float().div(255)[:, None])
        against = f"the other {len(reference)} test images"
    elif args.feature_net:  # an image folder: its featurenet; the training images are the reference
        extractor, _ = load_extractor_file(args.feature_net)
        labels = None
        reference, _ = extractor.run(data.x.float().div(255))
        against = f"the {len(reference)} training images"
    else:
        raise SystemExit(f"{args.run[0]}: data.name={cfg.data.name} has no shipped feature net: give --feature-net "
                         "NAME.json (`ganforge featurenet train FOLDER`)")
    holes = makes_holes(cfg.data.degrade)
    region = mask if holes else torch.ones_like(mask)
    rows, pictures = [], [a[:PICTURE]]

    def score(way: str, restored: torch.Tensor, shown: bool = True) -> None:
        restored = mask * restored + (1 - mask) * a if holes else restored  # known pixels as given
        row = {"way": way, "images": len(clean), "shown": shown, **measures(restored, clean, region, labels, extractor, reference)}
        print(json.dumps(row), flush=True)
        rows.append(row)
        if shown:
            pictures.append(restored[:PICTURE])

    score("clean images (the floor of FID, the classifier's own accuracy)", clean, shown=False)
    for way, restored in baselines(cfg.data.degrade, a, mask, data.x.float().div(255).flatten(1), a_tune, clean_tune):
        score(way, restored, shown=way not in ("zero fill", "as given"))
    for source in args.run:
        G = api.load_generator(source)
        if G.cfg.data != cfg.data:
            raise SystemExit(f"{source}: trained on other data than {args.run[0]}: compare runs of one data.degrade")
        signed = G.value_range == "signed"
        a_in = a * 2 - 1 if signed else a
        restored = torch.cat([G({"a": a_in[i:i + 250], "mask": mask[i:i + 250]}).cpu() for i in range(0, len(a), 250)])
        adv = G.cfg.loss.adv_weight
        score(f"{G.cfg.train.recipe}{'' if adv else ' without D (loss.adv_weight=0)'}, step {G.step}",
              (restored + 1) / 2 if signed else restored)
    if args.gan and holes:
        G, critic, _ = api._load(args.gan, critic=True)
        signed = G.value_range == "signed"
        x = clean * 2 - 1 if signed else clean
        filled = torch.cat([inpaint(G, x[i:i + 250], mask[i:i + 250], critic, args.gan_steps).x
                            for i in range(0, len(x), 250)])
        score(f"{G.cfg.train.recipe} G ({G.cfg.model.arch}, step {G.step}) by Yeh et al.'s search, "
              f"{args.gan_steps} steps", (filled + 1) / 2 if signed else filled)
    where = "the missing pixels" if holes else "the whole image"
    lines = [table_head("way", f"PSNR (dB, {where})", f"SSIM ({where})", "FID", "read as its label")]
    lines += [f"| {r['way']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['fid']:.2f} | {_percent(r['class_accuracy'])} |"
              for r in rows]
    text = (f"{machine_line()}; {len(clean)} held-out images ({held['from']}) of {cfg.data.name}, "
            f"data.degrade={cfg.data.degrade}; FID against {against} in {extractor.name} features\n\n"
            + "\n".join(lines) + "\n")
    write_results(args.out, text, rows)
    if args.picture:  # rows: the degraded inputs, each way's restorations (in the table's order), the originals
        save_image_grid(torch.cat([*pictures, clean[:PICTURE]]), Path(args.picture), "unit", nrow=PICTURE)
        print(f"picture: {args.picture} (rows: input, {', '.join(r['way'] for r in rows[1:] if r['shown'])}, original)")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f} %"


def smoke(tmp):
    need_data("mnist")
    cfg = validate.load(None, ["data.name=mnist", "data.max_images=256", "data.resolution=28", "data.degrade=box",
                               "model.G=unet", "model.D=patchgan", "model.width=4", "train.recipe=pix2pix",
                               "train.max_steps=2", "train.batch_size=16", "log.progress=false", "log.report=false",
                               f"run.dir={tmp / 'runs'}"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return ["--run", str(run_dir)]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", required=True, help="a restoration run on data.degrade (repeatable)")
    ap.add_argument("--gan", help="a GAN run (with its D) to fill the holes by Yeh et al.'s search")
    ap.add_argument("--gan-steps", type=int, default=1000, help="search steps for --gan (default 1000)")
    ap.add_argument("--feature-net", help="NAME.json of `ganforge featurenet train` (image folders: FID's features)")
    ap.add_argument("--picture", help="a PNG grid of the first held-out images restored each way")
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
