"""Named entries (datasets, metrics, recipes, nets, losses, commands) with "did you mean" for typos.

A `Registry` is a dict that refuses a second entry under a taken name (two files registering the
same dataset is a bug to see at import, not a silent override) and answers an unknown name with
the closest known one.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Iterable, TypeVar

T = TypeVar("T")


def suggest(name: str, options: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `options`, or ''."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def choose(kind: str, value: str, options: Iterable[str]) -> str | None:
    """None when `value` is one of `options`, else the message a user sees (with "did you mean")."""
    options = list(options)
    if value in options:
        return None
    return f"{kind}={value!r} is not one of {', '.join(options)}{suggest(value, options)}"


class Registry(dict[str, T]):
    """name -> entry, filled by `add` (usually at import of the module that defines the entry)."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind  # what an entry is, for messages: "dataset", "metric", ...

    def add(self, name: str, entry: T) -> T:
        if name in self:
            raise ValueError(f"{self.kind} '{name}' is registered twice")  # a programming error
        self[name] = entry
        return entry

    def unknown(self, name: str) -> str:
        """The message for a name that is not registered: the known names and the closest one."""
        return f"unknown {self.kind} '{name}'{suggest(name, self)}; choose from {', '.join(self)}"


def import_all(package: str, path) -> None:
    """Import every module of a package that is not imported yet: each registers its entries, so a
    new dataset, metric, recipe or command is one file dropped into its package."""
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
