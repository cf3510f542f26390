"""How fast the web explorer answers, on this machine: one image rendered in the process, one image
over HTTP as a dragged slider asks for it (every request a new offset, so nothing comes from a
cache), a 24-frame walk, and what a flood of 16 simultaneous walks gets (answers or 503 "busy");
and whether the GANSpace directions mean something: how much a step of 2 along each of the first
three changes 20 seeds' images (L2 over pixels), against a random unit direction.

    python -m bench.serve_latency RUN_OR_CHECKPOINT [--requests 200]

Target: one image of the demo model in under 50 ms on this CPU.
"""

import statistics
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from bench.common import machine_line, parser, run_script, tiny_run
from ganforge.serve.app import ExplorerServer
from ganforge.serve.explorer import View


def timed_get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return (time.perf_counter() - t) * 1000, status


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    return f"median {statistics.median(ms):.1f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.1f} ms, max {ms[-1]:.1f} ms"


def run(args) -> None:
    t = time.perf_counter()
    server = ExplorerServer(args.source, port=0).start()
    print(f"machine: {machine_line()}")
    print(f"server start (load G, compute 5 directions): {time.perf_counter() - t:.2f} s")
    explorer = server.app.state.explorer
    G = explorer.G
    z = G.inputs(20, seed=0)["z"]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k in range(min(3, len(explorer.directions))):
            rand = torch.randn(z.shape[1], generator=gen)
            change = lambda d: float((G({"z": z + 2 * d}) - G({"z": z})).flatten(1).norm(dim=1).mean())  # noqa: E731
            print(f"direction {k + 1}: image change {change(explorer.directions[k]):.1f}, "
                  f"random unit direction {change(rand / rand.norm()):.1f}")
    for s in range(5):
        explorer.image_png(View(seed=s))  # warm-up
    ms = []
    for s in range(args.requests):
        t = time.perf_counter()
        explorer.image_png(View(seed=s, offsets=(s % 50 / 10 - 2.5, 0, 0, 0, 0)))
        ms.append((time.perf_counter() - t) * 1000)
    print(f"one image in the process: {summary(ms)}")
    http = [timed_get(f"{server.url}api/image?seed=7&d0={s % 100 / 20 - 2.5:.2f}&psi={0.5 + s % 50 / 100:.2f}")
            for s in range(args.requests)]
    assert all(status == 200 for _, status in http)
    print(f"one image over HTTP (slider drag, {args.requests} requests one after another): "
          f"{summary([m for m, _ in http])}")
    walks = [timed_get(f"{server.url}api/walk?seed={s}&to={s + 1}&steps=12&scale=4") for s in range(10)]
    print(f"a walk GIF (24 frames, enlarged 4 x): {summary([m for m, _ in walks])}")
    flood = []
    threads = [threading.Thread(target=lambda s=s: flood.append(timed_get(
        f"{server.url}api/walk?seed={s}&steps=60&scale=4"))) for s in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ok = sum(1 for _, status in flood if status == 200)
    print(f"16 simultaneous 120-frame walks: {ok} answered, {len(flood) - ok} told 503 busy; "
          f"slowest answer {max(m for m, _ in flood):.0f} ms")
    server.stop()


def smoke(tmp: Path) -> list[str]:
    return [str(tiny_run(tmp, "mnist_mlp.yaml")), "--requests", "5"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("source")
    ap.add_argument("--requests", type=int, default=200)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
