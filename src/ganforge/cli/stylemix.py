"""`ganforge stylemix`: StyleGAN's style-mixing grid."""

from __future__ import annotations

from ganforge import api

HELP = "StyleGAN's style-mixing grid: coarse styles from one set of seeds, fine from another"


def add_arguments(p) -> None:
    p.add_argument("source", help="a StyleGAN run folder, checkpoint .pt, or export")
    p.add_argument("--out", default="mixing.png", help="output PNG (default mixing.png)")
    p.add_argument("--rows", type=int, nargs="+", default=[0, 1, 2, 3], help="seeds giving the coarse styles")
    p.add_argument("--cols", type=int, nargs="+", default=[4, 5, 6, 7], help="seeds giving the fine styles")
    p.add_argument("--cut", type=int, help="the first layer taking the column's style (default: half the layers)")
    p.add_argument("--psi", type=float, help="truncation toward the mean w, 0 to 1")


def run(args) -> int:
    print(api.style_mixing(args.source, args.out, args.rows, args.cols, args.cut, args.psi))
    return 0
