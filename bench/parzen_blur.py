"""How much does a barely visible blur move the Parzen score? (Theis et al. 2016, in numbers.)

    python -m bench.parzen_blur --run runs/00002-mnist_goodfellow2014 [--blur 0.4 0.5 0.6 0.8]
                                [--out bench/out/parzen_blur.json]

Scores, with the full Goodfellow et al. protocol (ganforge.metrics.parzen), 10,000 kernel centres
taken from the generator of --run (latents seed 0) and from real training images train[0:10000],
each as they are and after a 5x5 Gaussian blur of the given widths (in pixels). Prints a Markdown
table: Parzen score, chosen sigma, the mean squared distance from a test image to its nearest
centre, and the share of grey pixels (0.1 < p < 0.9; MNIST test images: 8.6 %).
"""

import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common import need_data, parser, run_script, table_head, tiny_run, to_unit, unit_images
from ganforge import load_generator
from ganforge.data import load_idx_split
from ganforge.metrics.parzen import parzen_protocol


def gaussian_blur(x: torch.Tensor, width: float) -> torch.Tensor:
    """Separable 5x5 Gaussian blur with standard deviation `width` pixels; [N, 1, H, W] in [0, 1]."""
    r = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-r ** 2 / (2 * width ** 2))
    k = k / k.sum()
    return F.conv2d(x, (k[:, None] * k[None]).view(1, 1, 5, 5), padding=2)


def grey_share(x: torch.Tensor) -> float:
    return ((x > 0.1) & (x < 0.9)).float().mean().item()


def generated(source: str, n: int) -> tuple[torch.Tensor, int]:
    G = load_generator(source)
    return to_unit(G.sample(n, seed=0), G.value_range), G.step


def run(args) -> None:
    train, _, _ = load_idx_split("mnist", "train")
    valid, _, _ = load_idx_split("mnist", "validation")
    test, _, _ = load_idx_split("mnist", "test")
    valid, test = unit_images(valid[:1000]), unit_images(test)
    fake, step = generated(args.run, args.centres)
    centre_sets = {f"generated ({args.run}, step {step})": fake,
                   f"real train[0:{args.centres}]": unit_images(train[:args.centres])}
    rows = []
    print(table_head("centres", "blur (px)", "Parzen log-likelihood", "sigma", "nearest d2", "grey pixels"))
    for name, centres in centre_sets.items():
        for width in [0.0, *args.blur]:
            c = gaussian_blur(centres, width) if width else centres
            t0 = time.perf_counter()
            r = parzen_protocol(c, valid, test)
            rows.append({"centres": name, "blur_px": width, "parzen": r.mean, "stderr": r.stderr, "sigma": r.sigma,
                         "nearest_d2": r.test_nearest_d2, "grey_share": grey_share(c),
                         "seconds": time.perf_counter() - t0})
            print(f"| {name} | {width or 'none'} | {r.mean:.0f} +- {r.stderr:.1f} | {r.sigma:.3f} | "
                  f"{r.test_nearest_d2:.2f} | {100 * grey_share(c):.1f} % |", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "test_grey_share": grey_share(test)}, indent=2))


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    run_dir = tiny_run(tmp, "mnist_goodfellow2014.yaml", "data.split=train", "model.width=10")
    return ["--run", str(run_dir), "--blur", "0.5", "--centres", "100", "--out", str(tmp / "parzen_blur.json")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", required=True, help="checkpoint, run folder or export of an MNIST generator")
    ap.add_argument("--blur", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.8])
    ap.add_argument("--centres", type=int, default=10_000, help="kernel centres per set (the protocol's 10,000)")
    ap.add_argument("--out", default="bench/out/parzen_blur.json")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
