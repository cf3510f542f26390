"""How a recipe's logged statistics are drawn: the recipe and its loss declare `StatPlot`s, the
report draws them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StatPlot:
    """How to draw some step statistics: the recipe and its loss say which, the report draws them."""
    file: str  # e.g. "losses.png"
    keys: tuple[str, ...]  # keys of stats.jsonl
    ylabel: str
    labels: dict[str, str] = field(default_factory=dict)  # key -> legend label
    ylim: tuple[float, float] | None = None
    hline: tuple[float, str] | None = None  # (y, label) of a reference line
    caption: str = ""  # under the plot in the report (default: the file's stem)
