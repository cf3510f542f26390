"""Training throughput: ganforge against reference loops written the way the textbook, pytorch/examples
and each family's public code write them, measured side by side in one process, alternating A B C.

    python -m bench.throughput --model mlp   [--steps 60] [--rounds 2] [--data mnist-embedded]
    python -m bench.throughput --model dcgan [--steps 60] [--rounds 2] [--device cuda]
    python -m bench.throughput --model wgan_gp|wgan_clip|sngan_hinge|lsgan|cgan [--steps 60] [--rounds 2]

A: the reference loop (per-sample Dataset + DataLoader with ToTensor/Normalize-style conversion,
   float32, torch's default optimizers; MLP: Sigmoid + BCELoss and a second G forward for the G
   step, as the textbook does; DCGAN: pytorch/examples dcgan). The family presets' references are in
   family_refs.py: WGAN-GP as caogang/wgan-gp (one backward per term, the penalty through
   autograd.grad(create_graph=True)), WGAN as martinarjovsky/WassersteinGAN (RMSprop, p.data.clamp_),
   SN-GAN with torch.nn.utils.spectral_norm and the hinge loss, LSGAN with MSELoss to 1 / 0, cGAN with
   one-hot rows and maps; plain nn modules with the preset's layer shapes and hyper-parameters,
   checked against the preset (parameter shapes, n_dis, optimizer, loss, ...) before timing.
B: `ganforge train` with the preset as a user runs it (configs/<preset>.yaml; train.precision=auto,
   which is bf16 on a CPU with avx512_bf16 / amx_bf16: "precision" in the report says what each ran).
C: B with train.precision=bf16 (every preset allows it; fp16 is refused with a gradient penalty);
DCGAN also D: channels_last, E: bf16 + channels_last; F (with --compile): bf16 + train.compile;
B_ganforge_fp32 (with --fp32): B in A's precision.
Reports samples/s = real images consumed by D per second (one step = one D update on one batch,
every n_dis-th step also a G update, on both sides; for n_dis > 1 --steps is rounded up to whole
n_dis cycles), the median over rounds of the steps after a warm-up, each ratio to A, and for the MLP
the achieved FLOP/s against this machine's measured GEMM rate for the same layer shapes.
"""

import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from bench import family_refs
from bench.common import (CONFIGS, WARMUP, MnistDataset, TextbookD, TextbookG, ganforge_samples_per_s, load_images,
                          machine, parser, reference_samples_per_s, run_script, textbook_step)
from bench.family_refs import DCGAN_D, DCGAN_G
from ganforge import config
from ganforge.recipes.base import resolve_precision


def reference_mlp(images, steps, batch, device="cpu"):
    loader = DataLoader(MnistDataset(images), batch_size=batch, shuffle=True, drop_last=True)
    G, D = TextbookG().to(device), TextbookD().to(device)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr=2e-4), torch.optim.Adam(D.parameters(), lr=2e-4)
    bce = nn.BCELoss()
    return reference_samples_per_s(loader, steps, batch, lambda x: textbook_step(G, D, opt_g, opt_d, bce, x), device)


def reference_dcgan(images, steps, batch, device="cpu"):
    loader = DataLoader(MnistDataset(images), batch_size=batch, shuffle=True, drop_last=True)
    netG, netD = DCGAN_G().to(device), DCGAN_D().to(device)
    opt_g = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()

    def step(real):
        b = real.size(0)
        netD.zero_grad()
        label = torch.full((b,), 1.0, device=device)
        bce(netD(real), label).backward()
        fake = netG(torch.randn(b, 100, 1, 1, device=device))
        label.fill_(0.0)
        bce(netD(fake.detach()), label).backward()
        opt_d.step()
        netG.zero_grad()
        label.fill_(1.0)
        bce(netD(fake), label).backward()
        opt_g.step()

    return reference_samples_per_s(loader, steps, batch, step, device)


def gemm_rate(shapes, batch, dtype, repeats=20):
    """Measured FLOP/s of the MLP's own layer GEMMs (forward shapes) in `dtype`."""
    flops, seconds = 0, 0.0
    for d_in, d_out in shapes:
        a, w = torch.randn(batch, d_in, dtype=dtype), torch.randn(d_in, d_out, dtype=dtype)
        for _ in range(3):
            a @ w
        t = time.perf_counter()
        for _ in range(repeats):
            a @ w
        seconds += time.perf_counter() - t
        flops += 2 * batch * d_in * d_out * repeats
    return flops / seconds


def mlp_flops_per_sample():
    G = [(128, 256), (256, 512), (512, 1024), (1024, 784)]
    D = [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    g, d = sum(a * b for a, b in G), sum(a * b for a, b in D)
    # ganforge's step: G fwd + G bwd (2x) = 3G; D fwd on real+fake (2D) + D bwd (4D) + D fwd in the
    # G step (1D) + input-gradient backward through frozen D (1D) = 8D. FLOPs = 2 x MACs.
    return 2 * (3 * g + 8 * d), G + D


def variants(model: str, with_compile: bool, with_fp32: bool = False) -> dict[str, list[str]]:
    """ganforge settings compared against the reference (A), as config overrides."""
    v = {"B_ganforge": [], "C_ganforge_bf16": ["train.precision=bf16"]}
    if with_fp32:
        v["B_ganforge_fp32"] = ["train.precision=fp32"]
    if model == "dcgan":
        v["D_ganforge_channels_last"] = ["train.channels_last=true"]
        v["E_ganforge_bf16_channels_last"] = ["train.precision=bf16", "train.channels_last=true"]
    if with_compile:
        v["F_ganforge_bf16_compile"] = ["train.precision=bf16", "train.compile=true"]
    return v


PRESETS = {"mlp": ("mnist_mlp.yaml", 512), "dcgan": ("mnist_dcgan.yaml", 128),
           **{name: (f.preset, f.batch) for name, f in family_refs.FAMILIES.items()}}


def reference(model, images, data, steps, batch, device="cpu"):
    """A: the reference loop's samples/s over `steps` counted steps after the warm-up."""
    if model == "mlp":
        return reference_mlp(images, steps, batch, device)
    if model == "dcgan":
        return reference_dcgan(images, steps, batch, device)
    loader, step = family_refs.reference(model, images, data)
    return reference_samples_per_s(loader, steps, batch, step)


def family_setup(model, data, steps):
    """For a family preset: fail on any difference between the reference and the preset, and round
    `steps` up to whole n_dis cycles (the warm-up is whole cycles too) so that A and B time as many
    G updates."""
    f = family_refs.FAMILIES[model]
    cfg = config.load(CONFIGS / f.preset, [f"data.name={data}",
                                                    *([f"model.num_classes={f.classes}"] if f.classes else [])])
    problems = family_refs.parity_problems(model, cfg)
    if problems:
        sys.exit(f"the {model} reference does not match {f.preset}:\n  " + "\n  ".join(problems))
    assert WARMUP % f.n_dis == 0, f"the warm-up of {WARMUP} steps is not whole n_dis={f.n_dis} cycles"
    return -(-steps // f.n_dis) * f.n_dis


def resolved_precision(preset, data, overrides, device="cpu"):
    cfg = config.load(CONFIGS / preset, [f"data.name={data}", *overrides])
    return resolve_precision(cfg.train.precision, torch.device(device))


def run(args) -> None:
    if args.device != "cpu" and args.model not in ("mlp", "dcgan"):
        sys.exit(f"--device {args.device}: the mlp and dcgan references run on any device; the family references on the CPU only")
    images = load_images(args.data)
    preset, batch = PRESETS[args.model]
    steps = family_setup(args.model, args.data, args.steps) if args.model in family_refs.FAMILIES else args.steps
    settings = {k: [*v, f"train.device={args.device}"] for k, v in variants(args.model, args.compile, args.fp32).items()}
    results = {"A_reference": [], **{k: [] for k in settings}}
    for r in range(args.rounds):
        results["A_reference"].append(reference(args.model, images, args.data, steps, batch, args.device))
        for name, overrides in settings.items():
            results[name].append(ganforge_samples_per_s(preset, args.data, steps, overrides))
        print(f"round {r + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    report = {"model": args.model, "preset": preset, "batch": batch, "steps": steps, "rounds": args.rounds,
              "samples_per_s": {k: round(v, 1) for k, v in med.items()},
              "over_A": {k: round(v / med["A_reference"], 3) for k, v in med.items()},
              "all_rounds": results, "settings": settings,
              "device": args.device, "precision": {"A_reference": "fp32",
                            **{k: resolved_precision(preset, args.data, o, args.device) for k, o in settings.items()}},
              **machine()}
    if args.model == "mlp" and args.device == "cpu":
        flops, shapes = mlp_flops_per_sample()
        rates = {torch.float32: gemm_rate(shapes, batch, torch.float32),
                 torch.bfloat16: gemm_rate(shapes, batch, torch.bfloat16)}
        for key in settings:  # the GEMM rate of the precision each variant resolved to
            rate = rates[torch.bfloat16 if report["precision"][key] == "bf16" else torch.float32]
            achieved = med[key] * flops
            report[f"{key}_flops"] = {"achieved_gflops": achieved / 1e9, "gemm_peak_gflops": rate / 1e9,
                                      "fraction": achieved / rate}
    print(json.dumps(report, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))


def smoke(tmp: Path) -> list[str]:
    # a family preset: its reference is checked against the preset before it is timed
    return ["--model", "cgan", "--steps", "2", "--rounds", "1", "--out", str(tmp / "throughput.json")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--model", choices=list(PRESETS), default="mlp")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", default="mnist-embedded")
    ap.add_argument("--compile", action="store_true", help="also time train.compile=true (bf16)")
    ap.add_argument("--fp32", action="store_true", help="also time train.precision=fp32 (A's precision)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides train (mlp, dcgan)")
    ap.add_argument("--out", default=None)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
