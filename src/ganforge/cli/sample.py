"""`ganforge sample`: a grid of samples, or a labelled dataset of a conditional generator."""

from __future__ import annotations

from ganforge import api
from ganforge.core.errors import GanforgeError

HELP = "sample a grid from a checkpoint or an export"


def add_arguments(p) -> None:
    p.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    p.add_argument("--n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", default="samples.png", help="output PNG (default samples.png)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--class", dest="c", type=int, help="class index (conditional generators)")
    p.add_argument("--truncation", type=float, help="truncation trick: redraw latents with |z_i| above this")
    p.add_argument("--psi", type=float, help="truncation toward the mean latent, 0 to 1 (1: none, 0: the mean image)")
    p.add_argument("--text", nargs="+", metavar="CAPTION",
                   help="text-to-image models: the caption to draw (several: a row of the same seeds per caption)")
    p.add_argument("--latent", help="draw the image of this latent (NAME.latent.safetensors of `ganforge project`)")
    p.add_argument("--labels", action="store_true",
                   help="write a labelled dataset to --out (a folder): conditional generators, classes in turn")
    p.add_argument("--format", choices=["png", "idx"], default="png",
                   help="with --labels: a folder of PNGs per class, or MNIST-style IDX files")


def run(args) -> int:
    if args.n < 1:
        raise GanforgeError(f"--n {args.n}: need at least one sample")
    if args.latent:
        print(api.sample(args.source, 1, args.out, latent=args.latent))
    elif args.labels:
        print(api.sample_dataset(args.source, args.n, args.out, args.seed, args.format))
    else:
        text = args.text[0] if args.text and len(args.text) == 1 else args.text
        print(api.sample(args.source, args.n, args.out, args.seed, c=args.c, truncation=args.truncation, psi=args.psi,
                         text=text))
    return 0
