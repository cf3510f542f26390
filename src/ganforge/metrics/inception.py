"""The field's standard FID feature space: Inception-v3 as TensorFlow's FID code runs it (the
network of pytorch-fid and clean-fid), in plain PyTorch (no torchvision), with 2048-d features
from the final average pool.

The weights are the published pytorch-fid file, `pt_inception-2015-12-05-6726825d.pth` (the 2015
TensorFlow graph's weights ported to PyTorch). They are fetched on first use, verified by their
sha256, and cached beside the datasets (`<cache>/weights/`); on a machine without internet, put
the file anywhere and set `eval.inception_weights=PATH` (or $GANFORGE_INCEPTION_WEIGHTS).

The FID variant differs from the ImageNet classifier in three places, all kept here: average
pools inside the Mixed blocks ignore the zero padding (TensorFlow's behaviour), and the last
block's pool branch takes a max instead of an average. Inputs in [0, 1] are resized to 299 x 299
(bilinear) and scaled to [-1, 1]; grey images are repeated over three channels.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.core.errors import GanforgeError
from ganforge.core.io import default_file_mode
from ganforge.core.pickles import imported_code
from ganforge.data.fetch import download
from ganforge.data.sources import cache_dir

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{WEIGHTS_FILE}"
# The file name carries the first 8 hex digits of this digest (torch.hub's convention).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FEATURE_DIM = 2048


class Conv(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, TensorFlow's), ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):  # TensorFlow's average pool: the zero padding is not counted
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):  # 35 x 35 blocks (Mixed_5b-d)
    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = Conv(c_in, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = Conv(c_in, 48, 1), Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = Conv(c_in, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = Conv(64, 96, 3, padding=1), Conv(96, 96, 3, padding=1)
        self.branch_pool = Conv(c_in, pool_features, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg3(x))], 1)


class MixedB(nn.Module):  # 35 -> 17 (Mixed_6a)
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = Conv(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = Conv(c_in, 64, 1)
        self.branch3x3dbl_2, self.branch3x3dbl_3 = Conv(64, 96, 3, padding=1), Conv(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


class MixedC(nn.Module):  # 17 x 17 blocks with factorised 7 x 7 convolutions (Mixed_6b-e)
    def __init__(self, c_in: int, c7: int):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = Conv(c_in, 192, 1)
        self.branch7x7_1, self.branch7x7_2, self.branch7x7_3 = Conv(c_in, c7, 1), Conv(c7, c7, **row), Conv(c7, 192, **col)
        self.branch7x7dbl_1 = Conv(c_in, c7, 1)
        self.branch7x7dbl_2, self.branch7x7dbl_3 = Conv(c7, c7, **col), Conv(c7, c7, **row)
        self.branch7x7dbl_4, self.branch7x7dbl_5 = Conv(c7, c7, **col), Conv(c7, 192, **row)
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        d = x
        for i in range(1, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([self.branch1x1(x), b7, d, self.branch_pool(_avg3(x))], 1)


class MixedD(nn.Module):  # 17 -> 8 (Mixed_7a)
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = Conv(c_in, 192, 1), Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = Conv(c_in, 192, 1)
        self.branch7x7x3_2 = Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = Conv(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):  # 8 x 8 blocks with split 3 x 3 convolutions (Mixed_7b, 7c)
    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        row, col = dict(kernel=(1, 3), padding=(0, 1)), dict(kernel=(3, 1), padding=(1, 0))
        self.max_pool = max_pool  # Mixed_7c of the FID network: max, not average (kept as released)
        self.branch1x1 = Conv(c_in, 320, 1)
        self.branch3x3_1, self.branch3x3_2a, self.branch3x3_2b = Conv(c_in, 384, 1), Conv(384, 384, **row), Conv(384, 384, **col)
        self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(c_in, 448, 1), Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a, self.branch3x3dbl_3b = Conv(384, 384, **row), Conv(384, 384, **col)
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pool = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(b3), self.branch3x3_2b(b3),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pool)], 1)


class FIDInceptionV3(nn.Module):
    """[N, C, H, W] in [0, 1] (C = 1 or 3, any size) -> [N, 2048] pool features. The module names
    are those of the published state dict (torchvision's Inception3 layout, 1008-class fc)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = MixedA(192, 32), MixedA(256, 64), MixedA(288, 64)
        self.Mixed_6a = MixedB(288)
        self.Mixed_6b, self.Mixed_6c = MixedC(768, 128), MixedC(768, 160)
        self.Mixed_6d, self.Mixed_6e = MixedC(768, 160), MixedC(768, 192)
        self.Mixed_7a = MixedD(768)
        self.Mixed_7b, self.Mixed_7c = MixedE(1280, max_pool=False), MixedE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, 1008)  # the 2015 graph's classes; held for the state dict only

    def forward(self, x01: torch.Tensor) -> torch.Tensor:
        x = x01.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean((2, 3))  # the final adaptive average pool


# --- weights: find, fetch, verify ------------------------------------------------------------------

def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def weights_cache() -> Path:
    return cache_dir() / "weights" / WEIGHTS_FILE


_FAILED: dict[str, tuple[float, GanforgeError]] = {}  # url -> (when, why) its download last failed
_RETRY_AFTER_S = 600
_HASHED: dict[tuple, str] = {}


def find_weights(path: str | None = None, url: str | None = None, sha256: str = WEIGHTS_SHA256,
                 timeout_s: float = 60.0) -> Path:
    """The weights file: `path` (eval.inception_weights, or $GANFORGE_INCEPTION_WEIGHTS) when
    given, else the cache, else downloaded into the cache (from `url`, default the published
    file; $GANFORGE_INCEPTION_URL overrides it) and verified. Raises GanforgeError naming
    eval.inception_weights when none can be had."""
    path = path or os.environ.get("GANFORGE_INCEPTION_WEIGHTS") or None
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise GanforgeError(f"eval.inception_weights={path}: no such file (download {WEIGHTS_URL} "
                                "and point eval.inception_weights at it)")
        return path
    cached = weights_cache()
    if cached.is_file() and _verified(cached, sha256):
        return cached
    url = url or os.environ.get("GANFORGE_INCEPTION_URL") or WEIGHTS_URL
    failed = _FAILED.get(url)
    try:
        if failed and time.time() - failed[0] < _RETRY_AFTER_S:  # in-training evaluations do not retry every time
            raise failed[1]
        print(f"fetching the Inception-v3 FID weights (~95 MB) from {url} into {cached.parent}", file=sys.stderr)
        return download_weights(url, cached, sha256, timeout_s)
    except GanforgeError as e:
        _FAILED[url] = (time.time(), e)
        reason = str(e).removeprefix(f"{url}: ")
        raise GanforgeError(f"Inception-v3 weights not in {cached.parent} and not downloadable ({reason}); "
                            f"without internet, download {WEIGHTS_URL} elsewhere and set "
                            "eval.inception_weights=PATH (ganforge eval --inception-weights PATH)") from None


def _verified(path: Path, sha256: str) -> bool:
    """sha256 check of the cached file, hashed once per (size, mtime) and process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_of(path)
    return _HASHED[key] == sha256


def download_weights(url: str, dest: Path, sha256: str, timeout_s: float = 60.0) -> Path:
    """Download to a temporary file beside `dest`, check the sha256, then rename into place; a
    404, a cut transfer or a wrong file leaves nothing behind."""
    import tempfile

    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.part-", dir=dest.parent)
    except OSError as e:
        raise GanforgeError(f"cannot write the weights cache {dest.parent}: {e.strerror}") from None
    os.fchmod(fd, default_file_mode())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        download(url, tmp, timeout_s)
        got = sha256_of(tmp)
        if got != sha256:
            raise GanforgeError(f"{url}: checksum mismatch (sha256 {got[:16]}..., expected {sha256[:16]}...); "
                                "the file is damaged or not the published one")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def load_inception(path: str | Path, expected_sha256: str | None = WEIGHTS_SHA256) -> tuple[FIDInceptionV3, str]:
    """(the network in eval mode, the file's sha256). A file of the right architecture but other
    weights loads (tests use random ones); its sha256 then differs from the published one, and
    every record carries it, so such numbers cannot pass for standard FIDs."""
    path = Path(path)
    sha = sha256_of(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        code = imported_code(path)
        if code:
            raise GanforgeError(f"{path}: the file contains pickled code ({code}) and was refused for safety: "
                                "Inception-v3 weights are tensors only") from None
        raise GanforgeError(f"{path}: not readable as Inception-v3 weights ({type(e).__name__})") from None
    net = FIDInceptionV3()
    if not isinstance(state, dict):
        raise GanforgeError(f"{path}: not a state dict of Inception-v3 weights")
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shapes that do not fit
        raise GanforgeError(f"{path}: not the FID Inception-v3 architecture ({str(e).splitlines()[1:2]})") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]  # older files lack the counter
    if missing or unexpected:
        raise GanforgeError(f"{path}: not the FID Inception-v3 architecture (missing {missing[:3]}, "
                            f"unexpected {unexpected[:3]})")
    return net.eval(), sha


class InceptionExtractor:
    """The extractor interface of metrics.features.Extractor: `run` gives (features, None)."""

    test_accuracy = None  # an ImageNet network: no accuracy on the user's domain to report

    def __init__(self, net: FIDInceptionV3, sha256: str):
        self.net, self.sha256 = net, sha256
        published = sha256 == WEIGHTS_SHA256
        self.name = "inception-v3-fid (pt_inception-2015-12-05)" if published else \
            f"inception-v3-fid (UNPUBLISHED weights, sha256 {sha256[:12]}: not comparable with published FIDs)"

    @torch.no_grad()
    def run(self, x01: torch.Tensor, batch: int = 10) -> tuple[torch.Tensor, None]:  # 10: fastest on a 2-core CPU
        def as01(x):  # uint8 (a folder's reference images, kept small) or [0, 1] floats
            return x.float().div(255) if x.dtype == torch.uint8 else x

        return torch.cat([self.net(as01(x01[i:i + batch])) for i in range(0, len(x01), batch)]), None


_LOADED: dict[str, InceptionExtractor] = {}  # one network per weights file and process


def inception_extractor(path: str | None = None) -> InceptionExtractor:
    """The extractor for eval.inception_weights (or the cache / a first-use download)."""
    weights = find_weights(path)
    key = str(weights.resolve())
    if key not in _LOADED:
        _LOADED[key] = InceptionExtractor(*load_inception(weights))
    return _LOADED[key]
