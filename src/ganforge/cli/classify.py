"""`ganforge classify`: the class of images by a model's classifier (the semi-supervised GAN)."""

from __future__ import annotations

from ganforge import api

HELP = "classify images with a model's classifier (train.recipe=ssgan): class, probability, p(real)"


def add_arguments(p) -> None:
    p.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    p.add_argument("--input", required=True, help="an image file or a folder of images (searched recursively)")
    p.add_argument("--out", help="also write the predictions, every class's probability included, to this "
                                 ".csv or .json file")


def run(args) -> int:
    records = api.classify(args.source, args.input, args.out)
    width = max(len(r["file"]) for r in records)
    for r in records:
        print(f"{r['file']:{width}s}  {r['class']}  {r['probability']:.3f}  (p_real {r['p_real']:.3f})")
    if args.out:
        print(f"{len(records)} prediction(s) written to {args.out}")
    return 0
