"""`ganforge interp`: a latent walk through seeds."""

from __future__ import annotations

from ganforge import api

HELP = "a latent walk through seeds, as a GIF or a PNG strip"


def add_arguments(p) -> None:
    p.add_argument("source", help="checkpoint .pt, run folder, or export folder / generator.json")
    p.add_argument("--out", default="walk.gif", help="walk.gif (loops back to the first seed) or walk.png (a strip)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="the seeds to pass through (default 0 1 2 3)")
    p.add_argument("--steps", type=int, default=16, help="frames from one seed to the next (default 16)")
    p.add_argument("--fps", type=float, default=12.0, help="GIF frames per second (default 12)")
    p.add_argument("--class", dest="c", type=int, help="class index (conditional generators; default 0)")
    p.add_argument("--psi", type=float, help="truncation toward the mean latent, 0 to 1 (default 1: none)")
    p.add_argument("--text", metavar="CAPTION", help="text-to-image models: the caption the seeds walk under")
    p.add_argument("--texts", nargs="+", metavar="CAPTION",
                   help="text-to-image models: walk between these captions instead, each seed's z held")
    p.add_argument("--space", choices=["z", "w"], default="z",
                   help="walk the input latent z (default) or StyleGAN's intermediate latent w (straight lines)")


def run(args) -> int:
    print(api.interp(args.source, args.out, args.seeds, args.steps, args.fps, args.c, args.psi, args.space,
                     args.text, args.texts))
    return 0
