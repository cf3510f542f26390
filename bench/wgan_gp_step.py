"""Where WGAN-GP's time goes: the step alone, outside the trainer, against the caogang-style
reference step of bench/family_refs.py, on the same batches, under torch.profiler; and the preset
through `ganforge train` with and without channels_last, alternating.

    python -m bench.wgan_gp_step [--steps 30] [--rounds 3]
"""

import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from bench import family_refs
from bench.common import CONFIGS, ganforge_samples_per_s, load_images, parser

from ganforge import api, config


def timed(step, inputs):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for x in inputs:
            step(x)
        dt = time.perf_counter() - t
    return dt, prof


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    warm, n, batch = 10, args.steps, 64
    loader, ref_step = family_refs.reference("wgan_gp", load_images("mnist-embedded"), "mnist-embedded")
    batches = [x for _, x in zip(range(warm + n), loader)]
    for x in batches[:warm]:
        ref_step(x)
    dt_ref, prof_ref = timed(ref_step, batches[warm:])

    cfg = config.load(CONFIGS / "mnist_wgan_gp.yaml", ["data.name=mnist-embedded"])
    data, recipe, _ = api.prepare(cfg, torch.device("cpu"))
    idx = [torch.arange(batch) + batch * i for i in range(warm + n)]
    for i in idx[:warm]:
        recipe.train_step(data.batch(i, torch.device("cpu")))
    dt_gf, prof_gf = timed(lambda i: recipe.train_step(data.batch(i, torch.device("cpu"))), idx[warm:])
    print(f"step alone: reference {n * batch / dt_ref:.0f} samples/s, ganforge {n * batch / dt_gf:.0f} samples/s")
    for name, prof in (("reference", prof_ref), ("ganforge", prof_gf)):
        print(name)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))

    rates = {"channels_last": [], "no_channels_last": []}
    for _ in range(args.rounds):
        rates["channels_last"].append(ganforge_samples_per_s("mnist_wgan_gp.yaml", "mnist-embedded", 100))
        rates["no_channels_last"].append(ganforge_samples_per_s("mnist_wgan_gp.yaml", "mnist-embedded", 100,
                                                                ["train.channels_last=false"]))
    for k, v in rates.items():
        print(f"ganforge train, {k}: median {statistics.median(v):.0f} samples/s ({', '.join(f'{r:.0f}' for r in v)})")


if __name__ == "__main__":
    main()
