"""Named metrics over (generator callable, dataset), each record carrying its protocol.

`evaluate_generator` takes a generator handle (ganforge.generator), never a trainer, so the same
code serves `ganforge eval` on a checkpoint or an export and the in-training metrics hook. What a
metric may do with the data (real splits, feature network, how modes are read) comes from the
dataset's entry in the registry, `DATASETS[cfg.data.name]`.
A metric that does not apply to the data (Parzen on RGB images, FID without a feature network for
the domain) is refused with a reason instead of being computed in a meaningless space.
"""

from __future__ import annotations

import difflib
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

from ganforge import __version__
from ganforge.config import Config
from ganforge.distributed import DistInfo, gather_shares, share
from ganforge.errors import DataError, GanforgeError

if TYPE_CHECKING:
    from ganforge.generator import GeneratorHandle

METRICS = ("parzen", "fid", "kid", "prdc", "modes", "memorization", "class_fid")
FOLDER_REFERENCE_MAX = 50_000  # real images of a folder that FID / KID / PRDC compare against

# The numbers a run can keep its best checkpoint by (train.keep_best), as metrics.jsonl names them:
# name -> (the metric that measures it, which way is better). `coverage` is the health checks'.
BETTER: dict[str, tuple[str, str]] = {
    "fid": ("fid", "lower"), "kid": ("kid", "lower"), "class_fid": ("class_fid", "lower"), "parzen": ("parzen", "higher"),
    **{f"prdc_{k}": ("prdc", "higher") for k in ("precision", "recall", "density", "coverage")},
    "modes_hit": ("modes", "higher"), "modes_captured": ("modes", "higher"),
    "modes_high_quality_fraction": ("modes", "higher"), "modes_kl_to_uniform": ("modes", "lower"),
    "modes_reverse_kl": ("modes", "lower"), "memorization_suspicious_fraction": ("memorization", "lower"),
    "coverage": ("health", "higher"),
}


# What each number is, for plots and the report's sentences (metrics.jsonl and health.jsonl keys).
LABELS: dict[str, str] = {
    "fid": "FID", "kid": "KID", "class_fid": "FID within classes", "parzen": "Parzen log-likelihood (nats)",
    "prdc_precision": "precision", "prdc_recall": "recall", "prdc_density": "density",
    "prdc_coverage": "coverage (PRDC)", "modes_hit": "modes hit", "modes_captured": "modes captured",
    "modes_high_quality_fraction": "share of confidently classified samples",
    "modes_kl_to_uniform": "KL of the mode histogram to uniform (nats)", "modes_reverse_kl": "reverse KL (nats)",
    "memorization_suspicious_fraction": "share of samples suspiciously close to a training image",
    "coverage": "modes covered", "D_acc": "D's accuracy (real vs generated)", "grad_G": "gradient norm of G",
    "grad_D": "gradient norm of D",
}


def describe(key: str) -> tuple[str, str | None]:
    """(label, "lower" | "higher" | None): what a logged number is and which way is better."""
    return LABELS.get(key, key), BETTER[key][1] if key in BETTER else None


def improves(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of the number `name` beats `best` (None: nothing to beat yet)."""
    if best is None:
        return True
    return value < best if BETTER[name][1] == "lower" else value > best


class NotApplicable(Exception):
    """Raised by a metric that does not apply to this generator's data; the message says why."""


def check_metric_names(names: list[str]) -> list[str]:
    for n in names:
        if n not in METRICS:
            close = difflib.get_close_matches(n, METRICS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise GanforgeError(f"unknown metric '{n}'{hint}; choose from {', '.join(METRICS)}")
    return names


@dataclass
class _Context:
    """Everything the metrics share, computed at most once per evaluation."""
    cfg: Config
    fake: torch.Tensor  # [N, C, H, W] in [0, 1], or [N, 2] points
    seed: int
    num_classes: int = 0  # a conditional generator's: sample i was drawn for class i % num_classes
    cache: dict = field(default_factory=dict)

    @property
    def spec(self):
        from ganforge.data import DATASETS

        return DATASETS[self.cfg.data.name]

    def once(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    # --- real data ---------------------------------------------------------------------------
    def real_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None, str]:
        """(images in [0, 1] [N, 1, 28, 28], labels, description) of an IDX dataset split."""
        def load():
            from ganforge.data import load_idx_split

            domain = self.spec.real_splits
            if domain is None:
                raise NotApplicable(f"needs a standard dataset split; this generator was trained on '{self.cfg.data.name}'")
            try:
                x, y, source = load_idx_split(domain, split, self.cfg.data.root)
            except DataError as e:
                raise NotApplicable(f"the {domain} {split} split is not on the data search path "
                                    f"(ganforge data fetch {domain}): {str(e).splitlines()[0]}") from None
            return (torch.from_numpy(x).float().div_(255)[:, None], torch.from_numpy(y).long(),
                    f"{domain} {split} ({len(x)} images, {source})")
        return self.once(("split", split), load)

    def reference(self) -> tuple[torch.Tensor, torch.Tensor | None, str]:
        """The real set feature metrics compare against: the test split, or the toy mixture."""
        if self.spec.kind == "points":
            def toy():
                from ganforge.data import build_dataset

                data = build_dataset(self.cfg.data, seed=self.cfg.train.seed + 12345)
                n = min(len(data), max(len(self.fake), 1000))
                return data.x[:n], data.y[:n], f"{self.cfg.data.name} mixture ({n} fresh points)"
            return self.once("toy", toy)
        if self.spec.real_splits is None and self.spec.kind == "image":  # a user's folder: its own images
            def folder():
                import dataclasses

                from ganforge.data import build_dataset

                with warnings.catch_warnings():  # skipped files were reported when the run loaded them
                    warnings.simplefilter("ignore")
                    data = build_dataset(dataclasses.replace(self.cfg.data, max_images=0))
                n = min(len(data), FOLDER_REFERENCE_MAX)  # uint8, converted batch by batch by the extractor
                return (data.x[:n], data.y[:n] if data.y is not None else None,
                        f"{data.source} (the first {n} of its {len(data)} training images: a folder has no test split)")
            return self.once("folder", folder)
        try:
            return self.real_split("test")
        except NotApplicable:
            if not self.spec.embedded:
                raise
        # Offline, a generator trained on data shipped inside the package is compared with that data
        # itself (its training images); the record says so.
        def embedded():
            import dataclasses

            from ganforge.data import build_dataset

            data = build_dataset(dataclasses.replace(self.cfg.data, max_images=0, range="unit"))
            return (data.samples(), data.y, f"{data.source} (the training images: the test split was not found)")
        return self.once("embedded", embedded)

    # --- features ----------------------------------------------------------------------------
    def extractor(self):
        def load():
            if self.spec.kind == "points":
                return None  # 2-D points are their own feature space
            from ganforge.metrics.features import load_extractor, load_extractor_file

            if self.cfg.eval.feature_net:
                try:
                    ex, info = load_extractor_file(self.cfg.eval.feature_net)
                except GanforgeError as e:
                    raise NotApplicable(str(e)) from None
                shape = (info.get("channels"), info.get("resolution"))
                if shape != (self.cfg.data.channels, self.cfg.data.resolution):
                    raise NotApplicable(f"eval.feature_net={self.cfg.eval.feature_net} was trained on {shape[0]}-channel "
                                        f"{shape[1]} px images; these samples are {self.cfg.data.channels}-channel "
                                        f"{self.cfg.data.resolution} px")
                return ex
            if self.spec.feature_net == "inception-v3":
                from ganforge.metrics.inception import inception_extractor

                try:
                    return inception_extractor(self.cfg.eval.inception_weights)
                except GanforgeError as e:
                    raise NotApplicable(str(e)) from None
            if self.spec.feature_net is None:
                raise NotApplicable(_no_feature_net(self.cfg.data.name))
            return load_extractor(self.spec.feature_net)
        return self.once("extractor", load)

    def extractor_record(self) -> dict:
        return _extractor_fields(self.extractor())

    def features(self, which: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        def run():
            ex = self.extractor()  # first: "no feature space" is the more basic reason to refuse
            x = self.fake if which == "fake" else self.reference()[0]
            return (x.double(), None) if ex is None else ex.run(x)
        return self.once(("features", which), run)


def _extractor_fields(ex) -> dict:
    if ex is None:
        return {"feature_extractor": "identity (2-D points)", "feature_extractor_sha256": None}
    return {"feature_extractor": ex.name, "feature_extractor_sha256": ex.sha256,
            "feature_extractor_test_accuracy": ex.test_accuracy}


# --- the metrics ----------------------------------------------------------------------------------

def _parzen(ctx: _Context) -> dict:
    from ganforge.metrics.parzen import parzen_protocol

    if ctx.fake.dim() != 4 or ctx.fake.shape[1:] != (1, 28, 28):
        raise NotApplicable(f"the Goodfellow et al. protocol is defined for 28x28 grey images (d = 784); "
                            f"these samples are {tuple(ctx.fake.shape[1:])}")
    valid, _, valid_desc = ctx.real_split("validation")
    test, _, test_desc = ctx.real_split("test")
    r = parzen_protocol(ctx.fake, valid[:1000], test)
    return {"value": r.mean, "stderr": r.stderr, "sigma": r.sigma, "test_nearest_sq_distance": r.test_nearest_d2,
            "validation_ll": {f"{s:.4f}": v for s, v in r.valid_ll.items()},
            "split": f"centres: {len(ctx.fake)} generated; sigma chosen on the first 1000 of {valid_desc}; "
                     f"scored on {test_desc}", "num_real": len(test)}


def _fid(ctx: _Context) -> dict:
    from ganforge.metrics.fid import fid

    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    return {"value": fid(real, fake), "split": ctx.reference()[2], "num_real": len(real), **ctx.extractor_record()}


def _class_fid(ctx: _Context) -> dict:
    """FID within each class: a conditional generator's samples of class k against the real test
    images of class k, in the same feature space as FID; the value is the mean over classes."""
    from ganforge.metrics.fid import fid

    if not ctx.num_classes:
        raise NotApplicable("per-class FID needs a conditional generator (model.conditional); this one takes no class")
    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    labels = ctx.reference()[1]
    if labels is None:
        raise NotApplicable("the reference images have no labels")
    asked = torch.arange(len(fake)) % ctx.num_classes
    per_class = [fid(real[labels == k], fake[asked == k]) for k in range(ctx.num_classes)]
    return {"value": sum(per_class) / len(per_class), "per_class": per_class,
            "num_fake_per_class": len(fake) // ctx.num_classes, "split": ctx.reference()[2],
            "num_real": len(real), **ctx.extractor_record()}


def _kid(ctx: _Context) -> dict:
    from ganforge.metrics.fid import kid

    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    mean, std = kid(real, fake, seed=ctx.seed)
    return {"value": mean, "std": std, "split": ctx.reference()[2], "num_real": len(real), **ctx.extractor_record()}


def _prdc(ctx: _Context) -> dict:
    from ganforge.metrics.prdc import prdc

    real, _ = ctx.features("real")
    fake, _ = ctx.features("fake")
    return {**prdc(real, fake), "k_precision_recall": 3, "k_density_coverage": 5, "split": ctx.reference()[2],
            "num_real": len(real), **ctx.extractor_record()}


def _modes(ctx: _Context) -> dict:
    from ganforge.metrics.modes import label_modes, toy_modes

    if ctx.spec.modes == "toy":
        from ganforge.data import toy_centres, toy_std

        return {**toy_modes(ctx.fake, toy_centres(ctx.cfg.data), toy_std(ctx.cfg.data)),
                "definition": "VEEGAN / PacGAN (3 std)"}
    if ctx.spec.modes == "stacked":  # the MNIST classifier on each channel; a mode is a digit triple
        from ganforge.metrics.features import load_extractor
        from ganforge.metrics.modes import stacked_modes

        ex = load_extractor("mnist-cnn")
        preds = [ex.run(ctx.fake[:, c:c + 1])[1] for c in range(3)]
        return {**stacked_modes(*preds), "definition": "MNIST classifier per channel (Stacked MNIST)",
                **_extractor_fields(ex)}
    ctx.extractor()  # refuses data without a classifier
    _, pred = ctx.features("fake")
    return {**label_modes(pred, ctx.spec.num_classes), "definition": "classifier label histogram",
            **ctx.extractor_record()}


def _memorization(ctx: _Context) -> dict:
    from ganforge.metrics.memorization import memorization

    if ctx.fake.dim() != 4:
        raise NotApplicable("memorisation is checked against training images; these samples are points")
    train_split = "train50k" if ctx.cfg.data.split == "train50k" else "train"
    train, _, train_desc = ctx.real_split(train_split)
    if ctx.spec.train_subset:
        n = ctx.spec.train_subset
        train, train_desc = train[:n], f"{ctx.spec.real_splits} train[0:{n}] (the {ctx.cfg.data.name} subset)"
    if ctx.cfg.data.max_images and ctx.cfg.data.max_images < len(train):  # the images G was trained on
        n = ctx.cfg.data.max_images
        train, train_desc = train[:n], f"the first {n} of {train_desc} (data.max_images)"
    test, _, test_desc = ctx.real_split("test")
    if len(test) > len(train):
        # A nearest neighbour among more images is nearer: compare against as many test images as
        # training images, so that d_train / d_test is about 1 for a generator that does not copy.
        test, test_desc = test[:len(train)], f"the first {len(train)} of {test_desc}"
    return {**memorization(ctx.fake, train, test), "space": "pixels in [0, 1]",
            "split": f"train: {train_desc}; test: {test_desc}"}


_FUNCTIONS: dict[str, Callable[[_Context], dict]] = {
    "parzen": _parzen, "fid": _fid, "kid": _kid, "prdc": _prdc, "modes": _modes, "memorization": _memorization,
    "class_fid": _class_fid}


@torch.no_grad()
def generate(G: "GeneratorHandle", n: int, seed: int, batch: int = 1000, dist: DistInfo = DistInfo()) -> torch.Tensor:
    """n samples in [0, 1] (images) or as points, from inputs drawn with their own seed. Under
    torchrun each rank generates its share of the same n inputs and every rank gets all n."""
    inputs = {k: v[share(n, dist)] for k, v in G.inputs(n, seed).items()}  # all n in a single process
    # Alone, each batch leaves the device at once; under torchrun the share stays there for the gather.
    x = gather_shares(G.generate(inputs, batch, to_cpu=not dist.enabled), n, dist).cpu()
    if x.dim() == 4 and G.value_range == "signed":
        x = (x + 1) / 2
    return x.clamp(0, 1) if x.dim() == 4 else x


def evaluate_generator(G: "GeneratorHandle", metrics: list[str], num_samples: int = 10_000, seed: int = 0,
                       step: int | None = None, source: str = "", cache: dict | None = None,
                       dist: DistInfo = DistInfo()) -> list[dict]:
    """Records for `metrics`. `cache` (optional) keeps the real-data side (splits, extractor, real
    features) between calls, as the in-training hook does; generated-sample entries never persist.
    Under torchrun every rank must call it (each generates its share); rank 0 gets the records,
    the others an empty list."""
    check_metric_names(metrics)
    cfg = G.cfg
    refused = refusals(metrics, cfg, G.num_classes)
    if len(refused) == len(metrics):  # nothing to compute: no samples either
        fake = None
    else:
        fake = generate(G, num_samples, seed, dist=dist)
    if not dist.is_main:
        return []
    ctx = _Context(cfg, fake, seed, num_classes=G.num_classes, cache=cache if cache is not None else {})
    records = []
    for name in metrics:
        base = {"metric": name, "generator": source, "step": step, "num_fake": num_samples, "seed": seed,
                "dataset": cfg.data.name, "ganforge_version": __version__}
        t0 = time.perf_counter()
        try:
            if name in refused:
                raise NotApplicable(refused[name])
            base.update(_FUNCTIONS[name](ctx))
        except NotApplicable as e:
            base["refused"] = str(e)
        base["seconds"] = round(time.perf_counter() - t0, 2)
        records.append(base)
    ctx.cache.pop(("features", "fake"), None)
    return records


FEATURE_METRICS = ("fid", "kid", "prdc", "class_fid")  # the ones computed in a feature space


def _no_feature_net(data: str) -> str:
    return (f"no feature network for '{data}' data (shipped: MNIST and Fashion-MNIST classifiers); numbers "
            "in another network's space would not compare")


def refusals(names: list[str], cfg: Config, num_classes: int = 0) -> dict[str, str]:
    """{metric: why it cannot apply to a generator of `cfg`}, decided from the config alone (before
    any sample is drawn). The metrics themselves still refuse what only the data can tell (a split
    missing from the search path)."""
    from ganforge.data import DATASETS

    spec, data = DATASETS[cfg.data.name], cfg.data.name
    feature_space = None  # why no feature space can be had, asked once for all the feature metrics
    if any(n in FEATURE_METRICS for n in names) and spec.kind != "points" and not cfg.eval.feature_net:
        if spec.feature_net is None:
            feature_space = _no_feature_net(data)
        elif spec.feature_net == "inception-v3":
            from ganforge.metrics.inception import find_weights

            try:
                find_weights(cfg.eval.inception_weights)  # a first use fetches them
            except GanforgeError as e:
                feature_space = str(e)
    why = {}
    for name in names:
        if name == "parzen" and spec.real_splits != "mnist":
            why[name] = (f"the Goodfellow et al. 2014 Parzen protocol is defined for MNIST (sigma chosen on its "
                         f"validation split, scored on its test split); this generator was trained on '{data}': "
                         "use fid / kid / prdc")
        elif name in FEATURE_METRICS and feature_space:
            why[name] = feature_space
        elif name == "class_fid" and not num_classes:
            why[name] = "per-class FID needs a conditional generator (model.conditional); this one takes no class"
        elif name == "modes" and spec.modes is None:
            why[name] = f"no mode definition for '{data}' data (classes of MNIST / Fashion-MNIST, Stacked MNIST, toy mixtures)"
        elif name == "memorization" and (spec.kind == "points" or spec.real_splits is None):
            why[name] = (f"memorisation is checked against a standard dataset's training and test images; '{data}' "
                         "has none" + (" (its samples are points)" if spec.kind == "points" else ""))
    return why


def default_metrics(cfg: Config) -> list[str]:
    from ganforge.data import DATASETS

    return list(DATASETS[cfg.data.name].default_metrics)


def format_table(records: list[dict]) -> str:
    lines = [f"{'metric':13s} {'result':58s} {'s':>6s}"]
    for r in records:
        if "refused" in r:
            text = "refused: " + r["refused"]
        elif r["metric"] == "parzen":
            text = (f"{r['value']:.1f} +- {r['stderr']:.1f} (sigma {r['sigma']:.3f}, "
                    f"nearest d2 {r['test_nearest_sq_distance']:.2f})")
        elif r["metric"] == "kid":
            text = f"{r['value']:.5f} +- {r['std']:.5f}"
        elif r["metric"] == "fid":
            text = f"{r['value']:.3f}"
        elif r["metric"] == "class_fid":
            text = f"{r['value']:.3f} (mean of {len(r['per_class'])}; " + " ".join(f"{v:.1f}" for v in r["per_class"]) + ")"
        elif r["metric"] == "prdc":
            text = " ".join(f"{k}={r[k]:.3f}" for k in ("precision", "recall", "density", "coverage"))
        elif r["metric"] == "modes":
            keys = [k for k in ("modes_hit", "modes_captured", "num_modes", "kl_to_uniform",
                                "high_quality_fraction", "reverse_kl") if k in r]
            text = " ".join(f"{k}={r[k]:.3f}" if isinstance(r[k], float) else f"{k}={r[k]}" for k in keys)
        else:
            text = (f"suspicious={r['suspicious_fraction']:.4f} (expect ~{r['expected_fraction']}) "
                    f"median d_train/d_test={r['median_train_test_ratio']:.3f}")
        lines.append(f"{r['metric']:13s} {text:58s} {r['seconds']:6.1f}")
    extractors = {(r.get("feature_extractor"), r.get("feature_extractor_sha256")) for r in records if r.get("feature_extractor")}
    for name, sha in extractors:
        lines.append(f"feature space: {name}" + (f" (sha256 {sha[:16]}...)" if sha else ""))
    return "\n".join(lines)

