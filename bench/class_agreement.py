"""Does a conditional generator draw the class it is asked for?

    python bench/class_agreement.py RUN [RUN ...] [--n 2000] [--seed 0]

For each run (checkpoint, run folder or export of an MNIST / Fashion-MNIST conditional model),
draws n samples with the classes in turn (GeneratorHandle.sample, latents seed --seed), labels
them with the shipped domain classifier (mnist-cnn / fashion-mnist-cnn) and prints the share it
reads as the asked class, overall and per class, as a Markdown table.
"""

import argparse

from ganforge.data import DATASETS
from ganforge.generator import load_generator
from ganforge.metrics.features import load_extractor


def agreement(G, n: int, seed: int) -> tuple[float, list[float]]:
    """Share of n samples (the classes in turn) the domain classifier reads as the class G was
    given: overall and per class."""
    x = G.sample(n, seed=seed)
    asked = G.inputs(n, seed=seed)["c"]
    _, read = load_extractor(DATASETS[G.cfg.data.name].feature_net).run((x + 1) / 2 if G.value_range == "signed" else x)
    hit = (read == asked).float()
    return hit.mean().item(), [hit[asked == k].mean().item() for k in range(G.num_classes)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| run | read as the asked class | per class |")
    print("| --- | --- | --- |")
    for run in args.runs:
        G = load_generator(run)
        spec = DATASETS[G.cfg.data.name]
        if not G.num_classes or spec.feature_net is None:
            print(f"| {run} | not applicable (unconditional, or no classifier for {spec.name}) | |")
            continue
        overall, per_class = agreement(G, args.n, args.seed)
        print(f"| {run} | {overall:.1%} | {' '.join(f'{k}:{a:.0%}' for k, a in enumerate(per_class))} |")


if __name__ == "__main__":
    main()
