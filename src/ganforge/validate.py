"""A config checked against the registries: the names that datasets, nets, losses, recipes, metrics
and augmentations own, and the combinations they refuse. config.py checks the config's own
ranges and imports none of these; this module sits above them all.

    cfg = validate.load("configs/mnist_dcgan.yaml", ["train.epochs=5"])   # parsed, ranged and checked
"""

from __future__ import annotations

from pathlib import Path

from ganforge import config as config_mod
from ganforge.config import Config
from ganforge.core.augment import POLICIES, parse_policy
from ganforge.core.errors import ConfigError
from ganforge.core.registry import choose
from ganforge.data import DATASETS, degrade
from ganforge.losses import LOSSES
from ganforge.metrics import METRICS, keepable
from ganforge.nets import check_nets
from ganforge.recipes import RECIPES

# numbers train.keep_best may name that the health checks measure (the metrics declare theirs)
HEALTH_KEEPABLE = {"coverage": "health"}
DEFAULTS = config_mod.flatten(config_mod.to_dict(Config()))


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """config.load, then the registry checks."""
    cfg = config_mod.load(path, overrides)
    if cfg.train.recipe in RECIPES:
        cfg = RECIPES[cfg.train.recipe].complete(cfg)
    check(cfg, str(path) if path is not None else "defaults")
    return cfg


def from_dict(data: dict, where: str = "config", saved: bool = False) -> Config:
    """A config from a dict. `saved`: the config a checkpoint or export carries, checked as what it
    describes (names, shapes) but not as a run about to start (files it read, metrics it named)."""
    cfg = config_mod.from_dict(data, where)
    check(cfg, where, saved)
    return cfg


def _check(problem: str | None, where: str) -> None:
    if problem:
        raise ConfigError(f"{where}: {problem}")


def check(cfg: Config, where: str = "config", saved: bool = False) -> None:
    d, t = cfg.data, cfg.train
    for problem in (choose("data.name", d.name, DATASETS), choose("train.recipe", t.recipe, RECIPES),
                    choose("loss.kind", cfg.loss.kind, LOSSES)):
        _check(problem, where)
    spec = DATASETS[d.name]
    _check(spec.check(d), where)
    _check(choose("data.split", d.split, spec.splits), where)
    _check(None if not d.image_width or spec.translation else
           f"data.image_width={d.image_width}: non-square images are for the translation datasets "
           f"({', '.join(n for n, s in DATASETS.items() if s.translation)}); drop it for {d.name}", where)
    _check(_check_degrade(cfg, saved), where)
    _check(None if d.storage in ("auto", "memory") or d.name == "folder" else
           f"data.storage={d.storage} is for image folders (data.name=folder); {d.name} is read whole: drop it", where)
    _check(check_nets(cfg), where)
    _check(RECIPES[t.recipe].check(cfg), where)
    _check(_keys_of_other_recipes(cfg), where)
    for name in parse_policy(t.augment):
        problem = choose("train.augment", name, POLICIES)
        _check(problem and problem + " (a comma-separated list, e.g. color,translation,cutout)", where)
    for name in cfg.eval.metrics:
        _check(choose("eval.metrics", name, METRICS), where)
    _check(None if saved else _metric_refusals(cfg), where)
    _check_keep_best(cfg, where)


def _check_degrade(cfg: Config, saved: bool = False) -> str | None:
    """data.degrade: a known degradation with a parameter in range, on images of one domain (a
    saved config's masks=DIR need not exist here: the model does not read them)."""
    d = cfg.data
    if not d.degrade:
        return None
    spec = DATASETS[d.name]
    if spec.kind != "image" or spec.translation:
        return (f"data.degrade={d.degrade} makes restoration pairs from images of one domain; data.name={d.name} "
                f"is {'two-domain translation data' if spec.translation else 'not images'}")
    return degrade.check(d.degrade, d.resolution, files=not saved)


def _metric_refusals(cfg: Config) -> str | None:
    """The in-training metrics that cannot apply to this config (class_fid on an unconditional
    model, Parzen on RGB images), refused now rather than in metrics.jsonl at the first evaluation.
    Only a list the user named is refused, as `ganforge eval --metrics` does: the default list
    stands for "those that apply", and a default that does not is recorded as refused. (Whether a
    feature space can be had is decided when the metrics first run: it may download.)"""
    if cfg.eval.every_steps <= 0 or cfg.eval.metrics == DEFAULTS["eval.metrics"]:
        return None
    spec = DATASETS[cfg.data.name]
    if spec.dry_run:  # a --dry-run's stand-in data: the real data's config was checked before
        return None
    num_classes = (cfg.model.num_classes or len(spec.classes or ()) or 1) if cfg.model.conditional != "none" else 0
    refused = {name: METRICS[name].refuse(cfg, spec, num_classes) for name in cfg.eval.metrics}
    refused = {name: why for name, why in refused.items() if why}
    if not refused:
        return None
    return (f"eval.metrics: {'; '.join(f'{name} cannot apply here ({why})' for name, why in refused.items())}: "
            f"drop {'them' if len(refused) > 1 else 'it'} from eval.metrics")


def _keys_of_other_recipes(cfg: Config) -> str | None:
    """Keys set away from their defaults that only other recipes read (each recipe declares `reads`)."""
    recipe, flat, default = RECIPES[cfg.train.recipe], config_mod.flatten(config_mod.to_dict(cfg)), DEFAULTS
    owners = {key: [r.kind for r in RECIPES.values() if key in r.reads] for r in RECIPES.values() for key in r.reads}
    unused = sorted(k for k, kinds in owners.items() if k not in recipe.reads and flat[k] != default[k])
    if not unused:
        return None
    by = sorted({kind for k in unused for kind in owners[k]})
    return (f"{', '.join(unused)}: not part of the {recipe.kind} recipe (read by "
            f"{' and '.join(by)}); drop {'them' if len(unused) > 1 else 'it'}")


def _check_keep_best(cfg: Config, where: str) -> None:
    t, h = cfg.train, cfg.health
    if not t.keep_best:
        return
    options = {**keepable(), **HEALTH_KEEPABLE}
    _check(choose("train.keep_best", t.keep_best, options), where)
    if options[t.keep_best] == "health":
        _check(None if h.every_steps > 0 else f"train.keep_best={t.keep_best} is measured by the health checks: "
                                               "set health.every_steps (e.g. 500)", where)
        return
    metric = options[t.keep_best]
    _check(None if cfg.eval.every_steps > 0 and metric in cfg.eval.metrics else
           f"train.keep_best={t.keep_best} comes from the in-training metric '{metric}': set eval.every_steps "
           f"(e.g. 1000) and put {metric} in eval.metrics (now {cfg.eval.metrics})", where)
