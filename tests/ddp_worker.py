"""Run by torchrun from test_distributed.py: train a few steps, then compare every rank's weights.

    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT.json key=value ...
"""

import json
import os
import sys

import torch
import torch.distributed as dist

from ganforge import api, validate
from ganforge.core.distributed import barrier, gather_shares, init_from_env, share, shutdown
from ganforge.engine.trainer import Trainer


def main():
    out, overrides = sys.argv[1], sys.argv[2:]
    if os.environ.get("GANFORGE_TEST_COLLAPSE_AT"):  # test_health's forced collapse, on every rank
        from conftest import collapsing_train_step
        from ganforge.recipes.gan import GANRecipe

        GANRecipe.train_step = collapsing_train_step(int(os.environ["GANFORGE_TEST_COLLAPSE_AT"]))
    config_file = os.environ.get("GANFORGE_TEST_CONFIG")
    cfg = validate.load(config_file, overrides)
    info, device = init_from_env("cpu")
    device = torch.device(device)
    data, recipe, schedule = api.prepare(cfg, device, info)
    hooks = []
    if os.environ.get("GANFORGE_TEST_COLLAPSE_AT"):  # the health checks that must see it, on every rank
        from ganforge.engine.health import HealthMonitor

        hooks.append(HealthMonitor(cfg, recipe, data, None, info))
    result = Trainer(cfg, recipe, data, device, schedule, hooks=hooks, log=lambda s: None, dist=info).fit()
    flat = torch.cat([p.detach().flatten() for player in recipe.players.values() for p in player.net.parameters()])
    # recipe state that must agree too: StyleGAN2's path-length mean and ADA's augmentation probability
    extra = [float(recipe.pl_mean), recipe.aug_p] if hasattr(recipe, "pl_mean") else []
    flat = torch.cat([flat, torch.tensor(extra, dtype=flat.dtype)])
    gathered = [torch.empty_like(flat) for _ in range(info.world_size)]
    dist.all_gather(gathered, flat)
    rows = torch.arange(7.0)[:, None].repeat(1, 3)  # shares of 4 and 3 rows: padding must be dropped
    gathered_rows = gather_shares(rows[share(7, info)], 7, info)
    if info.is_main:
        diffs = [float((g - gathered[0]).abs().max()) for g in gathered]
        json.dump({"world_size": info.world_size, "step": result.step, "max_abs_diff_to_rank0": diffs,
                   "param_norm": float(flat.norm()), "rollbacks": [list(r) for r in result.rollbacks],
                   "alarms": [list(a) for a in result.alarms],
                   "gather_shares_ok": torch.equal(gathered_rows, rows)}, open(out, "w"))
    barrier(info)
    del recipe, result  # the DDP wrappers go before the process group (see distributed.shutdown)
    shutdown(info)


if __name__ == "__main__":
    main()
