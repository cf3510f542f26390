"""The seed chapter's MNIST GAN loop, written the way the textbook writes it (reference for benchmarks).

A per-sample Dataset with ToTensor / Normalize-style conversion behind a DataLoader, a Sigmoid head
with nn.BCELoss, a second generator forward for the G step, float32. Only the layer sizes and
hyper-parameters are shared with ganforge; nothing else is imported from it except the data loader.

    python bench/textbook_loop.py --steps 300 [--data mnist-embedded|mnist] [--out DIR]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class MnistDataset(Dataset):
    def __init__(self, images_u8):
        self.images = images_u8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0)[None]  # ToTensor
        return (x - 0.5) / 0.5  # Normalize((0.5,), (0.5,))


class Generator(nn.Module):
    def __init__(self, nz=128):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(nn.Linear(nz, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                                  nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, x):
        return self.main(x).view(-1, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, x):
        return self.main(x.view(-1, 784))


def load_images(name):
    from ganforge.data import load_embedded_mnist, load_idx_split

    if name == "mnist-embedded":
        return load_embedded_mnist()[0]
    return load_idx_split("mnist", "train")[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--data", default="mnist-embedded")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/textbook")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    loader = DataLoader(MnistDataset(load_images(args.data)), batch_size=args.batch_size, shuffle=True)
    G, D = Generator(), Discriminator()
    optim_g, optim_d = torch.optim.Adam(G.parameters(), lr=2e-4), torch.optim.Adam(D.parameters(), lr=2e-4)
    criterion = nn.BCELoss()
    step, t0, log = 0, time.perf_counter(), []
    while step < args.steps:
        for image in loader:
            b = image.size(0)
            real_label, fake_label = torch.ones(b, 1), torch.zeros(b, 1)
            # D step
            data_fake = G(torch.randn(b, 128)).detach()
            optim_d.zero_grad()
            out_real, out_fake = D(image), D(data_fake)
            loss_d = criterion(out_real, real_label) + criterion(out_fake, fake_label)
            loss_d.backward()
            optim_d.step()
            # G step (a second generator forward)
            data_fake = G(torch.randn(b, 128))
            optim_g.zero_grad()
            loss_g = criterion(D(data_fake), real_label)
            loss_g.backward()
            optim_g.step()
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
    from ganforge.reporting import save_image_grid

    with torch.no_grad():
        save_image_grid(G(torch.randn(64, 128)), out / "samples.png", "signed")


if __name__ == "__main__":
    main()
