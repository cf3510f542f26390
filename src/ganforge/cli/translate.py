"""`ganforge translate`: images through a pix2pix / CycleGAN generator."""

from __future__ import annotations

from ganforge import api

HELP = "translate images with a pix2pix / CycleGAN model"


def add_arguments(p) -> None:
    p.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    p.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder: the same relative paths, as PNG")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB",
                   help="AtoB (default), or BtoA (CycleGAN models translate both ways)")
    p.add_argument("--keep-size", action="store_true",
                   help="translate at each image's own size (cropped to the net's stride) instead of the training size")


def run(args) -> int:
    out, n = api.translate(args.source, args.input, args.out, args.direction, args.keep_size)
    print(f"{n} image(s) translated ({args.direction}) into {out}")
    return 0
