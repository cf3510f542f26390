"""Multi-process training through `torchrun` (PyTorch DDP); a no-op in a plain process.

Launch only through torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT): no mp.spawn, no hard-coded ports. The backend is NCCL on CUDA and gloo on CPU.

What each rank does (see recipes/gan.py and engine/trainer.py):
- every rank walks the same data order (shared seed) and takes its share of each global batch,
  so `train.batch_size` is the global batch whatever the number of processes;
- latents are drawn for the whole global batch from the training RNG and sliced per rank;
  dropout masks use a per-rank RNG stream;
- G and D are each wrapped in their own DDP (broadcast_buffers=False: D may run twice before one
  backward); the G step calls D's inner module, so the frozen D takes no part in gradient sync;
- per-step statistics and the stop flag (a signal on any rank) are averaged / max-reduced, so all
  ranks see the same numbers and stop at the same step;
- in-training metrics: each rank generates its share of the samples, rank 0 gathers them and
  computes the metrics;
- only rank 0 writes files; a checkpoint also holds every rank's own random stream and buffers
  (collected from every rank, written by rank 0), so a restart of the same world size resumes
  every rank exactly;
- under `torchrun --max-restarts N`, a restarted group (TORCHELASTIC_RESTART_COUNT > 0) resumes
  the run folder its torchrun job made by itself (training.py, engine.run.elastic_home).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a batch
    scheduler), not all the machine's cores."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cores_per_process(world_size: int = 1) -> int:
    """This process's share of the usable cores among the processes torchrun started on this
    machine (LOCAL_WORLD_SIZE; all `world_size` of them when it is not set)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    return max(1, usable_cores() // max(1, local))


def init_from_env(device_choice: str) -> tuple[DistInfo, str]:
    """Join the process group torchrun describes; returns (info, device string)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device_choice
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_choice in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", store=_attempt_store(), rank=rank, world_size=world)
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
        # share the machine's cores between the local processes instead of oversubscribing them
        torch.set_num_threads(cores_per_process(world))
    return DistInfo(rank, world, local_rank), device


def _attempt_store() -> dist.Store:
    """torchrun's store (env://), with keys of this attempt only. torchrun keeps one store across
    `--max-restarts` restarts, and a restarted group would otherwise read the addresses the
    previous attempt's processes published (gloo then connects to a dead worker's port)."""
    store, _, _ = next(dist.rendezvous("env://"))
    return dist.PrefixStore(f"ganforge/attempt_{restart_count()}", store)


def seed_rank_stream(seed: int, info: DistInfo, step: int = 0) -> None:
    """Dropout and other in-step randomness use the global stream. Rank 0 keeps the one seeded by
    train.seed (and restored from checkpoints); every other rank gets a stream of its own, restored
    from the checkpoint's per-rank rows on resume, or reseeded from the step where it has none for
    this world size."""
    if info.rank:
        torch.manual_seed(seed + 7919 * info.rank + step)


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world_size
    return values


def all_reduce_max(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def share(n: int, info: DistInfo) -> slice:
    """This rank's contiguous share of n items (shares differ by at most one)."""
    return slice(n * info.rank // info.world_size, n * (info.rank + 1) // info.world_size)


def gather_shares(x_local: torch.Tensor, n: int, info: DistInfo) -> torch.Tensor:
    """Every rank's `share` of n rows, concatenated in rank order, on every rank (on x_local's device,
    which must suit the backend: CUDA for NCCL)."""
    if not info.enabled:
        return x_local
    shares = [share(n, DistInfo(r, info.world_size)) for r in range(info.world_size)]
    sizes = [s.stop - s.start for s in shares]
    padded = x_local.new_zeros((max(sizes), *x_local.shape[1:]))  # all_gather needs equal shapes
    padded[:len(x_local)] = x_local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def gather_rows(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """[world_size, *x.shape]: every rank's x (the same shape on every rank), in rank order."""
    if not info.enabled:
        return x[None]
    parts = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.stack(parts)


def restart_count() -> int:
    """How many times torchrun's elastic agent has restarted this worker group (`--max-restarts`):
    0 on the first attempt and outside torchrun."""
    try:
        return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    except ValueError:
        return 0


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group (callers meet at a `barrier` after their last collective first).

    destroy_process_group only drops c10d's own references: a DDP wrapper still alive holds the
    process group and its reducer, and when those are freed during interpreter shutdown gloo's
    worker threads die unjoined ("terminate called without an active exception", SIGABRT on rank 1:
    1 of 32 DDP tests in a loop before this). So the wrappers (freed with the recipe by the caller;
    DDP keeps reference cycles, hence the collection) go first, the process group last."""
    if info.enabled and dist.is_initialized():
        import gc

        gc.collect()
        dist.destroy_process_group()
