"""Train the domain feature networks shipped in src/ganforge/metrics/assets/.

    python tools/train_feature_nets.py mnist-cnn fashion-mnist-cnn [--epochs 8]

Deterministic: fixed seed, fixed data order, deterministic algorithms. Trains on the full training
split (random +-2 px shifts), reports accuracy on the test split, and writes
<name>.safetensors and <name>.json (sha256, test accuracy, architecture, command, versions).
Needs the full datasets on the data search path ($GANFORGE_DATA).
"""

import argparse
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ganforge.data import load_idx_split
from ganforge.metrics.features import DomainCNN

DATASETS = {"mnist-cnn": "mnist", "fashion-mnist-cnn": "fashion-mnist"}
OUT = Path(__file__).resolve().parents[1] / "src/ganforge/metrics/assets"


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


def train_one(name: str, epochs: int, batch: int = 128, seed: int = 0) -> dict:
    ds = DATASETS[name]
    xtr, ytr, _ = load_idx_split(ds, "train")
    xte, yte, _ = load_idx_split(ds, "test")
    to_t = lambda a: torch.from_numpy(a).float().div_(255)[:, None]  # [N, 1, 28, 28] in [0, 1]
    xtr, xte, ytr, yte = to_t(xtr), to_t(xte), torch.from_numpy(ytr).long(), torch.from_numpy(yte).long()
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = DomainCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    steps = epochs * (len(xtr) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xtr), generator=g)
        for i in range(len(xtr) // batch):
            idx = order[i * batch:(i + 1) * batch]
            loss = F.cross_entropy(net(shift(xtr[idx], g)), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"{name} epoch {epoch + 1}/{epochs}: test accuracy {accuracy(net, xte, yte):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = accuracy(net, xte, yte)
    from safetensors.torch import save

    data = save({k: v.contiguous() for k, v in net.state_dict().items()})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.safetensors").write_bytes(data)
    info = {"name": name, "dataset": ds, "sha256": hashlib.sha256(data).hexdigest(), "test_accuracy": acc,
            "arch": {"num_classes": 10, "width": 32, "feature_dim": 128}, "epochs": epochs, "batch_size": batch,
            "seed": seed, "train_seconds": round(time.time() - t0, 1),
            "command": f"python tools/train_feature_nets.py {name} --epochs {epochs}",
            "torch": torch.__version__, "machine": f"{platform.machine()} {platform.processor()}".strip()}
    (OUT / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="+", choices=sorted(DATASETS))
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    for name in args.names:
        info = train_one(name, args.epochs)
        print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
