"""The seed chapter's MNIST GAN loop, written the way the textbook writes it (reference for benchmarks).

A per-sample Dataset with ToTensor / Normalize-style conversion behind a DataLoader, a Sigmoid head
with nn.BCELoss, a second generator forward for the G step, float32. Only the layer sizes and
hyper-parameters are shared with ganforge; nothing else is imported from it except the data loader
(and the image grid of the samples at the end). The dataset, nets and step are in bench/common.py,
shared with bench/throughput.py's reference.

    python -m bench.textbook_loop --steps 300 [--data mnist-embedded|mnist] [--out DIR]
"""

import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from bench.common import MnistDataset, TextbookD, TextbookG, load_images, parser, run_script, textbook_step
from ganforge.core.images import save_image_grid


def run(args) -> None:
    torch.manual_seed(args.seed)
    loader = DataLoader(MnistDataset(load_images(args.data)), batch_size=args.batch_size, shuffle=True)
    G, D = TextbookG(), TextbookD()
    optim_g, optim_d = torch.optim.Adam(G.parameters(), lr=2e-4), torch.optim.Adam(D.parameters(), lr=2e-4)
    criterion = nn.BCELoss()
    step, t0, log = 0, time.perf_counter(), []
    while step < args.steps:
        for image in loader:
            loss_d, loss_g, out_real, out_fake = textbook_step(G, D, optim_g, optim_d, criterion, image)
            step += 1
            if step % 50 == 0:
                log.append({"step": step, "loss_D": loss_d.item(), "loss_G": loss_g.item(),
                            "D_x": out_real.mean().item(), "D_G_z": out_fake.mean().item()})
                print(json.dumps(log[-1]))
            if step >= args.steps:
                break
    elapsed = time.perf_counter() - t0
    print(json.dumps({"steps": step, "seconds": elapsed, "samples_per_s": step * args.batch_size / elapsed}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        save_image_grid(G(torch.randn(64, G.nz)), out / "samples.png", "signed")


def smoke(tmp: Path) -> list[str]:
    return ["--steps", "3", "--batch-size", "16", "--out", str(tmp)]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--data", default="mnist-embedded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/textbook")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
