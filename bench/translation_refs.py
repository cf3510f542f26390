"""pix2pix and CycleGAN training steps written the way the reference repository
(junyanz/pytorch-CycleGAN-and-pix2pix: models/pix2pix_model.py, cycle_gan_model.py,
util/image_pool.py, data/aligned_dataset.py, unaligned_dataset.py) writes them, with the same
nets as ganforge's presets, for bench/translation.py's throughput comparison.

What the reference does and ganforge does not: a per-sample Dataset whose items are converted and
normalised one by one, then collated by a DataLoader; `set_requires_grad(net, False)` loops over
the parameters around each update; a target tensor built for every loss call (GANLoss); the image
pool in Python with torch.cat; Adam without fused kernels; NCHW float32 throughout.
"""

import itertools
import random

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class PairDataset(Dataset):
    """Each item converted on its own, as torchvision's ToTensor + Normalize((0.5,), (0.5,)) do."""

    def __init__(self, a_u8: torch.Tensor, b_u8: torch.Tensor, unaligned: bool):
        self.a, self.b, self.unaligned = a_u8, b_u8, unaligned

    def __len__(self):
        return len(self.a)

    def __getitem__(self, i):
        j = random.randint(0, len(self.b) - 1) if self.unaligned else i  # unaligned_dataset.py: a random B
        to = lambda t: (t.float() / 255 - 0.5) / 0.5  # noqa: E731
        return {"A": to(self.a[i]), "B": to(self.b[j])}


class GANLoss(nn.Module):
    """models/networks.py GANLoss: a target tensor of the prediction's shape for every call."""

    def __init__(self, mode: str):
        super().__init__()
        self.register_buffer("real_label", torch.tensor(1.0))
        self.register_buffer("fake_label", torch.tensor(0.0))
        self.loss = nn.MSELoss() if mode == "lsgan" else nn.BCEWithLogitsLoss()

    def __call__(self, prediction, target_is_real):
        target = (self.real_label if target_is_real else self.fake_label).expand_as(prediction)
        return self.loss(prediction, target)


def set_requires_grad(nets, requires_grad):
    for net in nets:
        for param in net.parameters():
            param.requires_grad = requires_grad


class ImagePool:
    """util/image_pool.py."""

    def __init__(self, pool_size):
        self.pool_size, self.num_imgs, self.images = pool_size, 0, []

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                return_images.append(image)
            elif random.uniform(0, 1) > 0.5:
                random_id = random.randint(0, self.pool_size - 1)
                tmp = self.images[random_id].clone()
                self.images[random_id] = image
                return_images.append(tmp)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)


def pix2pix_step(G, D, lambda_l1=100.0):
    """models/pix2pix_model.py optimize_parameters."""
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gan, l1 = GANLoss("vanilla"), nn.L1Loss()

    def step(batch):
        real_A, real_B = batch["A"], batch["B"]
        fake_B = G(real_A)
        set_requires_grad([D], True)
        opt_D.zero_grad()
        pred_fake = D(torch.cat((real_A, fake_B), 1).detach())
        pred_real = D(torch.cat((real_A, real_B), 1))
        loss_D = (gan(pred_fake, False) + gan(pred_real, True)) * 0.5
        loss_D.backward()
        opt_D.step()
        set_requires_grad([D], False)
        opt_G.zero_grad()
        pred_fake = D(torch.cat((real_A, fake_B), 1))
        loss_G = gan(pred_fake, True) + l1(fake_B, real_B) * lambda_l1
        loss_G.backward()
        opt_G.step()

    return step


def cyclegan_step(G_A, G_B, D_A, D_B, lambda_cycle=10.0, lambda_idt=0.5, pool_size=50):
    """models/cycle_gan_model.py optimize_parameters (G_A: A -> B, D_A judges B, as there)."""
    opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    gan, cycle, idt = GANLoss("lsgan"), nn.L1Loss(), nn.L1Loss()
    pool_A, pool_B = ImagePool(pool_size), ImagePool(pool_size)

    def backward_D_basic(netD, real, fake):
        loss_D = (gan(netD(real), True) + gan(netD(fake.detach()), False)) * 0.5
        loss_D.backward()

    def step(batch):
        real_A, real_B = batch["A"], batch["B"]
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        loss_idt_A = idt(G_A(real_B), real_B) * lambda_cycle * lambda_idt
        loss_idt_B = idt(G_B(real_A), real_A) * lambda_cycle * lambda_idt
        loss_G = (gan(D_A(fake_B), True) + gan(D_B(fake_A), True) + cycle(rec_A, real_A) * lambda_cycle
                  + cycle(rec_B, real_B) * lambda_cycle + loss_idt_A + loss_idt_B)
        loss_G.backward()
        opt_G.step()
        set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        backward_D_basic(D_A, real_B, pool_B.query(fake_B))
        backward_D_basic(D_B, real_A, pool_A.query(fake_A))
        opt_D.step()

    return step


def loader(a_u8, b_u8, batch, unaligned):
    return DataLoader(PairDataset(a_u8, b_u8, unaligned), batch_size=batch, shuffle=True, drop_last=True)
