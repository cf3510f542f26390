"""Salimans et al. 2016, Table 1, side by side: misclassified MNIST test images (of 10,000) of the
semi-supervised GAN with 20 / 50 / 100 / 200 labels, against the same classifier trained on the
labelled images alone, from finished (or stopped) runs.

    ganforge train configs/mnist_ssgan.yaml train.seed=1 run.name=mnist100-s1            # one seed
    ganforge train configs/mnist_ssgan.yaml train.seed=1 loss.unlabeled_weight=0 run.name=mnist100-base-s1
    ganforge train configs/mnist_ssgan.yaml data.name=fashion-mnist train.seed=1 run.name=fashion100-s1
    python -m bench.semi_supervised --run runs/00000-mnist100-s1 --run runs/00001-mnist100-base-s1 ...

Each run's metrics.jsonl holds the test accuracy of the averaged classifier after every epoch
(eval.every_steps = one epoch in the preset); a row reports the last one, the epochs it took, the
training minutes, and the first epoch (and minute) at which the error was at most --target
percent. Rows of the same data, label count and arm are pooled: mean +- standard deviation over
seeds, as the paper reports over its 10 seeds.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from bench.common import machine_line, parser, run_script, table_head, tiny_run, write_results
from ganforge import validate
from ganforge.core.images import _pyplot
from ganforge.data import build_dataset

# Table 1 of the paper (arXiv 1606.03498): "Number of incorrectly classified test examples for the
# semi-supervised setting on permutation invariant MNIST. Results are averaged over 10 seeds."
PAPER = {20: "1677 +- 452", 50: "221 +- 136", 100: "93 +- 6.5", 200: "90 +- 4.2"}
PAPER_ENSEMBLE = {20: "1134 +- 445", 50: "142 +- 96", 100: "86 +- 5.6", 200: "81 +- 4.3"}


def summarise(run: Path, target: float) -> dict:
    """One run: its data, label count, arm, seed, and what its metrics.jsonl says."""
    cfg = validate.load(run / "config.yaml", [])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "accuracy" in r]
    if not rows:
        raise SystemExit(f"{run}: no accuracy in metrics.jsonl (train with eval.metrics=[accuracy])")
    data = build_dataset(cfg.data, cfg.train.seed)  # as the run read it
    per_epoch = len(data) // cfg.train.batch_size
    labels = len(data.labelled) if data.labelled is not None else len(data)
    first = next((r for r in rows if 100 * (1 - r["accuracy"]) <= target + 1e-9), None)  # 1 - 0.985 > 0.015 in floats
    last = rows[-1]
    return {"run": str(run), "data": cfg.data.name, "labels": labels,
            "arm": "labelled images alone" if cfg.loss.unlabeled_weight == 0 else "semi-supervised GAN",
            "seed": cfg.train.seed, "epochs": last["step"] / per_epoch, "minutes": last["train_time_s"] / 60,
            "misclassified": last["accuracy_misclassified"], "error_pct": 100 * (1 - last["accuracy"]),
            "best_misclassified": min(r["accuracy_misclassified"] for r in rows),
            "target_epoch": first["step"] / per_epoch if first else None,
            "target_minutes": first["train_time_s"] / 60 if first else None,
            "curve": [(r["step"] / per_epoch, r["accuracy_misclassified"]) for r in rows]}


def table(records: list[dict], target: float) -> list[str]:
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["data"], r["labels"], r["arm"]), []).append(r)
    lines = [table_head("data", "labels", "model", "seeds", "epochs", "misclassified (of 10,000)",
                         f"error <= {target:g} % after", "paper (10 seeds)")]
    for (data, labels, arm), rs in sorted(groups.items()):
        wrong = [r["misclassified"] for r in rs]
        spread = f"{statistics.mean(wrong):.0f} +- {statistics.stdev(wrong):.1f}" if len(wrong) > 1 else f"{wrong[0]}"
        reached = [r for r in rs if r["target_epoch"] is not None]
        when = (", ".join(f"epoch {r['target_epoch']:.3g} ({r['target_minutes']:.0f} min)" for r in reached)
                if reached else "not reached")
        epochs = ", ".join(f"{r['epochs']:.3g}" for r in rs)
        paper = PAPER.get(labels, "-") if data == "mnist" and arm == "semi-supervised GAN" else "-"
        lines.append(f"| {data} | {labels} | {arm} | {len(rs)} | {epochs} | {spread} | {when} | {paper} |")
    return lines


def picture(records: list[dict], path: Path, target: float) -> None:
    """Misclassified test images (log scale) against epochs, one line per run, the target and the
    paper's mean for 100 labels drawn across."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in records:
        epochs, wrong = zip(*r["curve"])
        style = "-" if r["arm"] == "semi-supervised GAN" else "--"
        ax.plot(epochs, wrong, style, label=f"{r['data']}, {r['labels']} labels, {r['arm']}, seed {r['seed']}")
    ax.axhline(100 * target, color="grey", lw=0.8, ls=":", label=f"{target:g} % error")
    ax.axhline(93, color="black", lw=0.8, ls="-.", label="paper, MNIST 100 labels (93)")
    ax.set(yscale="log", xlabel="epoch", ylabel="misclassified test images (of 10,000)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args) -> None:
    records = [summarise(Path(r), args.target) for r in args.run]
    text = "\n".join([*table(records, args.target), "", machine_line()])
    write_results(Path(args.out) if args.out else None, text + "\n", records)
    if args.picture:
        picture(records, Path(args.picture), args.target)


def smoke(tmp: Path) -> list[str]:
    runs = [tiny_run(tmp / f"a{i}", "mnist_ssgan.yaml", "data.labels_per_class=2", "model.width=32",
                     f"train.seed={i}", "eval.every_steps=1") for i in (1, 2)]
    return [*(a for r in runs for a in ("--run", str(r))), "--target", "100", "--picture", str(tmp / "curve.png")]


if __name__ == "__main__":
    ap = parser(__doc__)
    ap.add_argument("--run", action="append", required=True, help="a run folder (repeat for each run)")
    ap.add_argument("--target", type=float, default=1.5, help="test error in percent to report the first epoch of")
    ap.add_argument("--out", help="a folder for results.md and results.json")
    ap.add_argument("--picture", help="a PNG of every run's test error over the epochs")
    run_script(ap, run, smoke)
