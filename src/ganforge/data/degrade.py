"""Degradations as data: any image dataset as (degraded, clean, mask) triples, made on the fly.

`data.degrade=NAME[=VALUE]` turns the images of any image dataset (MNIST, Fashion-MNIST, a folder,
...) into restoration pairs: a batch is {"x": the clean image, "a": its degraded copy, "mask": 1
where a pixel is to be produced, 0 where it was observed}. The paired recipes (pix2pix) learn
a -> x from it as from any paired data.

    box[=F]       a rectangle of F of the image's area missing (default 0.25), anywhere
    strokes[=W]   free-form brush strokes W px wide missing (default: an eighth of the side), the
                  irregular holes of Yu et al. 2019 (DeepFill v2)
    missing[=P]   each pixel missing with probability P (default 0.5: GAIN's MNIST setting)
    masks=DIR     masks of the user's (image files, white = missing), resized to the images
    blur[=S]      Gaussian blur of standard deviation S px (default 1.5)
    motion[=L]    motion blur along a random camera-shake trajectory about L px long (default 7):
                  the trajectory model DeblurGAN (Kupyn et al. 2018) takes from Boracchi & Foi 2012
    noise[=S]     additive Gaussian noise of standard deviation S (pixels in [0, 1]; default 0.2)
    jpeg[=Q]      JPEG compression at quality Q (1-95; default 10)
    down[=K]      K times fewer pixels a side (2 or 4; area average), brought back to size by
                  nearest-neighbour repetition (what a low-resolution image shown large looks like)

Missing pixels are 0 (black) in the degraded image; the mask says which they are. For the
degradations that touch every pixel (blur, motion, noise, jpeg, down) the mask is all ones.

Which degradation an image gets is a function of (seed, step, the image's index) in training, so a
resumed run sees what it would have seen, and of (seed, index) for the held-out images, so an
evaluation compares like with like every time. With `data.degrade_per=image` a training image
keeps one degradation for the whole run, a function of (seed, index): the setting of imputation
(GAIN), where the data come with their holes and a missing value is never seen.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ganforge.core.registry import Registry, choose
from ganforge.data.folder import EXTENSIONS, load_image

HELD_OUT_SEED = 1_000_033  # held-out degradations: seeded by this, the run's seed and the image's index
PER_IMAGE_SEED = 2_000_029  # data.degrade_per=image: one training degradation per image


@dataclass(frozen=True)
class Degradation:
    name: str
    summary: str
    default: float | None  # the parameter when none is given (None: one must be given, e.g. masks=DIR)
    valid: Callable[[float], bool]  # the parameter's range
    param_words: str  # the range in words, for the error
    apply: Callable  # (x01 [C, H, W] float, param, generator, context) -> (degraded x01, mask [1, H, W])
    inpainting: bool = True  # observed pixels stay as they were (a mask of holes)


DEGRADATIONS: Registry[Degradation] = Registry("degradation")


def register(d: Degradation) -> Degradation:
    return DEGRADATIONS.add(d.name, d)


def parse(spec: str) -> tuple[str, str | None]:
    """'box=0.3' -> ('box', '0.3'); 'box' -> ('box', None)."""
    name, _, value = spec.partition("=")
    return name.strip(), (value.strip() or None) if "=" in spec else None


def makes_holes(spec: str | None) -> bool:
    """Whether data.degrade=spec leaves pixels missing (a mask of holes) rather than touching every pixel."""
    name, _ = parse(spec) if spec else ("", None)
    return name in DEGRADATIONS and DEGRADATIONS[name].inpainting


def check(spec: str, resolution: int, files: bool = True) -> str | None:
    """Why data.degrade=spec cannot work, or None (`files`: also that masks=DIR holds masks)."""
    name, value = parse(spec)
    problem = choose("data.degrade", name, DEGRADATIONS)
    if problem:
        return problem + " (e.g. data.degrade=box, strokes, missing=0.5, blur=1.5, jpeg=10, down=4)"
    d = DEGRADATIONS[name]
    if d.name == "masks":
        if value is not None and not files:
            return None
        if value is None or not Path(value).is_dir():
            return f"data.degrade={spec}: give a folder of mask images (white = missing), e.g. data.degrade=masks=DIR"
        return None if mask_files(Path(value)) else f"data.degrade={spec}: no image file in {value}"
    if value is None:
        return None
    try:
        param = float(value)
    except ValueError:
        return f"data.degrade={spec}: {value!r} is not a number ({d.param_words})"
    if not (math.isfinite(param) and d.valid(param)):
        return f"data.degrade={spec}: {d.param_words}"
    if name == "strokes" and param > resolution:
        return f"data.degrade={spec}: strokes wider than the image (data.resolution={resolution}) leave nothing observed"
    if name == "down" and resolution % int(param):
        return f"data.degrade={spec}: data.resolution={resolution} is not a multiple of {int(param)}"
    return None


def parameter(spec: str):
    name, value = parse(spec)
    d = DEGRADATIONS[name]
    if d.name == "masks":
        return load_masks(Path(value))
    return d.default if value is None else float(value)


# --- masks of holes ----------------------------------------------------------------------------------

def _box(x, area, g, ctx):
    _, H, W = x.shape
    h, w = max(1, round(H * math.sqrt(area))), max(1, round(W * math.sqrt(area)))
    top = int(torch.randint(0, H - h + 1, (1,), generator=g))
    left = int(torch.randint(0, W - w + 1, (1,), generator=g))
    mask = torch.zeros(1, H, W)
    mask[:, top:top + h, left:left + w] = 1
    return _holes(x, mask)


def _strokes(x, width, g, ctx):
    """1 to 4 strokes, each a polyline of 3 to 8 vertices turning at random (the free-form masks
    of DeepFill v2's training, scaled to small images), drawn `width` px wide with round joints."""
    _, H, W = x.shape
    width = max(1, round(width if width is not None else max(H, W) / 8))
    canvas = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(canvas)
    u = lambda: float(torch.rand((), generator=g))  # noqa: E731
    for _ in range(1 + int(4 * u())):
        px, py = u() * W, u() * H
        angle = 2 * math.pi * u()
        for _ in range(3 + int(6 * u())):
            angle += (u() - 0.5) * math.pi  # turn up to 90 degrees either way
            length = (0.1 + 0.3 * u()) * max(H, W)
            nx = min(max(px + length * math.cos(angle), 0), W - 1)
            ny = min(max(py + length * math.sin(angle), 0), H - 1)
            draw.line([(px, py), (nx, ny)], fill=255, width=width)
            r = width / 2
            draw.ellipse([nx - r, ny - r, nx + r, ny + r], fill=255)
            px, py = nx, ny
    mask = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255).round()[None]
    return _holes(x, mask)


def _missing(x, p, g, ctx):
    _, H, W = x.shape
    return _holes(x, (torch.rand(1, H, W, generator=g) < p).float())


def _user_mask(x, masks, g, ctx):
    """One of the user's masks: the image's own (by index) for held-out images, one at random in
    training; resized to the image with nearest-neighbour."""
    _, H, W = x.shape
    i = ctx["index"] % len(masks) if ctx.get("index") is not None else int(torch.randint(0, len(masks), (1,), generator=g))
    m = masks[i][None, None]
    if m.shape[-2:] != (H, W):
        m = F.interpolate(m, size=(H, W), mode="nearest")
    return _holes(x, m[0])


def _holes(x, mask):
    return x * (1 - mask), mask


def mask_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS)


def load_mask(path: Path, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A mask image as float {0, 1} [H, W] (white, above mid-grey, = missing; transparent = kept),
    resized to `size` (H, W) with nearest-neighbour when given."""
    with Image.open(path) as im:
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            im = Image.alpha_composite(Image.new("RGBA", im.size, "black"), im.convert("RGBA"))
        grey = im.convert("L")
        if size is not None and grey.size != (size[1], size[0]):
            grey = grey.resize((size[1], size[0]), Image.NEAREST)
        return torch.from_numpy((np.asarray(grey) > 127).astype(np.float32))


def load_mask_like_image(path, size: tuple[int, int]) -> torch.Tensor:
    """A mask image (a path or a file object) as float {0, 1} [H, W] (white = missing; transparent
    = kept), brought to `size` the way an image is loaded (EXIF orientation, scaled to cover,
    centre-cropped), so that a mask drawn over a photo lines up with the photo as the model sees it."""
    return torch.from_numpy(load_image(path, size, 1, (0, 0, 0))[0][0] > 127).float()


def load_masks(folder: Path) -> list[torch.Tensor]:
    """The mask images of a folder as float {0, 1} [H, W] (white, above mid-grey, = missing)."""
    return [load_mask(p) for p in mask_files(folder)]


# --- degradations of every pixel ------------------------------------------------------------------------

def _whole(x, degraded):
    return degraded.clamp(0, 1), torch.ones(1, *x.shape[1:])


def gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k1 = torch.exp(-t ** 2 / (2 * sigma ** 2))
    k = k1[:, None] * k1[None, :]
    return k / k.sum()


def convolve(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """x [C, H, W] convolved channel by channel with kernel [k, k] (the edge pixels repeated outward)."""
    C = x.shape[0]
    k = kernel.shape[-1]
    padded = F.pad(x[None], (k // 2, k // 2, k // 2, k // 2), mode="replicate")
    return F.conv2d(padded, kernel[None, None].expand(C, 1, k, k).contiguous(), groups=C)[0]


def _blur(x, sigma, g, ctx):
    return _whole(x, convolve(x, gaussian_kernel(sigma)))


def motion_kernel(length: float, g: torch.Generator, steps: int = 64) -> torch.Tensor:
    """A camera-shake blur kernel: a particle's path under inertia, a pull back to the centre,
    Gaussian jitter and rare large jerks (Boracchi & Foi 2012, as DeblurGAN draws them), scaled to
    `length` px and rasterised by bilinear splatting onto an odd square grid."""
    head = torch.rand(4, generator=g).tolist()
    centripetal, gaussian, big_shake, angle = 0.7 * head[0], 10 * head[1], 0.2 * head[2], 2 * math.pi * head[3]
    jitters = torch.randn(steps, 2, generator=g).tolist()  # drawn at once: one call, not 3 per step
    shakes = torch.rand(steps, 2, generator=g).tolist()
    v = complex(math.cos(angle), math.sin(angle))
    pos = [0j]
    for (jx, jy), (p_shake, shake_angle) in zip(jitters[:-1], shakes[:-1]):
        shake = 0j
        if p_shake < big_shake:
            a = 2 * math.pi * shake_angle
            shake = 2 * v * complex(math.cos(a), math.sin(a))
        v = v + shake - centripetal * pos[-1] + gaussian * complex(jx, jy) / steps
        v = v / (abs(v) or 1)
        pos.append(pos[-1] + v)
    path = np.array(pos)
    path -= path.mean()
    extent = max(np.abs(path.real).max(), np.abs(path.imag).max(), 1e-6)
    path *= (length / 2) / extent
    size = 2 * math.ceil(length / 2) + 1
    c = size // 2
    kernel = np.zeros((size, size), dtype=np.float64)
    for p in path:
        fx, fy = p.real + c, p.imag + c
        x0, y0 = int(math.floor(fx)), int(math.floor(fy))
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
            xi, yi = min(max(x0 + dx, 0), size - 1), min(max(y0 + dy, 0), size - 1)
            kernel[yi, xi] += (1 - abs(fx - x0 - dx)) * (1 - abs(fy - y0 - dy))
    return torch.from_numpy(kernel / kernel.sum()).float()


def _motion(x, length, g, ctx):
    return _whole(x, convolve(x, motion_kernel(length, g)))


def _noise(x, sigma, g, ctx):
    return _whole(x, x + sigma * torch.randn(x.shape, generator=g))


def _jpeg(x, quality, g, ctx):
    array = (x * 255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    im = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(round(quality)))
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255
    back = torch.from_numpy(back)
    return _whole(x, back[None] if back.ndim == 2 else back.permute(2, 0, 1))


def _down(x, k, g, ctx):
    k = int(k)
    small = F.avg_pool2d(x[None], k)
    return _whole(x, F.interpolate(small, scale_factor=k, mode="nearest")[0])


register(Degradation("box", "a rectangle of F of the area missing", 0.25, lambda v: 0 < v < 1,
                     "the rectangle's share of the area, between 0 and 1", _box))
register(Degradation("strokes", "free-form strokes W px wide missing", None, lambda v: 1 <= v <= 4096,
                     "the strokes' width in pixels, at least 1", _strokes))
register(Degradation("missing", "each pixel missing with probability P", 0.5, lambda v: 0 < v < 1,
                     "the probability a pixel is missing, between 0 and 1", _missing))
register(Degradation("masks", "the user's masks (white = missing)", None, lambda v: True,
                     "a folder of mask images", _user_mask))
register(Degradation("blur", "Gaussian blur of standard deviation S px", 1.5, lambda v: 0 < v <= 20,
                     "the blur's standard deviation in pixels, above 0 and at most 20", _blur, inpainting=False))
register(Degradation("motion", "camera-shake motion blur about L px long", 7.0, lambda v: 2 <= v <= 64,
                     "the shake's length in pixels, 2 to 64", _motion, inpainting=False))
register(Degradation("noise", "additive Gaussian noise of standard deviation S", 0.2, lambda v: 0 < v <= 1,
                     "the noise's standard deviation (pixels in [0, 1]), above 0 and at most 1", _noise,
                     inpainting=False))
register(Degradation("jpeg", "JPEG compression at quality Q", 10.0, lambda v: 1 <= v <= 95 and v == int(v),
                     "the JPEG quality, a whole number from 1 to 95", _jpeg, inpainting=False))
register(Degradation("down", "K times fewer pixels a side", 4.0, lambda v: v in (2, 4),
                     "the downsampling factor, 2 or 4", _down, inpainting=False))


# --- a dataset's images, degraded -------------------------------------------------------------------------

def degrade_images(images: torch.Tensor, spec: str, param, generators: list[torch.Generator],
                   indices: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, C, H, W] -> (degraded uint8 [N, C, H, W], mask uint8 [N, 1, H, W]), image i
    drawn from generators[i]."""
    d = DEGRADATIONS[parse(spec)[0]]
    out, masks = [], []
    for i, image in enumerate(images):
        x01 = image.float() / 255
        y, m = d.apply(x01, param, generators[i], {"index": indices[i] if indices is not None else None})
        out.append((y * 255).round().clamp(0, 255).to(torch.uint8))
        masks.append(m.to(torch.uint8))
    return torch.stack(out), torch.stack(masks)


def _seed(*parts: int) -> int:
    """One 63-bit seed from several integers (a multiplicative hash; no overflow for any step)."""
    h = 0
    for p in parts:
        h = (h * 0x9E3779B97F4A7C15 + p + 1) % (1 << 63)
    return h


def generators(indices: list[int], *salt: int) -> list[torch.Generator]:
    """One generator per image, seeded by `salt` and the image's dataset index: held out
    (HELD_OUT_SEED, seed), one per image for the run (PER_IMAGE_SEED, seed) or per training step
    (seed, step). A resumed run draws what an uninterrupted one did, and no two ranks draw alike."""
    return [torch.Generator().manual_seed(_seed(*salt, i)) for i in indices]


@dataclass
class Degrader:
    """What a degraded dataset calls for each batch (Dataset.degrader)."""
    spec: str
    param: object
    seed: int
    per_image: bool = False  # training images keep one degradation each (data.degrade_per=image)

    def __call__(self, images: torch.Tensor, idx: torch.Tensor, step: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(degraded uint8, mask uint8) of the images at dataset indices idx: drawn per step in
        training (`step`), per index for held-out images (step None)."""
        indices = [int(i) for i in idx]
        if step is None:
            gens = generators(indices, HELD_OUT_SEED, self.seed)
        elif self.per_image:
            gens = generators(indices, PER_IMAGE_SEED, self.seed)
        else:
            gens = generators(indices, self.seed, step)
        return degrade_images(images, self.spec, self.param, gens, indices if step is None or self.per_image else None)


def with_degradation(data, held_out_images: torch.Tensor, held_from: str, spec: str, seed: int,
                     per_image: bool = False):
    """`data` whose batches carry a degraded copy ("a") and a mask, and whose held-out images (for
    grids and benchmarks) are degraded once, by index."""
    degrader = Degrader(spec, parameter(spec), seed, per_image)
    a, mask = degrader(held_out_images, torch.arange(len(held_out_images)), None)
    data.degrader = degrader
    data.extra["held_out"] = {"a": a, "x": held_out_images, "mask": mask, "from": held_from}
    data.source = f"{data.source}, degraded by {spec}"
    return data
