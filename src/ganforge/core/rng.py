"""The global random streams: saved in checkpoints, restored on resume, and shielded from hooks."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from ganforge.core.errors import ConfigError

SEED_MAX = 2**32 - 1  # seeds are 0 .. 2^32 - 1 everywhere (numpy's range): commands, configs, API, HTTP


def check_seed(seed, what: str = "seed") -> int:
    """`seed` when it is a whole number in 0 .. SEED_MAX; else one clear error naming it. The one
    check every seed passes before it seeds a torch.Generator (which would overflow past 64 bits,
    and reads a negative seed as a different unsigned one)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        shown = seed if isinstance(seed, int) and abs(seed) < 10**30 else f"{str(seed)[:30]}..."
        raise ConfigError(f"{what} {shown} is out of range: seeds are whole numbers from 0 to {SEED_MAX:,}")
    return seed


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2])}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def isolated_rng():
    """Whatever runs inside leaves torch's global random streams (CPU, and CUDA when in use) as it
    found them: hooks that sample, build a feature network or draw evaluation latents must not
    change a training trajectory. Training draws from no other global stream (numpy's and Python's
    are only saved in checkpoints), and saving those too would cost ~0.1 ms per hook call."""
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
