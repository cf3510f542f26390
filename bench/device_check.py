"""The GPU check: what only a CUDA device can show, in one command, in under 8 minutes, with one
JSON summary.

    python -m bench.device_check [--out device_check.json] [--device cuda] [--budget 470]

Each check runs in a process of its own with its own time limit, so one that fails or hangs costs
only itself; the summary says, per check, ok / failed / skipped and what it measured:

- environment: torch, CUDA and cuDNN versions, the card, its compute capability, bf16 support;
- fp16: a DCGAN trained in fp16 autocast with its gradient scaler (finite losses, the scale kept in
  the checkpoint);
- bf16, channels_last (bf16 + channels_last), compile (train.compile=true, its compile time);
- resume: 60 steps in one go against 30 + a resume to 60, every tensor of the final checkpoint
  compared (bit-identical or the largest difference);
- ddp_nccl: `ganforge train` under torchrun on the NCCL backend, on every GPU there is (one
  process per GPU; with one GPU, a one-process group with the DDP wrappers and collectives on);
- explorer: `ganforge serve --device cuda`'s server rendering a PNG over HTTP on 127.0.0.1;
- throughput_mlp, throughput_dcgan: bench.throughput --device cuda against the reference loops.

On a machine without CUDA, `--device cpu` runs the same checks where they mean something (the
plumbing of this script; the suite runs it with --smoke).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import ROOT, machine, parser, run_script

TINY = ["data.name=mnist-embedded", "data.max_images=2048", "model.arch=dcgan", "model.width=16", "train.batch_size=64",
        "log.progress=false", "log.report=false", "eval.every_steps=0", "health.every_steps=0", "health.watch_every=0",
        "log.sample_every_steps=0"]
# (name, time limit in seconds, cuda only)
CHECKS = (("environment", 60, False), ("fp16", 120, True), ("bf16", 90, False), ("channels_last", 90, False),
          ("compile", 240, False), ("resume", 120, False), ("ddp_nccl", 150, False), ("explorer", 90, False),
          ("throughput_mlp", 150, False), ("throughput_dcgan", 180, False))


# --- the checks, each run in a process of its own (--check NAME) ---------------------------------

def train(work: Path, device: str, steps: int, *extra: str, name: str = "run", resume: str | None = None):
    from ganforge import api, validate

    cfg = validate.load(None, [*TINY, f"train.device={device}", f"train.max_steps={steps}", f"run.dir={work}",
                               f"run.name={name}", *extra])
    return api.train(cfg, resume=resume, log=lambda s: None)


def trained_ok(run_dir: Path, result) -> dict:
    from ganforge import checkpoint

    ckpt = checkpoint.load(run_dir / "ckpt" / "last.pt")
    finite = all(math.isfinite(v) for v in result.last_stats.values())
    if not finite:
        raise AssertionError(f"non-finite statistics: {result.last_stats}")
    log = (run_dir / "log.txt").read_text()
    return {"steps": result.step, "train_s": round(result.train_time_s, 2), "steps_per_s": round(result.step / result.train_time_s, 1),
            "last_stats": {k: round(v, 4) for k, v in result.last_stats.items()},
            "started": log.splitlines()[0].split(": ", 1)[1][:300], "ckpt_step": ckpt["step"]}


def check_environment(work: Path, device: str) -> dict:
    out = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if torch.cuda.is_available():
        out.update(card=torch.cuda.get_device_name(0), capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                   gpus=torch.cuda.device_count(), bf16=torch.cuda.is_bf16_supported(),
                   memory_gb=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    if device == "cuda" and not torch.cuda.is_available():
        raise AssertionError("no CUDA device: torch.cuda.is_available() is False")
    return out


def check_fp16(work: Path, device: str) -> dict:
    from ganforge import checkpoint

    run_dir, result = train(work, device, 60, "train.precision=fp16")
    scalers = {n: p["scaler"] for n, p in checkpoint.load(run_dir / "ckpt" / "last.pt")["recipe"]["players"].items()}
    if not all(s and s.get("scale") for s in scalers.values()):
        raise AssertionError(f"a gradient scaler's state is missing from the checkpoint: {scalers}")
    return {**trained_ok(run_dir, result), "scale": {n: float(s["scale"]) for n, s in scalers.items()}}


def check_bf16(work: Path, device: str) -> dict:
    return trained_ok(*train(work, device, 60, "train.precision=bf16"))


def check_channels_last(work: Path, device: str) -> dict:
    return trained_ok(*train(work, device, 60, "train.precision=bf16", "train.channels_last=true"))


def check_compile(work: Path, device: str) -> dict:
    t0 = time.perf_counter()
    run_dir, result = train(work, device, 60, "train.compile=true")
    return {**trained_ok(run_dir, result), "wall_s_with_compile": round(time.perf_counter() - t0, 1)}


def check_resume(work: Path, device: str) -> dict:
    from ganforge import checkpoint

    whole, _ = train(work, device, 60, name="whole")
    train(work, device, 30, name="halves")
    halves, _ = train(work, device, 60, name="halves", resume="auto")
    a, b = (checkpoint.load(r / "ckpt" / "last.pt") for r in (whole, halves))
    diffs = []

    def walk(x, y, where):
        if isinstance(x, dict):
            for k in x:
                walk(x[k], y[k], f"{where}.{k}")
        elif isinstance(x, (list, tuple)):
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{where}[{i}]")
        elif isinstance(x, torch.Tensor) and x.is_floating_point():
            diffs.append((float((x.double() - y.double()).abs().max()) if x.numel() else 0.0, where))

    walk(a["recipe"], b["recipe"], "recipe")
    worst = max(diffs)
    out = {"tensors": len(diffs), "identical": worst[0] == 0.0, "max_abs_diff": worst[0], "worst": worst[1],
           "cudnn_deterministic": torch.backends.cudnn.deterministic, "cudnn_benchmark": torch.backends.cudnn.benchmark}
    if worst[0] != 0.0:
        raise AssertionError(f"resumed run differs from the uninterrupted one: {json.dumps(out)}")
    return out


def check_ddp_nccl(work: Path, device: str) -> dict:
    n = max(1, torch.cuda.device_count()) if device == "cuda" else 1
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", "-m",
           "bench.device_check", "--ddp-worker", str(work), device]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=140)
    if p.returncode:
        raise AssertionError(f"torchrun exit {p.returncode}: {p.stderr[-1500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ddp_worker(work: str, device: str) -> None:
    """Under torchrun: with one process, the group is made here and DDP is switched on by hand
    (ganforge itself leaves a one-process run unwrapped), so the NCCL paths run on one GPU too."""
    import torch.distributed as dist

    from ganforge.core import distributed

    backend = "nccl" if device == "cuda" else "gloo"
    if int(os.environ["WORLD_SIZE"]) == 1:
        dist.init_process_group(backend)
        distributed.DistInfo.enabled = property(lambda self: True)
    run_dir, result = train(Path(work), device, 40, "log.ckpt_every_steps=20")  # leaves the group at its end
    if int(os.environ["RANK"]) == 0:
        from ganforge import checkpoint

        ranks = checkpoint.load(run_dir / "ckpt" / "last.pt").get("ranks")  # written by the DDP path only
        if not ranks:
            raise AssertionError("the run did not take the DDP path (no per-rank state in its checkpoint)")
        print(json.dumps({"processes": int(os.environ["WORLD_SIZE"]), "backend": backend,
                          "ranks_in_checkpoint": int(ranks["world_size"]), **trained_ok(run_dir, result)}))


def check_explorer(work: Path, device: str) -> dict:
    import urllib.request

    from ganforge.serve.app import ExplorerServer

    run_dir, _ = train(work, device, 10)
    server = ExplorerServer(run_dir, port=0, device=device).start()
    try:
        times = []
        for seed in range(5):
            t0 = time.perf_counter()
            with urllib.request.urlopen(f"{server.url}api/image?seed={seed}", timeout=30) as r:
                png = r.read()
            times.append(time.perf_counter() - t0)
            if not png.startswith(b"\x89PNG"):
                raise AssertionError(f"/api/image gave {png[:40]!r}, not a PNG")
    finally:
        server.stop()
    return {"renders": len(times), "median_ms": round(sorted(times)[len(times) // 2] * 1000, 1)}


def _throughput(model: str, work: Path, device: str) -> dict:
    out = work / f"{model}.json"
    cmd = [sys.executable, "-m", "bench.throughput", "--model", model, "--device", device, "--steps", "60",
           "--rounds", "1", "--out", str(out)]
    if device == "cuda":
        cmd.append("--compile")
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=170)
    if p.returncode:
        raise AssertionError(f"bench.throughput exit {p.returncode}: {p.stderr[-1500:]}")
    r = json.loads(out.read_text())
    return {"samples_per_s": r["samples_per_s"], "over_A": r["over_A"], "precision": r["precision"]}


def check_throughput_mlp(work: Path, device: str) -> dict:
    return _throughput("mlp", work, device)


def check_throughput_dcgan(work: Path, device: str) -> dict:
    return _throughput("dcgan", work, device)


# --- the driver ----------------------------------------------------------------------------------

def run_check(name: str, limit: int, device: str, work: Path) -> dict:
    """One check in a fresh process; its last stdout line is its JSON result."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "bench.device_check", "--check", name, str(work / name), device]
    # a session of its own: on a timeout the whole group goes (torchrun's workers, a bench's
    # processes), so nothing of a hung check holds the GPU during the next
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return {"name": name, "status": "failed", "seconds": limit, "error": f"no answer within {limit} s"}
    p = subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr)
    seconds = round(time.perf_counter() - t0, 1)
    lines = p.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"status": "failed", "error": f"exit {p.returncode}: {p.stderr[-1500:]}"}
    return {"name": name, "seconds": seconds, **result}


def check_here(name: str, work: str, device: str) -> None:
    Path(work).mkdir(parents=True, exist_ok=True)
    try:
        detail = globals()[f"check_{name}"](Path(work), device)
        print(json.dumps({"status": "ok", "detail": detail}))
    except Exception as e:  # a failed check is a finding to report, whatever it raised
        print(json.dumps({"status": "failed", "error": f"{type(e).__name__}: {str(e)[:1500]}"}))


def run(args) -> None:
    if args.device == "cuda" and not torch.cuda.is_available():
        print("note: no CUDA device here: every check that needs one will fail (use --device cpu to check the plumbing)")
    started, results = time.perf_counter(), []
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp:
        for name, limit, cuda_only in CHECKS:
            if args.only and name not in args.only:
                continue
            left = args.budget - (time.perf_counter() - started)
            if cuda_only and args.device != "cuda":
                results.append({"name": name, "status": "skipped", "why": "needs CUDA"})
            elif left < min(limit, 30):
                results.append({"name": name, "status": "skipped", "why": f"the {args.budget} s budget was spent"})
            else:
                results.append(run_check(name, int(min(limit, left)), args.device, Path(tmp)))
            r = results[-1]
            print(f"{name}: {r['status']}" + (f" in {r['seconds']} s" if "seconds" in r else "")
                  + (f" ({r.get('error') or r.get('why')})" if r["status"] != "ok" else ""), flush=True)
    summary = {"device": args.device, "seconds": round(time.perf_counter() - started, 1), **machine(),
               "counts": {s: sum(r["status"] == s for r in results) for s in ("ok", "failed", "skipped")}, "checks": results}
    text = json.dumps(summary, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(f"device check: {summary['counts']['ok']} ok, {summary['counts']['failed']} failed, "
          f"{summary['counts']['skipped']} skipped in {summary['seconds']} s" + (f"; {args.out}" if args.out else ""))


def smoke(tmp: Path) -> list[str]:
    return ["--device", "cpu", "--only", "environment", "resume", "--out", str(tmp / "device_check.json")]


def main() -> None:
    if sys.argv[1:2] == ["--check"]:
        check_here(*sys.argv[2:5])
        return
    if sys.argv[1:2] == ["--ddp-worker"]:
        ddp_worker(*sys.argv[2:4])
        return
    ap = parser(__doc__)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--budget", type=float, default=470, help="seconds for all checks (default 470: under 8 minutes)")
    ap.add_argument("--only", nargs="+", choices=[c[0] for c in CHECKS], help="run these checks only")
    ap.add_argument("--out", type=Path, help="the JSON summary")
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
