"""Does StyleGAN's fixed eval-mode noise lower its measured recall? One trained StyleGAN evaluated
twice on the same latents: with the constant noise maps of ganforge's eval mode (what every metric
in ganforge uses, so a seed is one image), and with fresh noise per sample (what the reference
code's metrics use).

    GANFORGE_DATA=../shared/data python -m bench.stylegan_eval_noise RUN [--num-samples 10000 --seed 1000]

RUN: a StyleGAN run folder, checkpoint or export (e.g. one of bench/equal_time.py's runs).
"""

import contextlib
import sys
from unittest import mock

import torch
import torch.nn.functional as F

from bench.common import parser, table_head
from ganforge import load_generator
from ganforge.metrics import evaluate_generator
from ganforge.nets import stylegan


def fresh_noise_forward(self, x, w):
    """StyleLayer.forward with the training mode's noise (new per sample) in eval mode too."""
    x = self.conv(x, w)
    noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device)
    x = x + noise * self.noise_strength + self.bias[None, :, None, None]
    return F.leaky_relu(x, 0.2) * stylegan.LRELU_GAIN


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("run")
    ap.add_argument("--num-samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1000, help="latent seed (bench/equal_time.py uses 1000 + train seed)")
    args = ap.parse_args()
    G = load_generator(args.run)
    if not G.num_ws:
        sys.exit(f"{args.run}: not a StyleGAN generator")
    print(table_head("noise in evaluation", "FID", "precision", "recall", "density", "coverage"))
    for label, patch in (("fixed maps (eval mode)", None), ("fresh per sample", fresh_noise_forward)):
        torch.manual_seed(123)  # the fresh noise's stream
        with mock.patch.object(stylegan.StyleLayer, "forward", patch) if patch else contextlib.nullcontext():
            r = {x["metric"]: x for x in evaluate_generator(G, ["fid", "prdc"], args.num_samples, seed=args.seed)}
        p = r["prdc"]
        print(f"| {label} | {r['fid']['value']:.3f} | {p['precision']:.3f} | {p['recall']:.3f} | {p['density']:.3f} "
              f"| {p['coverage']:.3f} |", flush=True)
    strengths = ", ".join(f"{float(layer.noise_strength.detach()):.4f}" for layer in G.G.layers)
    print(f"learnt noise strengths per layer: {strengths}")


if __name__ == "__main__":
    main()
