"""A progress bar made at the first report (so that an input refused before any work prints its
error line alone), for the commands that work through many images."""

from __future__ import annotations

import contextlib

from tqdm import tqdm


@contextlib.contextmanager
def lazy_bar(unit: str, desc: str):
    """Yields progress(done, total): the first call makes a tqdm bar; the bar is closed on exit."""
    bars = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, unit=unit, desc=desc, leave=False))
        bars[0].update(done - bars[0].n)

    try:
        yield progress
    finally:
        for bar in bars:
            bar.close()
