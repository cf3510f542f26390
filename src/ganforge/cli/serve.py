"""`ganforge serve`: the web explorer of a generator."""

from __future__ import annotations

import sys

import torch

from ganforge.core.errors import ConfigError, GanforgeError

HELP = "a web page to explore a generator (seed, class, truncation, directions, walks)"


def add_arguments(p) -> None:
    p.add_argument("source", help="run folder, checkpoint .pt, or export folder / generator.json")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--directions", type=int, default=5, help="latent direction sliders (default 5, at most 20)")
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                   help="where the generator renders (default cpu; auto: cuda when available)")


def _device(choice: str) -> str:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here; use --device cpu")
    return "cuda" if choice == "auto" and torch.cuda.is_available() else ("cpu" if choice == "auto" else choice)


def run(args) -> int:
    if not 0 <= args.directions <= 20:
        raise GanforgeError(f"--directions {args.directions}: 0 to 20 sliders")
    from ganforge.serve.app import ExplorerServer  # the optional extra ganforge[serve]

    server = ExplorerServer(args.source, args.host, args.port, args.directions, _device(args.device))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach this page", file=sys.stderr)
    print(f"serving {args.source} at {server.url}  (Ctrl+C stops)", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shuts down cleanly, then passes Ctrl+C on: the usual way to stop
        pass
    print("stopped", file=sys.stderr)
    return 0
