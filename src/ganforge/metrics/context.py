"""What the metrics share in one evaluation (`Context`): the generated samples, the real reference
set, the feature extractor and the features, each computed at most once; and `generate`, which
draws the samples (each rank its share under torchrun)."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import torch

from ganforge.config import Config
from ganforge.core.distributed import DistInfo, gather_shares, share
from ganforge.core.errors import DataError, GanforgeError
from ganforge.data import DATASETS, build_dataset, load_idx_split
from ganforge.generator import GeneratorHandle
from ganforge.metrics.features import load_extractor, load_extractor_file
from ganforge.metrics.inception import inception_extractor

FOLDER_REFERENCE_MAX = 50_000  # real images of a folder that FID / KID / PRDC compare against


class NotApplicable(Exception):
    """Raised by a metric that does not apply to this generator's data; the message says why."""


@dataclass
class Context:
    """Everything the metrics share, computed at most once per evaluation."""
    cfg: Config
    fake: torch.Tensor  # [N, C, H, W] in [0, 1], or [N, 2] points
    seed: int
    num_classes: int = 0  # a conditional generator's: sample i was drawn for class i % num_classes
    classifier: torch.nn.Module | None = None  # the model's classifier x -> class logits, when it has one
    cache: dict = field(default_factory=dict)

    @property
    def spec(self):
        return DATASETS[self.cfg.data.name]

    def once(self, key, fn):
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]

    # --- real data ---------------------------------------------------------------------------
    def real_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor | None, str]:
        """(images in [0, 1] [N, 1, 28, 28], labels, description) of an IDX dataset split."""
        def load():
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
                data = build_dataset(self.cfg.data, seed=self.cfg.train.seed + 12345)
                n = min(len(data), max(len(self.fake), 1000))
                return data.x[:n], data.y[:n], f"{self.cfg.data.name} mixture ({n} fresh points)"
            return self.once("toy", toy)
        if self.spec.real_splits is None and self.spec.kind == "image":  # a user's folder: its own images
            def folder():
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
            data = build_dataset(dataclasses.replace(self.cfg.data, max_images=0, range="unit"))
            return (data.samples(), data.y, f"{data.source} (the training images: the test split was not found)")
        return self.once("embedded", embedded)

    # --- features ----------------------------------------------------------------------------
    def extractor(self):
        def load():
            if self.spec.kind == "points":
                return None  # 2-D points are their own feature space
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
                try:
                    return inception_extractor(self.cfg.eval.inception_weights)
                except GanforgeError as e:
                    raise NotApplicable(str(e)) from None
            if self.spec.feature_net is None:
                raise NotApplicable(no_feature_net(self.cfg.data.name))
            return load_extractor(self.spec.feature_net)
        return self.once("extractor", load)

    def extractor_record(self) -> dict:
        return extractor_fields(self.extractor())

    def features(self, which: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        def run():
            ex = self.extractor()  # first: "no feature space" is the more basic reason to refuse
            x = self.fake if which == "fake" else self.reference()[0]
            return (x.double(), None) if ex is None else ex.run(x)
        return self.once(("features", which), run)


def extractor_fields(ex) -> dict:
    if ex is None:
        return {"feature_extractor": "identity (2-D points)", "feature_extractor_sha256": None}
    return {"feature_extractor": ex.name, "feature_extractor_sha256": ex.sha256,
            "feature_extractor_test_accuracy": ex.test_accuracy}




def no_feature_net(data: str) -> str:
    return (f"no feature network for '{data}' data (shipped: MNIST and Fashion-MNIST classifiers); numbers "
            "in another network's space would not compare")


@torch.no_grad()
def generate(G: GeneratorHandle, n: int, seed: int, batch: int = 1000, dist: DistInfo = DistInfo()) -> torch.Tensor:
    """n samples in [0, 1] (images) or as points, from inputs drawn with their own seed. Under
    torchrun each rank generates its share of the same n inputs and every rank gets all n."""
    inputs = {k: v[share(n, dist)] for k, v in G.inputs(n, seed).items()}  # all n in a single process
    # Alone, each batch leaves the device at once; under torchrun the share stays there for the gather.
    x = gather_shares(G.generate(inputs, batch, to_cpu=not dist.enabled), n, dist).cpu()
    if x.dim() == 4 and G.value_range == "signed":
        x = (x + 1) / 2
    return x.clamp(0, 1) if x.dim() == 4 else x


