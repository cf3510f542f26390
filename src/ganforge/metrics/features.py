"""Domain feature networks: small CNN classifiers for MNIST and Fashion-MNIST.

Inception weights cannot be downloaded everywhere, and an ImageNet network is a poor judge of
28x28 digits anyway. ganforge trains one small classifier per domain with a deterministic script
(tools/train_feature_nets.py), ships the weights inside the package with their sha256 and test
accuracy, and uses the 128-d penultimate activations as the feature space of FID, KID and PRDC and
the predictions for mode metrics. Every metric record names the extractor and its sha256; numbers
from different extractors are never comparable and never mixed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ganforge.core.errors import GanforgeError
from ganforge.data import DATASETS


class DomainCNN(nn.Module):
    """[N, C, H, W] in [0, 1] -> class logits; `features` gives the 128-d penultimate layer. The
    shipped nets see [N, 1, 28, 28]; nets trained on a user's folder (`ganforge featurenet train`)
    see its channels and resolution, pooled to the same 7 x 7 grid before the linear layer."""

    _CONV_STACK = 11  # body[:11] is the convolutional part; body[11:] flattens and projects

    def __init__(self, num_classes: int = 10, width: int = 32, feature_dim: int = 128, in_channels: int = 1):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.BatchNorm2d(4 * w), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * w * 49, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def conv_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature maps ([N, 4 width, H / 4, W / 4]): what SRGAN's content
        loss compares (there in VGG19's last conv block)."""
        return self.body[:self._CONV_STACK](x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_features(x)
        if h.shape[-2:] != (7, 7):  # other resolutions than 28 (an identity at 28 x 28)
            h = nn.functional.adaptive_avg_pool2d(h, 7)
        return self.body[self._CONV_STACK:](h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Extractor:
    name: str
    sha256: str
    test_accuracy: float | None
    net: DomainCNN

    @torch.no_grad()
    def run(self, x01: torch.Tensor, batch: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """(features [N, 128], predicted labels [N]) for images in [0, 1]."""
        feats, preds = [], []
        for i in range(0, len(x01), batch):
            x = x01[i:i + batch]
            f = self.net.features(x.float().div(255) if x.dtype == torch.uint8 else x.float())
            feats.append(f)
            preds.append(self.net.head(f).argmax(1))
        return torch.cat(feats), torch.cat(preds)


def _asset(name: str):
    return resources.files("ganforge.metrics").joinpath("assets", name)


def load_extractor(name: str) -> Extractor:
    """A feature network shipped inside the package (mnist-cnn, fashion-mnist-cnn)."""
    weights, meta = _asset(f"{name}.safetensors"), _asset(f"{name}.json")
    if not weights.is_file():
        raise GanforgeError(f"feature network '{name}' is not shipped with this installation; build it with "
                            f"`python tools/train_feature_nets.py {name}`")
    return _extractor(name, weights.read_bytes(), json.loads(meta.read_text()), "reinstall ganforge")


def load_extractor_file(path: str | Path) -> tuple[Extractor, dict]:
    """A feature network trained by `ganforge featurenet train` (NAME.safetensors beside NAME.json),
    with its description."""
    path = Path(path)
    weights, meta = path.with_suffix(".safetensors"), path.with_suffix(".json")
    for f in (weights, meta):
        if not f.is_file():
            raise GanforgeError(f"eval.feature_net={path}: {f} is missing (a feature net is NAME.safetensors "
                                "with its NAME.json, as `ganforge featurenet train` writes them)")
    try:
        info = json.loads(meta.read_text())
        if not isinstance(info, dict) or "sha256" not in info:
            raise ValueError("no sha256")
    except ValueError as e:
        raise GanforgeError(f"{meta}: not a feature-net description ({e})") from None
    return _extractor(info.get("name", path.stem), weights.read_bytes(), info, "train it again"), info


def extractor_for(cfg, path: str | None = None) -> tuple[Extractor | None, str]:
    """The domain feature net for a model's images: `path` (a `ganforge featurenet train` file), else
    the config's eval.feature_net, else the net shipped for its dataset (MNIST, Fashion-MNIST);
    (None, why) where there is none."""
    path = path or cfg.eval.feature_net
    if path:
        extractor, info = load_extractor_file(path)
        shape = (info.get("channels"), info.get("resolution"))
        if shape != (cfg.data.channels, cfg.data.resolution):
            raise GanforgeError(f"feature net {path}: trained on {shape[0]}-channel {shape[1]} px images; this "
                                f"model makes {cfg.data.channels}-channel {cfg.data.resolution} px images")
        return extractor, extractor.name
    name = DATASETS[cfg.data.name].feature_net
    if name is None or name == "inception-v3":
        return None, (f"no domain feature net for {cfg.data.name} data (train one with `ganforge featurenet "
                      "train FOLDER` and name it in eval.feature_net)")
    return load_extractor(name), name


def _extractor(name: str, data: bytes, info: dict, fix: str) -> Extractor:
    sha = hashlib.sha256(data).hexdigest()
    if sha != info["sha256"]:
        raise GanforgeError(f"feature network '{name}' is damaged (sha256 {sha[:12]} != {info['sha256'][:12]}); {fix}")
    from safetensors.torch import load as load_bytes

    try:
        net = DomainCNN(**info.get("arch", {}))
        net.load_state_dict(load_bytes(data))
    except (TypeError, RuntimeError, ValueError) as e:  # an edited "arch", or weights of another shape
        raise GanforgeError(f"feature network '{name}': its weights do not fit its recorded architecture "
                            f"({str(e).splitlines()[0][:120]}); {fix}") from None
    return Extractor(name, sha, info.get("test_accuracy"), net.eval())
