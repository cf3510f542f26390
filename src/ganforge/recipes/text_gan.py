"""Text to image: GAN-INT-CLS (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis").

G draws an image for a caption, G(z, e(t)); D judges (image, caption) pairs and is matching-aware
(CLS): besides real images under their own captions (real) and generated images under theirs
(fake), it sees real images under a caption of another image, of another class when the data has
classes (`data.captions.mismatched`), and calls those fake too:

    loss_D = d(real, right) + 1/2 d(real, wrong) + 1/2 d(fake, right)      (loss.kind's terms)

which for the non-saturating loss is Reed et al.'s log D(x, h) + (log(1 - D(x, h^)) +
log(1 - D(x^, h))) / 2. (Their code takes a real image of another class under the right caption
as the mismatched pair; the two are the same idea, the issue's wording is followed here.)

INT: G also draws half a batch more for captions halfway (loss.int_beta) between two training
captions, the batch's own caption and its mismatched one, and is scored on those as on the
others with weight loss.int_weight (Reed et al.'s code: 96 rows for a batch of 64, the last 32
interpolated, weight 1); D never trains on them. With model.text_ca, G's text code is StackGAN's
conditioning augmentation and G pays loss.kl_weight x its KL term; with loss.ms_weight, MSGAN's mode
seeking term (the second half of G's batch repeats the first half's captions under new z, and G pays
for images that do not change with z).

Text encoders (nets/text.py): `chars`, a character CNN in G and one in D, trained with the GAN;
`minilm`, pretrained sentence vectors (frozen), computed once per caption for the whole run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ganforge.config import Config
from ganforge.core import latent
from ganforge.core.distributed import DistInfo
from ganforge.core.errors import ConfigError
from ganforge.data import DATASETS
from ganforge.data.captions import mismatched
from ganforge.nets import build_D, build_G
from ganforge.nets.text import TEXT_CACHE, TEXT_ENCODERS, cached_text_features, text_features
from ganforge.recipes.base import batch_dependent, register
from ganforge.recipes.gan import GANRecipe

CAPTION_POOL = 256  # captions recorded in the config (model.captions) for sampling without one


def caption_pool(data, n: int = CAPTION_POOL) -> list[str]:
    """Captions of n images spread evenly over the held-out images (the training images when there
    are none), drawn as training's first step draws them (duplicates kept: the pool follows how
    often each kind of image occurs)."""
    captions, _ = data.extra.get("held_out_captions", (data.captions, None))
    count = len(captions)
    picks = torch.linspace(0, count - 1, min(n, count)).round().long()
    return [captions.texts[int(i)] for i in captions.draw(picks, 0)]


@register
class TextGANRecipe(GANRecipe):
    kind = "text-gan"
    reads = (GANRecipe.reads - {"train.reuse_fake"}) | {"model.text_encoder", "model.text_dim", "model.text_ca", "loss.int_weight",
                               "loss.int_beta", "loss.kl_weight", "loss.ms_weight"}

    def __init__(self, cfg: Config, G, D, device: torch.device, dist: DistInfo = DistInfo(),
                 texts: list[str] = (), grid_texts: list[str] = ()):
        super().__init__(cfg, G, D, device, dist)
        self.K = 0  # no class input: the caption is the condition
        # one D pass over [real; real; fake] only when D's outputs are per sample (no batch norm, no
        # minibatch standard deviation, which would mix the three kinds)
        self.joint_d_pass = not batch_dependent(D)
        self.texts = list(texts)  # the data's distinct captions; batches carry ids into them
        self._features: torch.Tensor | None = None  # the nets' text input per caption id, when first needed
        self._cache: Path | None = None
        self.grid_texts = list(grid_texts)

    def use_run_folder(self, path: Path) -> None:
        self._cache = path / TEXT_CACHE

    @property
    def features(self) -> torch.Tensor:
        """The text input of every caption of the data [captions, ...], computed at the first step
        (a pretrained encoder's once per run: kept in the run folder)."""
        if self._features is None:
            features, where = cached_text_features(self.cfg.model.text_encoder, self.texts, self._cache)
            self._features = features.to(self.device)
            self.text_source = where
        return self._features

    @classmethod
    def check(cls, cfg: Config) -> str | None:
        m, t, d = cfg.model, cfg.train, cfg.data
        if not m.text_encoder:
            return (f"train.recipe=text-gan needs a text encoder: model.text_encoder="
                    f"{' or '.join(TEXT_ENCODERS)} (chars needs nothing installed)")
        if not DATASETS[d.name].has_captions(d):
            hint = (" (data.captions=true reads a .txt beside each image, or captions.csv / captions.jsonl)"
                    if DATASETS[d.name].captions_if_asked else "")
            return f"train.recipe=text-gan needs captioned images; {d.name} has no captions{hint}"
        encoder = TEXT_ENCODERS.get(m.text_encoder)
        if encoder is not None and encoder.extra and importlib.util.find_spec(encoder.module) is None:
            return (f"model.text_encoder={m.text_encoder} needs the {encoder.extra} extra: pip install "
                    f"'ganforge[{encoder.extra}]', or use model.text_encoder=chars")
        for key, on in (("model.conditional", m.conditional != "none"), ("train.pack", t.pack > 1),
                        ("loss.pl_weight", cfg.loss.pl_weight > 0),
                        ("data.degrade", bool(d.degrade)),
                        ("data.labels_per_class", d.labels_per_class > 0 or bool(d.labels_file))):
            if on:
                return f"train.recipe=text-gan: {key} is not supported with captions; drop it"
        if t.update != "alternating":
            return "train.recipe=text-gan updates D and G in turn: set train.update=alternating"
        return super().check(cfg)

    @classmethod
    def build(cls, cfg: Config, data, device: torch.device, dist: DistInfo = DistInfo()) -> "TextGANRecipe":
        if data.captions is None:
            raise ConfigError(f"train.recipe=text-gan: {data.name} came without captions")
        if not cfg.model.captions:  # recorded in the run's config: a saved model can sample without a caption
            cfg.model.captions = caption_pool(data)
        G = build_G(cfg, data.sample_shape)  # G first, then D: the global RNG draws their initial weights
        D = build_D(cfg, data.sample_shape)
        return cls(cfg, G, D, device, dist, data.captions.texts, grid_texts(data))

    @classmethod
    def load_critic(cls, cfg: Config, nets: dict[str, dict], device: str = "cpu"):
        return None, "its D judges (image, caption) pairs, not images alone"

    # --- inputs and samples -------------------------------------------------------------------
    def fixed_inputs(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """A row per grid caption (one per class where the data has classes), n // rows seeds each."""
        rows = max(1, min(len(self.grid_texts), n))
        per_row = max(1, n // rows)
        m = self.cfg.model
        z = latent.sample_z(rows * per_row, m.z_dim, m.z_dist, generator)
        t = text_features(m.text_encoder, self.grid_texts[:rows]).repeat_interleave(per_row, 0)  # each caption once
        return {"z": z.to(self.device), "t": t.to(self.device)}

    def grid_columns(self, inputs: dict) -> int | None:
        t = inputs.get("t")
        if t is None or len(t) < 2:
            return None
        same = (t == t[0]).reshape(len(t), -1).all(1)
        return int(same.sum()) if same.sum() > 1 else None

    # --- the step --------------------------------------------------------------------------------
    def _G(self, net, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return net(z, c)  # c: the captions' text input

    def _D(self, net, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return net(x, c)

    def _critic(self, c: torch.Tensor | None):
        return lambda x: self.D(x, c)

    def _pair_logits(self, x_real: torch.Tensor, x_fake: torch.Tensor, t: torch.Tensor, t_wrong: torch.Tensor):
        """D's logits on (real, right caption), (real, wrong caption), (fake, right caption): one pass
        when D has no batch statistics, else three (batch norm would mix the kinds)."""
        if self.joint_d_pass:
            out = self.pD.run(torch.cat([x_real, x_real, x_fake]), torch.cat([t, t_wrong, t])).float()
            return out.chunk(3)
        return tuple(self.pD.run(x, c).float() for x, c in ((x_real, t), (x_real, t_wrong), (x_fake, t)))

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg, x_real = self.cfg, batch["x"]
        ids = batch["t"]
        wrong_ids = mismatched(ids, batch.get("c"))
        t, t_wrong = self.features[ids], self.features[wrong_ids]
        n = len(x_real)
        if self.pD.channels_last:
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        g_step = (self.pD.updates + 1) % cfg.train.n_dis == 0
        with torch.no_grad(), self.autocast():
            x_fake = self.pG.run(self._train_z(n), t)

        # D step: matching-aware (CLS)
        with self.autocast():
            d_real, d_fake = self._d_input(x_real), self._d_input(x_fake)
            real_right, real_wrong, fake_right = self._pair_logits(d_real, d_fake, t, t_wrong)
        loss_D = cfg.loss.d_scale * 0.5 * (self.loss.d(real_right, real_wrong) + self.loss.d(real_right, fake_right))
        penalty, penalty_stats = self._penalties(d_real, d_fake, t)
        self.step(self.pD, loss_D + penalty if penalty_stats else loss_D)
        self._clip_D()
        stats = {**self.d_stats(loss_D, real_right, fake_right), **penalty_stats, **self._ada(real_right)}
        if self.loss.boundary is not None:  # how often D calls a real image under a wrong caption fake
            stats["D_wrong_acc"] = (real_wrong.detach() < self.loss.boundary).float().mean()
        if not g_step:
            return stats

        # G step, D frozen: the batch's captions, and (INT) n / 2 more halfway between two captions
        L = cfg.loss
        half = n // 2
        n_int = half if L.int_weight > 0 else 0
        if L.ms_weight > 0:  # mode seeking: the second half repeats the first half's captions
            t = torch.cat([t[:half], t[:half], t[2 * half:]])
            t_wrong = torch.cat([t_wrong[:half], t_wrong[:half], t_wrong[2 * half:]])
        t_g = torch.cat([t, t[:n_int]])
        t2 = torch.cat([t, t_wrong[:n_int]])
        beta = torch.cat([torch.ones(n), torch.full((n_int,), L.int_beta)]).to(self.device)
        z = self._train_z(n + n_int)
        with self.freeze("D"):
            with self.autocast():
                x_g, kl = self.pG.run(z, t_g, t2, beta, with_kl=True)
                logits = self.pD.frozen(self._d_input(x_g), t_g, t2, beta).float()
            loss_G = self.loss.g(logits[:n])
            if n_int:
                loss_G = (n * loss_G + L.int_weight * n_int * self.loss.g(logits[n:])) / (n + n_int)
            extra = {}
            if cfg.model.text_ca:
                loss_G = loss_G + L.kl_weight * kl.float()
                extra["kl"] = kl.detach().float()
            if L.ms_weight > 0:
                ms = mode_seeking_ratio(x_g[:half], x_g[half:2 * half], z[:half], z[half:2 * half])
                loss_G = loss_G + L.ms_weight / (ms + 1e-5)
                extra["ms"] = ms.detach()
            self.step(self.pG, loss_G)
        self.update_ema(self.pG)
        return {**stats, "loss_G": loss_G.detach(), **extra}

    def stat_labels(self) -> dict[str, str]:
        return {**super().stat_labels(), "D_wrong_acc": "acc(x,t~)", "kl": "KL", "ms": "MS"}


def mode_seeking_ratio(x1: torch.Tensor, x2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """MSGAN's ratio (Mao et al. 2019): how far two images of one condition are apart for how far
    their latents are, mean |x1 - x2| / mean |z1 - z2|."""
    return (x1.float() - x2.float()).abs().mean() / (z1.float() - z2.float()).abs().mean()


def grid_texts(data, rows: int = 10) -> list[str]:
    """Captions for the sample grids, of held-out images where there are some: the first caption of
    the first image of each class (in class order) where the data has classes, else of `rows`
    images spread over them."""
    captions, y = data.extra.get("held_out_captions", (data.captions, data.y))
    if y is not None:
        firsts = [int((y == k).nonzero()[0]) for k in range(int(y.max()) + 1) if (y == k).any()]
    else:
        firsts = torch.linspace(0, len(captions) - 1, min(rows, len(captions))).round().long().tolist()
    ids = captions.draw(torch.tensor(firsts[:rows]), None)
    return [captions.texts[int(i)] for i in ids]
