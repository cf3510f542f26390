"""`ganforge export`: the generator as safetensors + JSON, or ONNX."""

from __future__ import annotations

from ganforge import api

HELP = "export the generator as safetensors + JSON"


def add_arguments(p) -> None:
    p.add_argument("source", help="checkpoint .pt or run folder")
    p.add_argument("--out", required=True, help="output folder (safetensors) or file.onnx (onnx)")
    p.add_argument("--format", dest="fmt", choices=["safetensors", "onnx"], default="safetensors",
                   help="safetensors + JSON for ganforge (default), or ONNX for any runtime (pip install ganforge[onnx])")


def run(args) -> int:
    print(api.export(args.source, args.out, args.fmt))
    return 0
