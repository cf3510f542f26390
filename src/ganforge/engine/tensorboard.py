"""`log.tensorboard: true`: the run's numbers and pictures also as a TensorBoard event file, in
<run>/tensorboard/ (`tensorboard --logdir runs`). A mirror of what the run folder records, fed by
RunDir: every numeric field of stats.jsonl, metrics.jsonl and health.jsonl as a scalar tagged
"<file>/<field>" at the row's step, and each sample grid as an image. The JSONL files stay the
record; the event file is for looking. Needs the `tensorboard` package (`ganforge[tensorboard]`),
imported only when asked for.
"""

from __future__ import annotations

import math
from pathlib import Path

from ganforge.core.errors import ConfigError


class TensorBoardMirror:
    def __init__(self, folder: Path, start_step: int = 0):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("log.tensorboard=true needs the tensorboard package: pip install 'ganforge[tensorboard]'"
                              " (or drop log.tensorboard)") from None
        # On resume, events after the resumed step are dropped: they will be logged again.
        self.writer = SummaryWriter(str(folder), purge_step=start_step or None)

    def row(self, name: str, row: dict) -> None:
        step = row.get("step")
        if not isinstance(step, int):
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{name}/{key}", value, step)

    def image(self, tag: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as im:
            self.writer.add_image(tag, np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()
