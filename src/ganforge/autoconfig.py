"""`ganforge train --data DIR`: a whole config for a folder of one's own images, each value chosen
from the data or from measurements, and said with its reason.

What is read from the folder (`data.folder.probe_folder`, a look at up to 256 of its images):
the resolution (the largest the nets support at or below the images' median shorter side, at most
32 px on a CPU, where the defaults were measured), grey or colour, transparency. What was chosen by measurement, once, on real
folders (docs/RESULTS.md, "Your own folder"): the recipe, the nets and their optimiser, the
augmentation of what D sees, the EMA of G. The budget is time (`train.max_minutes`), not epochs,
so a folder of 500 images and one of 50,000 get the same wall-clock promise; at 32 px also a
number of images (`train.max_kimg`), because the DCGAN without augmentation does not improve for
ever on a few thousand images, and a faster CPU reaches the point where it gets worse within the
30 minutes.

A `key=value` the user gives wins over any choice, and the choices are ordinary config keys: the
run's config.yaml reproduces the run without `--data`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge import config as config_mod
from ganforge.core.errors import ConfigError
from ganforge.data.folder import FolderProbe, probe_folder

SIZES = (32, 64, 128, 256)  # resolutions the DCGAN takes (4 x a power of two)
# each doubling costs 4x the pixels (the DCGAN's step 5x from 32 to 64 px on a 2-core CPU, batch 128:
# 0.29 against 1.5 s): on a CPU the resolution the defaults were measured at is kept
CPU_MAX_SIZE = 32
GPU_MAX_SIZE = 128
MINUTES = 30.0  # the budget when the user gives none
# ... and at 32 px, where it was measured, at most this many thousand images: the DCGAN without
# augmentation does not improve for ever on a few thousand images. On a 2,665-sprite folder its
# samples at 570 kimg were the best measured (FID 1.0) and fell apart by 1,280 (FID 9.2 to 18.1 at
# 1,280-1,710); on a 1,911-emoji folder 552 and 1,656 kimg scored alike (7.0, 6.8). A CPU twice as
# fast as the one the defaults were chosen on reaches 570 kimg in 10 of the 30 minutes.
MAX_KIMG_AT = {32: 550.0}

# The recipe, nets, optimiser, augmentation and EMA chosen by measurement (docs/RESULTS.md, "Your own
# folder, good by default"): on a real emoji folder at 32 px and equal training time, the DCGAN with
# an EMA of G had the lowest FID at 10 and at 30 minutes (13.3, 7.1), ahead of the plain DCGAN
# (15.6, 7.5), the DCGAN with ADA or DiffAugment (20.5 / 22.1, 10.4 / 10.9) and the compact StyleGAN2
# with or without ADA (15.0 / 18.4, 20.3 / 20.5). The DCGAN's step is cheap: it saw 2.5x the images
# in the time.
RECIPE: dict[str, Any] = {
    "model.arch": "dcgan", "model.z_dim": 100, "model.width": 64, "model.d_norm": "batch",
    "loss.kind": "ns", "optim.kind": "adam", "optim.lr_G": 2e-4, "optim.lr_D": 2e-4, "optim.betas": [0.5, 0.999],
}
RECIPE_WHY = ("the DCGAN: the lowest FID at equal time on a real folder, ahead of the compact StyleGAN2 "
              "(docs/RESULTS.md)")
BATCH = 128
AUGMENT = {"train.augment": ""}
AUGMENT_WHY = ("none: DiffAugment and ADA both trailed no augmentation at 10 and 30 minutes on a real folder; "
               "for hours on a few hundred images, try train.augment=color,translation,cutout")
EMA_HALFLIFE_KIMG = 2.0
EMA_WHY = "samples, metrics and the export from an average of G's weights: FID 7.1 against 7.5 without, at 30 minutes"
SAMPLE_EVERY, CKPT_EVERY = 250, 1000  # steps: a grid about every minute, a checkpoint every 4, on 2 cores at 32 px


@dataclass
class Choice:
    """One decision: the config keys it sets and why."""
    what: str  # a few words: "resolution", "nets", ...
    settings: dict[str, Any]  # dotted config key -> value
    why: str
    yours: tuple[str, ...] = ()  # keys the user gave (their value kept)

    def line(self) -> str:
        keys = " ".join(f"{k}={_show(v)}" + (" (yours)" if k in self.yours else "") for k, v in self.settings.items())
        return f"  {self.what + ':':<14}{keys}" + (f"  -- {self.why}" if self.why else "")


def _show(value: Any) -> str:
    """A value as it would be typed after `key=`."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def resolution_for(probe: FolderProbe, cuda: bool) -> tuple[int, str]:
    """The resolution for the folder's images and the reason."""
    side = probe.short_side
    cap = GPU_MAX_SIZE if cuda else CPU_MAX_SIZE
    fitting = [s for s in SIZES if s <= side]
    if not fitting:
        return SIZES[0], f"the images' median shorter side is {side} px: upscaled to the smallest size the nets take"
    size = min(fitting[-1], cap)
    why = f"the images' median shorter side is {side} px"
    if size < fitting[-1]:
        pixels = 4 ** (SIZES.index(fitting[-1]) - SIZES.index(size))
        why += (f"; {fitting[-1]} px has {pixels}x the pixels (on a 2-core CPU the DCGAN's step costs 5x from 32 to "
                f"64 px): data.resolution={fitting[-1]} to have it anyway")
    return size, why


def choose(root: str | Path, overrides: list[str], cuda: bool) -> tuple[FolderProbe, list[Choice]]:
    """The probe of the folder and every choice, the user's overrides marked as theirs."""
    probe = probe_folder(root)
    given = dict(config_mod.parse_overrides(overrides))
    if given.get("data.name", "folder") != "folder":
        raise ConfigError(f"data.name={given['data.name']}: --data DIR trains on that folder; give a config file "
                          "instead of --data for another dataset")
    choices: list[Choice] = []

    def add(what: str, settings: dict[str, Any], why: str) -> None:
        yours = tuple(k for k in settings if k in given)
        choices.append(Choice(what, {k: given.get(k, v) for k, v in settings.items()}, why, yours))

    resolution, why = resolution_for(probe, cuda)
    colour = probe.grey < 0.99
    add("data", {"data.name": "folder", "data.root": str(root)}, "")
    add("resolution", {"data.resolution": resolution}, why)
    add("colour", {"data.channels": 3 if colour else 1},
        f"{1 - probe.grey:.0%} of the images looked at have colour" if colour else "the images are grey")
    if probe.transparent:
        add("transparency", {"data.background": "white"}, f"{probe.transparent:.0%} of the images have it")
    add("nets", RECIPE, RECIPE_WHY)
    batch, why = batch_for(probe.num_files)
    add("batch", {"train.batch_size": batch}, why)
    add("augmentation", AUGMENT, AUGMENT_WHY)
    add("EMA of G", {"train.ema_halflife_kimg": EMA_HALFLIFE_KIMG}, EMA_WHY)
    budget_keys = ("train.max_minutes", "train.max_kimg", "train.max_steps", "train.epochs")
    if not any(given.get(k) for k in budget_keys):  # a limit of 0 is no limit: the time budget stays
        add("budget", *_budget(given.get("data.resolution", resolution)))
    elif "train.epochs" not in given:
        add("budget", {"train.epochs": 1_000_000}, "no epoch limit: your budget ends the run")
    add("pictures", {"log.sample_every_steps": SAMPLE_EVERY, "log.ckpt_every_steps": CKPT_EVERY},
        "a grid from the same latents and a checkpoint, every so many steps")
    if "eval.feature_net" in given:
        add("evaluation", {"eval.every_steps": 2000, "eval.metrics": ["fid", "prdc"]},
            "FID, precision and recall in the feature net's space during training")
    else:
        add("evaluation", {"eval.every_steps": 0}, "no feature space for this folder yet: `ganforge featurenet "
                                                   "train DIR` (one sub-folder per kind), then eval.feature_net=NAME.json")
    add("run name", {"run.name": _run_name(Path(root))}, "the folder's name")
    return probe, choices


def _budget(resolution: Any) -> tuple[dict[str, Any], str]:
    """The time budget, and at a resolution where it was measured, the images after which more
    training made the samples worse. `resolution` may be the user's unchecked value: validation
    names a bad one afterwards."""
    settings: dict[str, Any] = {"train.max_minutes": MINUTES, "train.epochs": 1_000_000}
    why = "minutes of training, not epochs (Ctrl-C stops cleanly; --resume auto goes on)"
    kimg = MAX_KIMG_AT.get(resolution) if isinstance(resolution, (int, float)) else None
    if kimg:
        settings["train.max_kimg"] = kimg
        why = (f"{MINUTES:g} minutes of training or {kimg:g} thousand images, whichever comes first: on a held-out "
               "folder the samples got worse after about that many (docs/RESULTS.md); train.max_kimg=0 lifts it")
    return settings, why


def batch_for(num_images: int) -> tuple[int, str]:
    """The measured batch, or a smaller power of two that leaves a folder at least 8 batches an epoch."""
    if num_images >= 8 * BATCH:
        return BATCH, "as measured"
    batch = max(2, 2 ** int(math.log2(max(num_images // 8, 2))))
    return batch, f"{num_images} images: at least 8 batches an epoch (the measured batch is {BATCH})"


def _run_name(root: Path) -> str:
    name = root.resolve().name or "folder"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def config_dict(choices: list[Choice], overrides: list[str]) -> dict:
    """The nested config: the choices, then the user's other overrides."""
    data: dict = {}
    for c in choices:
        for key, value in c.settings.items():
            config_mod.set_dotted(data, key, value)
    for key, value in config_mod.parse_overrides(overrides):
        config_mod.set_dotted(data, key, value)
    return data


def describe_probe(probe: FolderProbe) -> str:
    kinds = f", {len(probe.classes)} sub-folder(s)" if probe.classes else ""
    broken = f", {probe.unreadable} unreadable" if probe.unreadable else ""
    return (f"{probe.root}: {probe.num_files:,} image file(s){kinds}; {probe.looked_at} looked at: median shorter "
            f"side {probe.short_side} px, {1 - probe.grey:.0%} colour, {probe.transparent:.0%} transparent{broken}")
