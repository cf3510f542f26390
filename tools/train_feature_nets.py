"""Train the domain feature networks shipped in src/ganforge/metrics/assets/.

    python tools/train_feature_nets.py mnist-cnn fashion-mnist-cnn [--epochs 8]

Deterministic: fixed seed, fixed data order, deterministic algorithms. Trains on the full training
split (random +-2 px shifts), reports accuracy on the test split, and writes
<name>.safetensors and <name>.json (sha256, test accuracy, architecture, command, versions).
Needs the full datasets on the data search path ($GANFORGE_DATA).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from ganforge.data import load_idx_split
from ganforge.metrics import featurenet
from ganforge.metrics.features import DomainCNN

DATASETS = {"mnist-cnn": "mnist", "fashion-mnist-cnn": "fashion-mnist"}
OUT = Path(__file__).resolve().parents[1] / "src/ganforge/metrics/assets"


def train_one(name: str, epochs: int, batch: int = 128, seed: int = 0) -> dict:
    ds = DATASETS[name]
    xtr, ytr, _ = load_idx_split(ds, "train")
    xte, yte, _ = load_idx_split(ds, "test")
    to_t = lambda a: torch.from_numpy(a).float().div_(255)[:, None]  # [N, 1, 28, 28] in [0, 1]
    xtr, xte, ytr, yte = to_t(xtr), to_t(xte), torch.from_numpy(ytr).long(), torch.from_numpy(yte).long()
    torch.manual_seed(seed)
    net = DomainCNN()
    t0 = time.time()
    acc = featurenet.fit(net, xtr, ytr, xte, yte, epochs, batch, seed, log=lambda s: print(s, flush=True), name=name)
    info = {"dataset": ds, "test_accuracy": acc, "arch": {"num_classes": 10, "width": 32, "feature_dim": 128},
            "epochs": epochs, "batch_size": batch, "seed": seed, "train_seconds": round(time.time() - t0, 1),
            "command": f"python tools/train_feature_nets.py {name} --epochs {epochs}"}
    return json.loads(featurenet.save(net.eval(), OUT, name, info).read_text())


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
