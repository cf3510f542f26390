"""The metric registry: each metric is one `Metric` spec, registered by its own module.

A spec says everything the rest of ganforge asks of a metric: how to compute it from a `Context`,
when it cannot apply (decided from the config before any sample is drawn), its headline numbers
(the keys metrics.jsonl and the plots carry, each with its label and which way is better), and
how `ganforge eval` prints its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ganforge.config import Config
from ganforge.core.registry import Registry
from ganforge.data import DatasetSpec
from ganforge.metrics.context import Context


@dataclass(frozen=True)
class Headline:
    key: str  # in the metric's record ("value": the metric's own number)
    label: str  # what it is, in plots and the report's sentences
    better: str | None  # "lower" | "higher" | None


@dataclass(frozen=True)
class Metric:
    name: str
    summary: str  # one line, for `ganforge eval --help` and the docs
    compute: Callable[[Context], dict]
    fmt: Callable[[dict], str]  # the record as one line of `ganforge eval`'s table
    headline: tuple[Headline, ...] = ()
    # why the metric cannot apply to a generator of this config (its data spec, its class count), or None
    refuse: Callable[[Config, DatasetSpec, int], str | None] = lambda cfg, spec, num_classes: None
    feature_space: bool = False  # computed on features: refused together when there is no feature space
    needs_samples: bool = True  # False: measures something else of the model (its classifier), draws nothing
    needs_classifier: bool = False  # measures the model's classifier (GeneratorHandle.C): refused without one
    extra: dict = field(default_factory=dict)

    def row_key(self, key: str) -> str:
        """The name a headline number has in metrics.jsonl (and for train.keep_best)."""
        return self.name if key == "value" else key if key.startswith(self.name) else f"{self.name}_{key}"


METRICS: Registry[Metric] = Registry("metric")


def register(metric: Metric) -> Metric:
    return METRICS.add(metric.name, metric)


def fmt_numbers(*keys: str, digits: int = 3) -> Callable[[dict], str]:
    """A record as 'k=v ...' for the keys it has."""
    def fmt(r: dict) -> str:
        return " ".join(f"{k}={r[k]:.{digits}f}" if isinstance(r[k], float) else f"{k}={r[k]}" for k in keys if k in r)
    return fmt
