"""Training a domain feature network: the recipe that built the shipped MNIST / Fashion-MNIST nets
(tools/train_feature_nets.py) and that `ganforge featurenet train DATA` runs on a user's labelled
image folder. Deterministic for a seed: fixed data order, +-2 px random shifts, AdamW with a
one-cycle schedule, label smoothing 0.05.

A net is two files, NAME.safetensors and NAME.json; the JSON records the sha256 of the weights,
the held-out accuracy, the architecture and input shape, the data and the command, so that every
metric record computed in its space can name it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.metrics.features import DomainCNN
from ganforge.core import paths
from ganforge.core.errors import DataError
from ganforge.core.io import atomic_write, atomic_write_text
from ganforge.data.folder import load_folder


def shift(x: torch.Tensor, g: torch.Generator, max_px: int = 2) -> torch.Tensor:
    """Random integer translations per image (zero padding), as one grid_sample call."""
    n = len(x)
    t = torch.randint(-max_px, max_px + 1, (n, 2), generator=g).float() * 2 / x.shape[-1]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(net, x, y) -> float:
    net.eval()
    correct = sum((net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(x), 1000))
    return correct / len(x)


def fit(net: DomainCNN, x_train, y_train, x_test, y_test, epochs: int, batch: int = 128, seed: int = 0,
        log=print, name: str = "net") -> float:
    """Train `net` in place on images in [0, 1]; returns the accuracy on (x_test, y_test). The
    caller seeds torch before building the net (initial weights and dropout share that stream)."""
    g = torch.Generator().manual_seed(seed)
    batch = min(batch, len(x_train))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * (len(x_train) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=g)
        for i in range(len(x_train) // batch):
            idx = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(net(shift(x_train[idx], g)), y_train[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log(f"{name} epoch {epoch + 1}/{epochs}: held-out accuracy {accuracy(net, x_test, y_test):.4f} "
            f"({time.time() - t0:.0f} s)")
    return accuracy(net, x_test, y_test)


def save(net: DomainCNN, out_dir: Path, name: str, info: dict) -> Path:
    """NAME.safetensors and NAME.json (written atomically); returns the JSON's path."""
    from safetensors.torch import save as to_bytes

    data = to_bytes({k: v.contiguous() for k, v in net.state_dict().items()})
    info = {"name": name, **info, "sha256": hashlib.sha256(data).hexdigest(), "torch": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor()}".strip()}
    atomic_write(out_dir / f"{name}.safetensors", lambda f: f.write(data))
    atomic_write_text(out_dir / f"{name}.json", json.dumps(info, indent=2) + "\n")
    return out_dir / f"{name}.json"


def held_out_split(y: torch.Tensor, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): `share` of each class held out (at least one image per
    class with two or more), chosen by a seeded permutation."""
    g = torch.Generator().manual_seed(seed)
    train, held = [], []
    for k in y.unique():
        idx = (y == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_held = max(1, round(share * len(idx))) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        train.append(idx[n_held:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def train_on_folder(root: str | Path, out_dir: str | Path, resolution: int, channels: int, epochs: int = 8,
                    name: str | None = None, background: str = "white", held_out: float = 0.1, seed: int = 0,
                    command: str = "", log=print) -> Path:
    """`ganforge featurenet train`: a DomainCNN on a folder with one sub-folder per class, accuracy
    measured on a held-out share of each class. Returns the JSON sidecar's path."""
    root = Path(root)
    name = name or f"{root.resolve().name}-cnn"
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise DataError(f"--name {name!r}: a file name without folders (the files go to --out)")
    out_dir = paths.output_dir(out_dir, "--out")
    for existing in (out_dir / f"{name}.safetensors", out_dir / f"{name}.json"):
        if existing.exists():
            raise DataError(f"{existing} exists: choose another --name or --out (nothing was overwritten)")
    images, labels, classes, scan = load_folder(root, resolution, channels, labels=True, background=background)
    if len(classes) < 2:
        raise DataError(f"{root}: a feature net learns to tell classes apart; found {len(classes)} class "
                        "sub-folder(s), need at least 2")
    x = torch.from_numpy(images).float().div_(255)
    y = torch.from_numpy(labels)
    train_idx, held_idx = held_out_split(y, held_out, seed)
    if len(held_idx) == 0 or len(train_idx) < 2:
        raise DataError(f"{root}: {scan.summary()}: too few images to train and hold out a share per class")
    torch.manual_seed(seed)
    net = DomainCNN(num_classes=len(classes), in_channels=channels)
    t0 = time.time()
    batch = min(128, max(16, len(train_idx) // 10))  # small folders: enough steps per epoch to learn
    acc = fit(net, x[train_idx], y[train_idx], x[held_idx], y[held_idx], epochs, batch, seed, log=log, name=name)
    arch = {"num_classes": len(classes), "width": 32, "feature_dim": 128, "in_channels": channels}
    info = {"dataset": str(root.resolve()), "classes": classes, "resolution": resolution, "channels": channels,
            "background": background, "test_accuracy": acc,
            "test_split": f"held out: {len(held_idx)} images ({held_out:.0%} of each class, seed {seed})",
            "num_train": len(train_idx), "arch": arch, "epochs": epochs, "batch_size": batch, "seed": seed,
            "train_seconds": round(time.time() - t0, 1), "command": command}
    return save(net.eval(), out_dir, name, info)
