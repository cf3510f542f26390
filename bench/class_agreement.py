"""Does a conditional generator draw the class it is asked for?

    python -m bench.class_agreement RUN [RUN ...] [--n 2000] [--seed 0]

For each run (checkpoint, run folder or export of an MNIST / Fashion-MNIST conditional model),
draws n samples with the classes in turn (GeneratorHandle.sample, latents seed --seed), labels
them with the shipped domain classifier (mnist-cnn / fashion-mnist-cnn) and prints the share it
reads as the asked class, overall and per class, as a Markdown table.
"""

from pathlib import Path

from bench.common import agreement, parser, run_script, table_head, tiny_run
from ganforge import load_generator
from ganforge.data import DATASETS


def run(args) -> None:
    print(table_head("run", "read as the asked class", "per class"))
    for source in args.runs:
        G = load_generator(source)
        spec = DATASETS[G.cfg.data.name]
        if not G.num_classes or spec.feature_net is None:
            print(f"| {source} | not applicable (unconditional, or no classifier for {spec.name}) | |")
            continue
        overall, per_class = agreement(G, args.n, args.seed)
        print(f"| {source} | {overall:.1%} | {' '.join(f'{k}:{a:.0%}' for k, a in enumerate(per_class))} |")


def smoke(tmp: Path) -> list[str]:
    # a conditional run and an unconditional one: both rows of the table
    return [str(tiny_run(tmp, "mnist_cgan.yaml")), str(tiny_run(tmp, "mnist_mlp.yaml")), "--n", "50"]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
