"""What the restoration page shows, without the web: a completion model (pix2pix, GAIN or SRGAN
trained on data.degrade pairs) applied to an uploaded image and, for a model that fills holes, the
mask the user painted over it.

    r = Restorer(load_generator("runs/00003-fashion_inpaint_pix2pix"))
    png = r.restore_png(image_bytes, mask_bytes)

The page sends the image already brought to the model's input size (`info()["input_size"]`) and
the mask at the output size, white where pixels are to be made; the same image-folder rules apply
as everywhere (EXIF, transparency, any size: scaled to cover and centre-cropped). The restored
image keeps every pixel outside the mask as it was given.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ganforge.core.images import to_uint8
from ganforge.data.dataset import to_range
from ganforge.data.degrade import load_mask_like_image, makes_holes
from ganforge.data.folder import load_image, parse_background
from ganforge.generator import GeneratorHandle
from ganforge.nets.srgan import scale_of
from ganforge.serve.explorer import MAX_UPLOAD, RequestError

RECIPES = ("pix2pix", "gain", "srgan")  # the completion models


class Restorer:
    page = "restore.html"

    def __init__(self, G: GeneratorHandle, source: str = ""):
        if G.takes_latent or G.cfg.train.recipe not in RECIPES:
            raise RequestError(f"the restoration page takes a completion model ({', '.join(RECIPES)} trained with "
                               f"data.degrade); this one is train.recipe={G.cfg.train.recipe}")
        self.G, self.source = G, source
        d = G.cfg.data
        self.size = (d.resolution, d.image_width or d.resolution)
        self.scale = scale_of(d.degrade)  # a model trained on down=K takes a low-resolution image
        self.needs_mask = getattr(G.net(), "takes_mask", False)

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.size[0] // self.scale, self.size[1] // self.scale) if self.scale else self.size

    def info(self) -> dict:
        cfg = self.G.cfg
        return {"page": "restore", "source": self.source, "step": self.G.step, "data": cfg.data.name,
                "recipe": cfg.train.recipe, "degrade": cfg.data.degrade, "holes": makes_holes(cfg.data.degrade),
                "needs_mask": self.needs_mask, "input_size": list(self.input_size), "output_size": list(self.size),
                "channels": cfg.data.channels, "max_upload": MAX_UPLOAD}

    def _image(self, data: bytes) -> torch.Tensor:
        if len(data) > MAX_UPLOAD:
            raise RequestError(f"the image is {len(data) / 2**20:.1f} MiB; at most {MAX_UPLOAD // 2**20} MiB", 413)
        d = self.G.cfg.data
        try:
            image, _ = load_image(io.BytesIO(data), self.input_size, d.channels, parse_background(d.background))
        except Exception as e:  # Pillow raises many types for what is not an image
            raise RequestError(f"'image': not an image Pillow can read ({type(e).__name__})") from None
        x = to_range(torch.tensor(image)[None], d.range)
        if self.scale:  # the model's input: each low-resolution pixel repeated scale x scale times
            x = x.repeat_interleave(self.scale, 2).repeat_interleave(self.scale, 3)
        return x

    def _mask(self, data: bytes | None) -> torch.Tensor | None:
        if data is None:
            if self.needs_mask:
                raise RequestError("'mask': this model fills missing pixels; paint them (white = missing)")
            return None
        if not self.needs_mask:
            raise RequestError(f"'mask': this model restores every pixel (data.degrade={self.G.cfg.data.degrade}); "
                               "send null")
        try:
            return load_mask_like_image(io.BytesIO(data), self.size)[None, None]
        except Exception as e:
            raise RequestError(f"'mask': not an image Pillow can read ({type(e).__name__})") from None

    @torch.no_grad()
    def restore(self, image: bytes, mask: bytes | None = None) -> np.ndarray:
        """uint8 [H, W, C]: the restored image (pixels outside the mask as given)."""
        x, m = self._image(image), self._mask(mask)
        given = x if m is None else x * (1 - m) + m * (-1.0 if self.G.value_range == "signed" else 0.0)
        out = self.G({"a": given, **({"mask": m} if m is not None else {})})
        return to_uint8(out.cpu(), self.G.value_range)[0]

    def restore_png(self, image: bytes, mask: bytes | None = None) -> bytes:
        picture = self.restore(image, mask)
        buf = io.BytesIO()
        Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(buf, format="PNG")
        return buf.getvalue()
