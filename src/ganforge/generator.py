"""One handle on a generator, trained or in training: `ganforge sample`, `ganforge eval`, the
in-training metrics, the export and the web explorer all sample through it.

    G = load_generator("runs/00001-mnist_dcgan")      # ganforge.api.load_generator
    x = G.sample(64, seed=1)                          # [64, C, H, W] in the data's range, on the CPU

Inputs are dicts (`{"z": ...}`, and `{"c": ...}` for conditional generators) built by `inputs`;
latents are drawn by ganforge.core.latent, the one place that knows their distribution. A style-based
generator (StyleGAN) also takes `{"ws": ...}`, per-layer styles from `styles` (walks in w, style mixing).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from ganforge import checkpoint
from ganforge.config import Config, net_names, to_dict
from ganforge.core import latent
from ganforge.core.errors import ConfigError, GanforgeError
from ganforge.core.images import to_uint8
from ganforge.core.rng import check_seed
from ganforge.data import DATASETS
from ganforge.nets import class_count
from ganforge.nets.registry import GENERATORS
from ganforge.nets.text import TEXT_ENCODERS, text_features


def noise_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    """A style-based G's layers with a fixed noise map (`noise_const`), in order."""
    return [m for m in net.modules() if hasattr(m, "noise_const")]


class noise_maps:
    """Inside the block, a style-based G's layers use the given noise maps ("noise<i>" -> [N, 1, s, s],
    in the order of its layers) instead of their fixed ones."""

    def __init__(self, net: torch.nn.Module, noise: dict[str, torch.Tensor]):
        self.layers = noise_layers(net) if noise else []
        self.noise = noise

    def __enter__(self):
        self.kept = [layer.noise_const for layer in self.layers]
        for i, layer in enumerate(self.layers):
            layer.noise_const = self.noise[f"noise{i}"].to(layer.noise_const.device)
        return self

    def __exit__(self, *exc):
        for layer, kept in zip(self.layers, self.kept):
            layer.noise_const = kept
        return False



class GeneratorHandle:
    takes_latent = True  # drawn from a seed (z); False for translation models, which take images

    def __init__(self, G: torch.nn.Module | Callable, cfg: Config, step: int = 0, device: torch.device | str | None = None,
                 player: str = "G", E: torch.nn.Module | None = None, C: torch.nn.Module | None = None):
        self.G, self.cfg, self.step, self.player = G, cfg, step, player
        self.E = E  # an encoder x -> latent when the model has one (train.recipe=encoder)
        self.C = C  # a classifier x -> class logits when the model has one (train.recipe=ssgan)
        if device is None:
            first = next(G.parameters(), None) if isinstance(G, torch.nn.Module) else None
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)

    @property
    def value_range(self) -> str:
        return self.cfg.data.range

    @property
    def is_points(self) -> bool:
        return DATASETS[self.cfg.data.name].kind == "points"

    @property
    def num_classes(self) -> int:
        """Classes a conditional generator takes (0: unconditional)."""
        return class_count(self.cfg)

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of a conditional generator's classes, or of a classifier's (the names the run
        recorded, else the dataset's, else the class numbers)."""
        names = self.cfg.model.class_names or DATASETS[self.cfg.data.name].classes
        K = self.num_classes or (self.cfg.model.num_classes if self.C is not None else 0)
        return tuple(names) if len(names) == K else tuple(str(i) for i in range(K))

    @property
    def takes_text(self) -> bool:
        """Whether G draws images for captions (a text-to-image model)."""
        return bool(self.cfg.model.text_encoder)

    @property
    def text_encoder(self) -> str:
        """The text encoder's name and what it is, for pages and messages ("" without text)."""
        name = self.cfg.model.text_encoder
        return f"{name}: {TEXT_ENCODERS[name].summary}" if name in TEXT_ENCODERS else name

    def text_input(self, texts: list[str]) -> torch.Tensor:
        """Captions -> G's text input (the encoder's features), on the CPU."""
        if not self.takes_text:
            raise ConfigError("a caption was given, but this generator takes no text (it was not trained with "
                              "train.recipe=text-gan)")
        bad = [t for t in texts if not isinstance(t, str) or not t.strip()]
        if bad:
            raise ConfigError(f"caption {bad[0]!r} is empty: give a sentence, e.g. \"a dark ankle boot\"")
        texts = [" ".join(t.split()) for t in texts]
        unique = list(dict.fromkeys(texts))  # each distinct caption encoded once
        features = text_features(self.cfg.model.text_encoder, unique)
        return features[torch.tensor([unique.index(t) for t in texts])] if len(unique) < len(texts) else features

    def default_text(self, n: int) -> torch.Tensor:
        """The text input of the model's first recorded caption, for n samples: what latents given
        without a caption (walks in z, projections) are drawn under."""
        t = self.text_input(self._texts(1, 0, self.cfg.model.captions[:1] or None))
        return t.expand(n, *t.shape[1:])

    def _texts(self, n: int, seed: int, text) -> list[str]:
        """n captions: `text` (one for all, or a list taken in turn), else drawn by the seed from the
        captions the model recorded from its training data."""
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not texts:
                raise ConfigError("an empty list of captions was given: give at least one")
            return [texts[i % len(texts)] for i in range(n)]
        pool = self.cfg.model.captions
        if not pool:
            raise ConfigError("this text-to-image model recorded no captions to draw from: give one (--text)")
        pick = torch.randint(len(pool), (n,), generator=torch.Generator().manual_seed(seed + 1))
        return [pool[int(i)] for i in pick]

    def inputs(self, n: int, seed: int = 0, c: int | None = None, truncation: float | None = None,
               psi: float | None = None, text: str | list[str] | None = None) -> dict:
        """Generator inputs for n samples, on the CPU, the same for the same seed everywhere. A
        conditional generator gets class `c` for all n, or (c=None) the classes in turn, 0, 1, ...,
        K-1, 0, ... so that every class has its share. A text-to-image generator gets `text` (one
        caption for all, or a list in turn), or captions drawn by the seed from its training data's.
        `truncation` (a threshold) and `psi` (toward the mean latent) are the two truncation tricks
        of ganforge.core.latent."""
        check_seed(seed)
        if text is not None and not self.takes_text:
            self.text_input([text] if isinstance(text, str) else list(text))  # raises: no text input
        K = self.num_classes
        if c is not None and not K:
            raise ConfigError(f"class {c} asked for, but this generator is unconditional (it takes no class)")
        if c is not None and not 0 <= c < K:
            raise ConfigError(f"class {c} is out of range: this generator has {K} classes (0 to {K - 1})")
        m = self.cfg.model
        if truncation is not None and (m.z_dist != "normal" or truncation <= 0):
            raise ConfigError(f"truncation={truncation}: the truncation trick takes a positive threshold and "
                              f"normal latents (this generator's are {m.z_dist})")
        z = latent.sample_z(n, m.z_dim, m.z_dist, torch.Generator().manual_seed(seed), truncation)
        inputs = {"z": z}
        if K:
            inputs["c"] = torch.full((n,), c) if c is not None else torch.arange(n) % K
        if self.takes_text:
            inputs["t"] = self.text_input(self._texts(n, seed, text))
        return self.with_psi(inputs, psi)

    def text_walk(self, z: torch.Tensor, text_a: str, text_b: str, beta: torch.Tensor) -> dict:
        """Inputs for latents z [N, z_dim] under the captions beta e(a) + (1 - beta) e(b), beta [N]
        (1: caption a, 0: caption b), e the text embedding of G's own text path."""
        n = len(z)
        t_a, t_b = self.text_input([text_a, text_b]).chunk(2)
        return {"z": z, "t": t_a.expand(n, *t_a.shape[1:]).clone(), "t2": t_b.expand(n, *t_b.shape[1:]).clone(),
                "beta": beta.float()}

    def with_psi(self, inputs: dict, psi: float | None) -> dict:
        """Inputs pulled toward the mean latent by psi: z itself for z-space generators; for a
        generator with an intermediate latent (StyleGAN's w, `G.truncate`) psi travels with the
        inputs and is applied to w when G runs."""
        if psi is None:
            return inputs
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not 0.0 <= psi <= 1.0:  # nan too
            raise ConfigError(f"psi={psi}: truncation toward the mean latent takes psi between 0 and 1 "
                              "(1: no change, 0: the mean latent)")
        if psi == 1.0:
            return inputs
        if self.num_ws:  # a style-based generator: psi acts on w
            return {**inputs, "psi": torch.full((len(inputs["z"]),), float(psi))}
        return {**inputs, "z": latent.toward_mean(inputs["z"], psi)}

    @contextlib.contextmanager
    def _eval(self):
        """G in eval mode for the block (batch norm on running statistics, no style mixing, fixed
        noise), then back to what it was: sampling never changes a training G."""
        G = self.G
        was_training = getattr(G, "training", False)
        if isinstance(G, torch.nn.Module):
            G.eval()
        try:
            yield G
        finally:
            if isinstance(G, torch.nn.Module):
                G.train(was_training)

    @torch.no_grad()
    def __call__(self, inputs: dict) -> torch.Tensor:
        """Samples in eval mode (batch norm uses running statistics; no state changes), float32,
        on the generator's device, in the data's range."""
        noise = {k: v for k, v in inputs.items() if k.startswith("noise")}
        if self.takes_text and "t" not in inputs and "ws" not in inputs:
            inputs = {**inputs, "t": self.default_text(len(inputs["z"]))}
        with self._eval() as G, noise_maps(G, noise):  # a projection's own noise maps, when it has them
            if "ws" in inputs:  # styles given directly (a style-based generator)
                return G.synthesis(inputs["ws"].to(self.device)).float()
            if "psi" in inputs:  # truncation in w (a generator with `truncate`: StyleGAN)
                return G.synthesis(self.styles(inputs)).float()
            if "t" in inputs:  # a caption's text input, or a point between two (t2, beta)
                return G(inputs["z"].to(self.device), *self._text_args(inputs)).float()
            if "c" in inputs:
                return G(inputs["z"].to(self.device), inputs["c"].to(self.device)).float()
            return G(inputs["z"].to(self.device)).float()

    @property
    def num_ws(self) -> int:
        """Style inputs of a style-based generator (one per layer), 0 for other generators."""
        return int(self.G.num_ws) if self.style_based else 0

    @property
    def style_based(self) -> bool:
        """Whether G maps z to per-layer styles (declared by its net's registry entry)."""
        name = net_names(self.cfg)[0]
        return name in GENERATORS and GENERATORS[name].styles

    @torch.no_grad()
    def styles(self, inputs: dict) -> torch.Tensor:
        """A style-based generator's per-layer w [N, num_ws, w_dim] for `inputs` (eval mode: no
        mixing), pulled toward the mean w by their psi when they carry one."""
        if self.takes_text and "t" not in inputs:
            inputs = {**inputs, "t": self.default_text(len(inputs["z"]))}
        with self._eval() as G:
            if "t" in inputs:
                t, t2, beta = self._text_args(inputs)
                ws = G.ws(inputs["z"].to(self.device), t, t2=t2, beta=beta)
            else:
                ws = G.ws(inputs["z"].to(self.device))
            return G.truncate(ws, inputs["psi"].to(ws)[:, None, None]) if "psi" in inputs else ws

    def _text_args(self, inputs: dict) -> tuple:
        """(t, t2, beta) of text inputs on the device (t2, beta None for one caption)."""
        parts = [inputs.get(k) for k in ("t", "t2", "beta")]
        return tuple(p.to(self.device) if p is not None else None for p in parts)

    @staticmethod
    def mix_styles(coarse: torch.Tensor, fine: torch.Tensor, cut: int) -> torch.Tensor:
        """Style mixing: the layers before `cut` from `coarse`, the rest from `fine` (broadcast over N)."""
        coarse, fine = torch.broadcast_tensors(coarse, fine)
        return torch.cat([coarse[:, :cut], fine[:, cut:]], dim=1)

    # --- latents of images: the encoder's guess, and the form every space's latent takes ----------
    @property
    def encoder_space(self) -> str:
        """Where the encoder's codes live: z, or a style-based G's w (one for all layers) or w+."""
        return self.cfg.model.encoder_space

    def space_size(self, space: str) -> int:
        """Numbers in one latent of `space` (z, w or w+)."""
        if space == "z":
            return self.cfg.model.z_dim
        if not self.num_ws:
            raise ConfigError(f"--space {space}: only a style-based generator (model.arch=stylegan) has a w space; "
                              "this one takes z")
        w_dim = self.G.w_avg.numel()
        return w_dim * (self.num_ws if space == "w+" else 1)

    def latent_inputs(self, code: torch.Tensor, space: str, c: torch.Tensor | None = None) -> dict:
        """Generator inputs from latents [N, space_size(space)]: {"z"} (with the classes of a
        conditional G), or per-layer styles {"ws"} for w (repeated over the layers) and w+."""
        if space == "z":
            return {"z": code, **({"c": c} if self.num_classes else {})}
        ws = code.reshape(len(code), self.num_ws, -1) if space == "w+" else code[:, None].repeat(1, self.num_ws, 1)
        return {"ws": ws}

    @torch.no_grad()
    def encode(self, x: torch.Tensor, c: torch.Tensor | None = None, batch: int = 256) -> dict:
        """The encoder's latents for images x [N, C, H, W] (in the data's range), as generator
        inputs on the CPU; `c` the classes of a conditional G (its encoder predicts z only)."""
        if self.E is None:
            raise ConfigError("this generator has no encoder: train one with train.recipe=encoder "
                              "model.G_from=RUN (configs/mnist_encoder.yaml), or project without one")
        if self.num_classes and c is None and self.encoder_space == "z":
            raise ConfigError("a conditional generator's encoder predicts z only: give the images' classes (c)")
        was_training = self.E.training
        self.E.eval()
        try:
            code = torch.cat([self.E(x[i:i + batch].to(self.device)).float().cpu() for i in range(0, len(x), batch)])
        finally:
            self.E.train(was_training)
        if self.cfg.model.z_dist in latent.BOX and self.encoder_space == "z":
            box = latent.BOX[self.cfg.model.z_dist]
            code = code.clamp(-box, box)  # the support of the uniform latents
        return self.latent_inputs(code, self.encoder_space, c)

    def generate(self, inputs: dict, batch: int = 1000, to_cpu: bool = True) -> torch.Tensor:
        """Samples for all `inputs`, `batch` at a time (each batch leaves the device at once unless
        to_cpu=False, e.g. for a gather across ranks that needs them on the device)."""
        n = len(next(iter(inputs.values())))
        parts = [self({k: v[i:i + batch] for k, v in inputs.items()}) for i in range(0, n, batch)]
        return torch.cat([p.cpu() for p in parts] if to_cpu else parts)

    def sample(self, n: int, seed: int = 0, c: int | None = None, truncation: float | None = None,
               batch: int = 1000, psi: float | None = None, text: str | list[str] | None = None) -> torch.Tensor:
        """n samples on the CPU, in batches of `batch` (for `text`: see `inputs`)."""
        return self.generate(self.inputs(n, seed, c, truncation, psi, text), batch)

    def to_images(self, x: torch.Tensor) -> list:
        """Samples [N, C, H, W] in the data's range -> PIL images (grey "L" or "RGB")."""
        from PIL import Image

        if self.is_points:
            raise ConfigError("images() draws images; this generator makes 2-D points (use sample())")
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in to_uint8(x, self.value_range)]

    def images(self, n: int, seed: int = 0, c: int | None = None, truncation: float | None = None,
               psi: float | None = None, text: str | list[str] | None = None) -> list:
        """n samples as PIL images (grey "L" or "RGB"), the same ones `sample` gives for the seed."""
        if self.is_points:
            raise ConfigError("images() draws images; this generator makes 2-D points (use sample())")
        return self.to_images(self.sample(n, seed, c, truncation, psi=psi, text=text))

    def export(self, out_dir: str | Path) -> Path:
        """generator.safetensors + generator.json in out_dir; encoder.safetensors / classifier.safetensors
        beside them when the model has an encoder / a classifier."""
        if not isinstance(self.G, torch.nn.Module):
            raise GanforgeError("only a generator network can be exported")
        return checkpoint.export_generator(out_dir, self.G, to_dict(self.cfg), self.step, self.player, E=self.E,
                                           C=self.C)


DIRECTIONS = {"AtoB": "AB", "BtoA": "BA"}


class TranslatorHandle(GeneratorHandle):
    """An image-to-image generator (pix2pix: one net A -> B; CycleGAN: a ModuleDict {"AB", "BA"}).
    Its inputs are images {"a": [N, C, H, W] in the data's range}, not latents.

    Translation runs in eval mode, like every ganforge generator: dropout off, batch norm on its
    running statistics, so an image's translation does not depend on what else is in the batch
    and the same input always gives the same output. The pix2pix reference's test.py (without
    --eval) keeps dropout on and uses each test batch's statistics instead; at batch size 1 that
    is instance normalisation. Results here are measured in eval mode."""

    takes_latent = False

    @property
    def recipe(self) -> str:
        return self.cfg.train.recipe

    @property
    def directions(self) -> tuple[str, ...]:
        return ("AtoB", "BtoA") if isinstance(self.G, torch.nn.ModuleDict) else ("AtoB",)

    def inputs(self, n: int, seed: int = 0, c=None, truncation=None, psi=None, text=None) -> dict:
        raise ConfigError(f"this is an image-to-image model (train.recipe={self.recipe}): it translates images "
                          "instead of drawing them from a seed; use `ganforge translate CKPT --input FILE_OR_DIR "
                          "--out DIR`")

    def net(self, direction: str = "AtoB") -> torch.nn.Module:
        if direction not in self.directions:
            raise ConfigError(f"--direction {direction}: this {self.recipe} model translates "
                              f"{' and '.join(self.directions)} only")
        return self.G[DIRECTIONS[direction]] if isinstance(self.G, torch.nn.ModuleDict) else self.G

    @torch.no_grad()
    def __call__(self, inputs: dict) -> torch.Tensor:
        """inputs {"a": images, "direction": "AtoB" | "BtoA" (default AtoB)[, "mask": 1 where a pixel is
        to be produced]} -> translated images. With a mask the observed pixels (mask 0) are pasted
        back unchanged; a net that takes the mask (GAIN's G) is given it."""
        net = self.net(inputs.get("direction", "AtoB"))
        a, mask = inputs["a"].to(self.device), inputs.get("mask")
        was_training = self.G.training
        self.G.eval()
        try:
            if mask is None:
                if getattr(net, "takes_mask", False):
                    raise ConfigError(f"this {self.recipe} model fills missing pixels and needs their mask (1 = missing) "
                                      "beside each image; translate gives none")
                return net(a).float()
            mask = mask.to(self.device).float()
            out = (net(a, mask) if getattr(net, "takes_mask", False) else net(a)).float()
            return mask * out + (1 - mask) * a
        finally:
            self.G.train(was_training)

    def translate(self, a: torch.Tensor, direction: str = "AtoB", batch: int = 64) -> torch.Tensor:
        """Images [N, C, H, W] in the data's range -> their translations, on the CPU."""
        return torch.cat([self({"a": a[i:i + batch], "direction": direction}).cpu() for i in range(0, len(a), batch)])
