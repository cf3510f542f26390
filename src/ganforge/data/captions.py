"""Captions of images, for text-to-image models (train.recipe=text-gan).

`Captions` holds every distinct caption once (`texts`) and, per image, the ids of its captions
(one image may have several, as CUB and COCO have five). A training batch gets one caption per
image, drawn afresh at every step from (seed, step, index), so a run and its resume see the same
captions; the recipe turns the ids into vectors. A folder's captions come from a `.txt` beside each
image (one caption per line) or from `captions.csv` (`file,caption`) / `captions.jsonl`
(`{"file": ..., "caption": ...}`) in the folder, several lines per file allowed.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ganforge.core.errors import DataError

CAPTION_FILES = ("captions.csv", "captions.jsonl")
MAX_CAPTION = 1000  # characters of a caption kept (longer ones are cut: a caption, not a document)


@dataclass
class Captions:
    texts: list[str]  # every distinct caption, in order of first appearance
    offsets: torch.Tensor  # int64 [N + 1]: image i's caption ids are ids[offsets[i]:offsets[i + 1]]
    ids: torch.Tensor  # int64 [M]
    seed: int = 0  # seeds the caption drawn for each image at each step

    @classmethod
    def from_lists(cls, per_image: list[list[str]], seed: int = 0) -> "Captions":
        """From each image's captions (a non-empty list of strings per image)."""
        index: dict[str, int] = {}
        ids, offsets = [], [0]
        for captions in per_image:
            for text in captions:
                ids.append(index.setdefault(text, len(index)))
            offsets.append(len(ids))
        return cls(list(index), torch.tensor(offsets, dtype=torch.int64), torch.tensor(ids, dtype=torch.int64), seed)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> list[str]:
        """Image i's captions."""
        return [self.texts[j] for j in self.ids[self.offsets[i]:self.offsets[i + 1]].tolist()]

    def subset(self, keep: torch.Tensor) -> "Captions":
        """The captions of the images at `keep` (indices or a mask), with texts of their own."""
        keep = keep.nonzero().flatten() if keep.dtype == torch.bool else keep
        return Captions.from_lists([self.of(int(i)) for i in keep], self.seed)

    def draw(self, idx: torch.Tensor, step: int | None) -> torch.Tensor:
        """One caption id per image of `idx`: in training drawn by (seed, step, image index), so an
        image gets the same caption at a step whatever batch or process it is in; the first caption
        of each image when step is None (evaluation)."""
        idx = torch.as_tensor(idx, dtype=torch.int64).cpu()
        start, count = self.offsets[idx], self.offsets[idx + 1] - self.offsets[idx]
        if step is None:
            return self.ids[start]
        base = (self.seed * 1_000_003 + step) * 1_000_000_007
        pick = [int(random.Random(base + i).random() * k) for i, k in zip(idx.tolist(), count.tolist())]
        return self.ids[start + torch.tensor(pick, dtype=torch.int64)]


def mismatched(t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """For each caption id of a batch, the id of another sample's caption that does not describe it:
    of another class when the classes `y` are known (Reed et al.'s wrong pairs come from another
    class), else (and for rows whose batch holds no other class) a different caption. Taken from the
    batch itself, rolled by 1, 2, ... until every row has one. Raises DataError for a batch whose
    images all have one caption."""
    wrong = torch.full_like(t, -1)
    for key in ((y, t) if y is not None else (t,)):
        _fill_from_others(wrong, t, key)
        if (wrong >= 0).all():
            return wrong
    raise DataError(f"a batch of {len(t)} images has a single caption: the matching-aware D needs captions that "
                    "do not describe an image; give the data more than one caption (or a larger train.batch_size)")


def _fill_from_others(wrong: torch.Tensor, t: torch.Tensor, key: torch.Tensor) -> None:
    """Rows of `wrong` still -1 get the caption of the nearest later row (cyclically) whose key differs."""
    n = len(t)
    for shift in range(1, n):
        other = torch.roll(torch.arange(n, device=t.device), -shift)
        ok = (wrong < 0) & (key[other] != key)
        wrong[ok] = t[other[ok]]
        if (wrong >= 0).all():
            return


def _clean(text: str) -> str:
    return " ".join(text.split())[:MAX_CAPTION]


def _read_table(path: Path) -> dict[str, list[str]]:
    """captions.csv / captions.jsonl -> relative file -> captions."""
    out: dict[str, list[str]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            if path.suffix == ".csv":
                rows = [(r[0], r[1]) for r in csv.reader(f) if len(r) >= 2 and r[0].strip()]
                if rows and rows[0][0].strip().lower() == "file":  # a header line
                    rows = rows[1:]
            else:
                rows = []
                for number, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        rows.append((str(record["file"]), str(record["caption"])))
                    except (ValueError, KeyError, TypeError):
                        raise DataError(f"{path}:{number}: not a JSON object with \"file\" and \"caption\"; "
                                        'write one {"file": "a.png", "caption": "..."} per line') from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the captions file as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{path}: unreadable CSV ({e}); write `file,caption` lines") from None
    for name, caption in rows:
        if _clean(caption):
            out.setdefault(name.strip().replace("\\", "/"), []).append(_clean(caption))
    return out


def _read_txt(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the caption as UTF-8") from None
    return [c for c in map(_clean, lines) if c]


def folder_captions(root: Path, used: list[Path], skipped: dict[str, list[str]]) -> tuple[list[list[str]], list[int]]:
    """(captions of each image that has some, positions in `used` of those images). Sources: the
    folder's captions.csv / captions.jsonl, else a .txt beside each image. Images without a caption
    and captions naming no image read are added to `skipped` (the folder's one warning)."""
    tables = [root / name for name in CAPTION_FILES if (root / name).is_file()]
    if len(tables) > 1:
        raise DataError(f"{root}: both {' and '.join(t.name for t in tables)}; keep one captions file")
    table = _read_table(tables[0]) if tables else None
    per_image, kept = [], []
    for k, p in enumerate(used):
        rel = p.relative_to(root).as_posix()
        if table is not None:
            captions = table.get(rel, [])
        else:
            txt = p.with_suffix(".txt")
            captions = _read_txt(txt) if txt.is_file() else []
        if captions:
            per_image.append(captions)
            kept.append(k)
        else:
            skipped.setdefault("images without a caption", []).append(rel)
    if table is not None:
        read = {p.relative_to(root).as_posix() for p in used}
        orphans = sorted(set(table) - read)
        if orphans:
            skipped.setdefault("captions naming no image read", []).extend(orphans)
    if not kept:
        where = tables[0].name if tables else "a .txt beside each image"
        raise DataError(f"{root}: data.captions=true but no image has a caption (looked in {where}); write one "
                        "caption per line in NAME.txt beside NAME.png, or a captions.csv of file,caption lines")
    return per_image, kept
