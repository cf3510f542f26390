"""Named metrics over (generator handle, dataset), each record carrying its protocol.

`evaluate_generator` takes a generator handle (ganforge.generator), never a trainer, so the same
code serves `ganforge eval` on a checkpoint or an export and the in-training metrics hook. Each
metric is one module that registers a `Metric` spec (metrics/registry.py): a new metric is one
file: `import_all` finds it. What a metric may do with the data (real splits, feature network, how
modes are read) comes from the dataset's spec, `DATASETS[cfg.data.name]`. A metric that does not
apply to the data (Parzen on RGB images, FID without a feature network for the domain) is refused
with a reason instead of being computed in a meaningless space.
"""

from __future__ import annotations

import time

from ganforge.config import Config
from ganforge.core.distributed import DistInfo
from ganforge.core.errors import GanforgeError
from ganforge.core.version import __version__
from ganforge.data import DATASETS
from ganforge.generator import GeneratorHandle
# each registers its metric; `ganforge eval` lists them in this order
from ganforge.metrics import parzen, fid, kid, prdc, modes, memorization, class_fid  # noqa: F401, I001
from ganforge.metrics.context import Context, NotApplicable, generate, no_feature_net
from ganforge.metrics.inception import find_weights
from ganforge.metrics.registry import METRICS, Headline, Metric, register
from ganforge.core.registry import import_all

import_all(__name__, __path__)  # any other module of this package (a metric added as one file)


def _numbers() -> dict[str, tuple[Metric, Headline]]:
    return {m.row_key(h.key): (m, h) for m in METRICS.values() for h in m.headline}


def better_of(key: str) -> str | None:
    """"lower" | "higher" | None: which way is better for a metrics.jsonl number."""
    found = _numbers().get(key)
    return found[1].better if found else None


def keepable() -> dict[str, str]:
    """The metrics.jsonl numbers a run can keep its best checkpoint by: name -> the metric measuring it."""
    return {key: m.name for key, (m, h) in _numbers().items() if h.better}


def describe(key: str) -> tuple[str, str | None]:
    """(label, "lower" | "higher" | None) of a metrics.jsonl number."""
    found = _numbers().get(key)
    return (found[1].label, found[1].better) if found else (key, None)


def improves(direction: str, value: float, best: float | None) -> bool:
    """Whether `value` beats `best` (None: nothing to beat yet) when `direction` ("lower" | "higher") is better."""
    if best is None:
        return True
    return value < best if direction == "lower" else value > best


def check_metric_names(names: list[str]) -> list[str]:
    for n in names:
        if n not in METRICS:
            raise GanforgeError(METRICS.unknown(n))
    return names


def flatten_records(records: list[dict]) -> dict:
    """Evaluation records -> one metrics.jsonl row of their headline numbers (and refusals)."""
    row = {}
    for r in records:
        if "refused" in r:
            row[f"{r['metric']}_refused"] = r["refused"]
            continue
        m = METRICS[r["metric"]]
        row.update({m.row_key(h.key): r[h.key] for h in m.headline if h.key in r})
    return row


def evaluate_generator(G: GeneratorHandle, metrics: list[str], num_samples: int = 10_000, seed: int = 0,
                       step: int | None = None, source: str = "", cache: dict | None = None,
                       dist: DistInfo = DistInfo()) -> list[dict]:
    """Records for `metrics`. `cache` (optional) keeps the real-data side (splits, extractor, real
    features) between calls, as the in-training hook does; generated-sample entries never persist.
    Under torchrun every rank must call it (each generates its share); rank 0 gets the records,
    the others an empty list."""
    check_metric_names(metrics)
    cfg = G.cfg
    refused = refusals(metrics, cfg, G.num_classes)
    if not getattr(G, "takes_latent", True):  # an image-to-image model: nothing to draw from seeds
        refused = {name: f"a {cfg.train.recipe} model turns images into images and draws no samples of its own "
                         "(bench.translation and bench.imputation measure such models)" for name in metrics}
    if getattr(G, "C", None) is None:
        refused.update({name: NO_CLASSIFIER for name in metrics if METRICS[name].needs_classifier})
    if all(name in refused or not METRICS[name].needs_samples for name in metrics):  # no samples needed
        fake = None
    else:
        fake = generate(G, num_samples, seed, dist=dist)
    if not dist.is_main:
        return []
    ctx = Context(cfg, fake, seed, num_classes=G.num_classes, cache=cache if cache is not None else {},
                  classifier=getattr(G, "C", None))
    records = []
    for name in metrics:
        base = {"metric": name, "generator": source, "step": step, "num_fake": num_samples, "seed": seed,
                "dataset": cfg.data.name, "ganforge_version": __version__}
        t0 = time.perf_counter()
        try:
            if name in refused:
                raise NotApplicable(refused[name])
            base.update(METRICS[name].compute(ctx))
        except NotApplicable as e:
            base["refused"] = str(e)
        base["seconds"] = round(time.perf_counter() - t0, 2)
        records.append(base)
    ctx.cache.pop(("features", "fake"), None)
    return records


NO_CLASSIFIER = "measures a model's classifier; this model has none (the semi-supervised GAN has one: train.recipe=ssgan)"


def refusals(names: list[str], cfg: Config, num_classes: int = 0) -> dict[str, str]:
    """{metric: why it cannot apply to a generator of `cfg`}, decided from the config alone (before
    any sample is drawn). The metrics themselves still refuse what only the data can tell (a split
    missing from the search path)."""
    spec = DATASETS[cfg.data.name]
    why = {}
    for name in names:
        metric = METRICS[name]
        problem = metric.refuse(cfg, spec, num_classes)
        if problem is None and metric.feature_space:
            problem = _no_feature_space(cfg)
        if problem:
            why[name] = problem
    return why


def _no_feature_space(cfg: Config) -> str | None:
    """Why no feature space can be had for the feature metrics, or None."""
    spec = DATASETS[cfg.data.name]
    if spec.kind == "points" or cfg.eval.feature_net:
        return None
    if spec.feature_net is None:
        return no_feature_net(cfg.data.name)
    if spec.feature_net == "inception-v3":
        try:
            find_weights(cfg.eval.inception_weights)  # a first use fetches them
        except GanforgeError as e:
            return str(e)
    return None


def default_metrics(cfg: Config) -> list[str]:
    return list(DATASETS[cfg.data.name].default_metrics)


def format_table(records: list[dict]) -> str:
    lines = [f"{'metric':13s} {'result':58s} {'s':>6s}"]
    for r in records:
        text = "refused: " + r["refused"] if "refused" in r else METRICS[r["metric"]].fmt(r)
        lines.append(f"{r['metric']:13s} {text:58s} {r['seconds']:6.1f}")
    spaces: dict[tuple, list[str]] = {}  # which metric's numbers are in which feature space
    for r in records:
        if r.get("feature_extractor"):
            spaces.setdefault((r["feature_extractor"], r.get("feature_extractor_sha256")), []).append(r["metric"])
    for (name, sha), names in spaces.items():
        lines.append(f"feature space of {', '.join(names)}: {name}" + (f" (sha256 {sha[:16]}...)" if sha else ""))
    return "\n".join(lines)


__all__ = ["METRICS", "Metric", "Headline", "register", "Context", "NotApplicable", "evaluate_generator", "generate",
           "refusals", "default_metrics", "format_table", "describe", "better_of", "keepable", "improves",
           "check_metric_names", "flatten_records"]
