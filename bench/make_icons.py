"""A folder of RGBA icons for the image-folder checks: simple shapes (disc, square, triangle, ring,
diamond) in random colours, drawn on transparency, saved as 64 x 64 RGBA PNGs, one sub-folder
per shape. Every transparent pixel stores a loud magenta, as careless exporters leave it: if a
loader ignores the alpha channel, the magenta shows.

    python -m bench.make_icons OUT_DIR [--n 3786] [--seed 0]
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.common import parser, run_script

SHAPES = ("disc", "square", "triangle", "ring", "diamond")
SIZE = 64


def draw(shape: str, rng: np.random.Generator) -> Image.Image:
    im = Image.new("RGBA", (SIZE, SIZE), (255, 0, 255, 0))  # magenta under full transparency
    d = ImageDraw.Draw(im)
    colour = tuple(int(c) for c in rng.integers(0, 220, 3)) + (255,)
    r = int(rng.integers(14, 28))
    cx, cy = (int(v) for v in rng.integers(r + 2, SIZE - r - 2, 2))
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "disc":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "ring":
        d.ellipse(box, outline=colour, width=max(3, r // 3))
    else:
        d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    return im


def run(args) -> None:
    rng = np.random.default_rng(args.seed)
    for shape in SHAPES:
        (args.out / shape).mkdir(parents=True, exist_ok=True)
    for i in range(args.n):
        shape = SHAPES[i % len(SHAPES)]
        draw(shape, rng).save(args.out / shape / f"{i:05d}.png")
    print(f"{args.n} icons in {args.out}")


def smoke(tmp: Path) -> list[str]:
    return [str(tmp / "icons"), "--n", "10"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=3786)
    ap.add_argument("--seed", type=int, default=0)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
