"""`ganforge featurenet`: train a domain feature network for FID / KID / PRDC on your images."""

from __future__ import annotations

import json

from ganforge.core.errors import GanforgeError
from ganforge.metrics.featurenet import train_on_folder

HELP = "train a domain feature network for FID / KID / PRDC on your images"


def add_arguments(p) -> None:
    fsub = p.add_subparsers(dest="featurenet_command", required=True)
    ft = fsub.add_parser("train", help="a small CNN classifier on a folder with one sub-folder per class")
    ft.add_argument("data", help="image folder, one sub-folder per class")
    ft.add_argument("--out", default="featurenets", help="folder for NAME.safetensors + NAME.json (default featurenets/)")
    ft.add_argument("--name", help="default: the folder's name + -cnn")
    ft.add_argument("--resolution", type=int, default=32, help="input size the generator's images have (default 32)")
    ft.add_argument("--channels", type=int, choices=[1, 3], default=3)
    ft.add_argument("--epochs", type=int, default=8)
    ft.add_argument("--background", default="white", help="transparent pixels are composited onto this colour")


def run(args) -> int:
    if args.epochs < 1 or args.resolution < 8:
        raise GanforgeError(f"--epochs {args.epochs} --resolution {args.resolution}: need at least 1 epoch and 8 px")
    command = (f"ganforge featurenet train {args.data} --resolution {args.resolution} --channels {args.channels} "
               f"--epochs {args.epochs} --background {args.background}")
    meta = train_on_folder(args.data, args.out, args.resolution, args.channels, args.epochs, args.name,
                           args.background, command=command)
    info = json.loads(meta.read_text())
    print(f"feature net: {meta} (held-out accuracy {info['test_accuracy']:.4f} on {info['test_split']})")
    print(f"use it: ganforge eval RUN --feature-net {meta}   (or eval.feature_net={meta} in a config)")
    return 0
