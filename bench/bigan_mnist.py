"""BiGAN's permutation-invariant MNIST table (Donahue et al. 2017), by the authors' evaluation
protocol (`jeffdonahue/bigan`, train_gan.py `deploy` and `eval_and_disp`), beside baselines.

    ganforge train configs/mnist_bigan.yaml train.max_steps=9750        # 25 epochs of 390 steps
    ganforge train configs/mnist_encoder.yaml model.G_from=RUN model.E=bigan   # a latent regressor
    python -m bench.bigan_mnist --run RUN --run LR_RUN --out bench/out/bigan_mnist

For every encoder (and for raw pixels, and for the untrained BiGAN's encoder at its initial
weights, the reference's "epoch 0"):

- deploy: batch-norm statistics re-estimated over 1000 training batches of 128 (the mean of the
  batches' means and unbiased variances: BatchNorm with momentum None), for E and for G on fresh
  z; a softmax regression on E's penultimate features (no bias, W from zero) trained in the same
  1000 steps by Adam (lr --lr, betas 0.5 / 0.999, L2 2.5e-5) on the batches' labels, features in
  training mode (batch statistics), as the reference does;
- NNC_e-: 1-nearest-neighbour accuracy (Euclidean) of the held-out images' features (evaluation
  mode) against the 50,000 training images'; CLS_e-: that regression's accuracy on them;
- EGr: the mean over held-out images of |x - G(E(x))|_2 in [0, 1] pixels; EGr_b: the same against
  the next image of its batch of 128 (a random other image): EGr / EGr_b below 1 means the
  reconstruction resembles its own image.

The held-out images are MNIST's training images 50,000-59,999 (split `validation`; the reference
holds out a random 10,000 of the 60,000) and, as a second row, the 10,000 test images. The
published figures are the README's of jeffdonahue/bigan.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import machine_line, need_data, parser, real_split, run_script, table_head, write_results
from ganforge import api, config, training, validate
from ganforge.core.latent import sample_z

DEPLOY_ITERS, BATCH, L2 = 1000, 128, 2.5e-5
PUBLISHED = [  # jeffdonahue/bigan README: epoch, NNC_e-, CLS_e-, EGr, EGr_b
    ("BiGAN, published (epoch 0)", 96.84, 91.39, 13.64, 13.64),
    ("BiGAN, published (epoch 25)", 96.28, 91.33, 7.29, 9.51),
    ("BiGAN, published (epoch 200)", 97.14, 92.63, 6.04, 9.91),
    ("BiGAN, published (epoch 400)", 97.35, 79.48, 5.95, 9.60),
]


def reestimate(net: nn.Module) -> nn.Module:
    """A copy of `net` whose batch norms will average the statistics of the batches it sees next."""
    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: the mean of per-batch means and variances
    return net.train()


def deploy(features, x_train: torch.Tensor, y_train: torch.Tensor, lr: float, seed: int, iters: int,
           also=None) -> torch.Tensor:
    """The reference's deploy: `iters` training batches through `features` (training mode, batch
    statistics accumulated), a softmax regression on them; `also(n)` runs beside (G on fresh z).
    Returns the regression's weights."""
    g = torch.Generator().manual_seed(seed)
    W = None
    for _ in range(iters):
        idx = torch.randint(len(x_train), (BATCH,), generator=g)
        with torch.no_grad():
            f = features(x_train[idx])
            if also is not None:
                also(BATCH)
        if W is None:
            W = torch.zeros(f.shape[1], 10, requires_grad=True)
            opt = torch.optim.Adam([W], lr=lr, betas=(0.5, 0.999), weight_decay=L2)
        loss = F.cross_entropy(f @ W, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach()


@torch.no_grad()
def features_of(features, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([features(x[i:i + batch]) for i in range(0, len(x), batch)])


@torch.no_grad()
def nn_accuracy(ref: torch.Tensor, ref_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor) -> float:
    """1-nearest-neighbour accuracy, Euclidean distance."""
    ref_sq = ref.pow(2).sum(1)
    hits = 0
    for i in range(0, len(query), 500):
        q = query[i:i + 500]
        d = ref_sq[None] - 2 * q @ ref.T  # |q|^2 is the same along each row
        hits += int((ref_y[d.argmin(1)] == query_y[i:i + 500]).sum())
    return 100.0 * hits / len(query)


@torch.no_grad()
def reconstruction(E: nn.Module, G: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(EGr, EGr_b): mean |x - G(E(x))|_2, and against the next image of each batch of 128."""
    own, other = [], []
    for i in range(0, len(x), BATCH):
        xb = x[i:i + BATCH]
        x_hat = G(E(xb)).reshape(len(xb), -1)
        flat = xb.reshape(len(xb), -1)
        own.append((x_hat - flat).norm(dim=1))
        other.append((x_hat - flat.roll(-1, 0)).norm(dim=1))
    return float(torch.cat(own).mean()), float(torch.cat(other).mean())


def evaluate(label: str, features, x_train, y_train, held_out: dict, lr: float, seed: int, iters: int,
             E=None, G=None, z_sampler=None) -> list[dict]:
    """One source of features: deploy (re-estimate E's and G's statistics, train the regression),
    then every metric on each held-out set."""
    if E is not None:
        E, G = reestimate(E), reestimate(G)
        features = E.features
    W = deploy(features, x_train, y_train, lr, seed, iters, (lambda n: G(z_sampler(n))) if G is not None else None)
    if E is not None:
        E.eval(), G.eval()
    ref = features_of(features, x_train)
    rows = []
    for split, (x, y) in held_out.items():
        f = features_of(features, x)
        row = {"source": label, "held_out": split, "NNC_e-": nn_accuracy(ref, y_train, f, y),
               "CLS_e-": 100.0 * float(((f @ W).argmax(1) == y).float().mean())}
        if E is not None:
            row["EGr"], row["EGr_b"] = reconstruction(E, G, x)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def untrained(cfg_path: Path, overrides: list[str]):
    """The BiGAN's G and E at their initial weights (the reference's epoch 0)."""
    cfg = validate.load(cfg_path, overrides)
    _, recipe, _ = training.prepare(cfg, torch.device("cpu"))
    return recipe.generator()


def z_sampler_of(G, seed: int):
    g = torch.Generator().manual_seed(seed)
    return lambda n: sample_z(n, G.cfg.model.z_dim, G.cfg.model.z_dist, g)


def table(rows: list[dict]) -> str:
    lines = [table_head("encoder", "held out", "NNC_e- %", "CLS_e- %", "EGr", "EGr_b", "EGr / EGr_b")]
    for r in rows:
        egr = (f"{r['EGr']:.2f}", f"{r['EGr_b']:.2f}", f"{r['EGr'] / r['EGr_b']:.3f}") if "EGr" in r else ("-",) * 3
        lines.append(f"| {r['source']} | {r['held_out']} | {r['NNC_e-']:.2f} | {r['CLS_e-']:.2f} | " + " | ".join(egr) + " |")
    for label, nnc, cls, egr, egr_b in PUBLISHED:
        lines.append(f"| {label} | random 10,000 of train | {nnc:.2f} | {cls:.2f} | {egr:.2f} | {egr_b:.2f} | "
                     f"{egr / egr_b:.3f} |")
    return "\n".join(lines)


def run(args) -> None:
    x_train, y_train = real_split(args.data, "train50k")
    held_out = {"validation": real_split(args.data, "validation"), "test": real_split(args.data, "test")}
    if args.limit:  # smoke runs: a few images
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        held_out = {k: (x[:args.limit // 4], y[:args.limit // 4]) for k, (x, y) in held_out.items()}
    rows = evaluate("raw pixels", lambda x: x.flatten(1), x_train, y_train, held_out, args.lr, args.seed, args.iters)
    G0 = untrained(args.config, args.override)
    rows += evaluate("BiGAN E at its initial weights (epoch 0)", None, x_train, y_train, held_out, args.lr, args.seed,
                     args.iters, G0.E, G0.G, z_sampler_of(G0, args.seed))
    for run_dir in args.run:
        G = api.load_generator(run_dir)
        cfg = config.load(Path(run_dir) / "config.yaml") if Path(run_dir).is_dir() else G.cfg
        epochs = G.step / (50_000 // cfg.train.batch_size)
        label = f"{cfg.train.recipe} {Path(run_dir).name}, step {G.step} ({epochs:g} epochs)"
        rows += evaluate(label, None, x_train, y_train, held_out, args.lr, args.seed, args.iters, G.E, G.G,
                         z_sampler_of(G, args.seed))
    text = f"{machine_line()}\n\n{table(rows)}\n"
    write_results(args.out, text, rows)


def smoke(tmp: Path) -> list[str]:
    need_data("mnist")
    return ["--limit", "512", "--iters", "5", "--override", "model.width=32", "--override", "data.name=mnist-embedded",
            "--override", "data.split=train"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", default=[], help="a bigan or encoder run (repeatable)")
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs/mnist_bigan.yaml",
                    help="the BiGAN config whose initial weights make the epoch-0 row")
    ap.add_argument("--override", action="append", default=[], help="KEY=VALUE for --config")
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--lr", type=float, default=2e-4, help="the regression's learning rate (the run's current one)")
    ap.add_argument("--iters", type=int, default=DEPLOY_ITERS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)  # smoke runs
    ap.add_argument("--out", type=Path)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
