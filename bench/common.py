"""What the benchmarks share: the machine a number was measured on, mean and standard error,
image conversions, the real IDX splits and the classifier recipe of the CAS rows, the textbook's
MNIST GAN and the timing of a reference loop against `ganforge train`, and the --smoke mode of
every script.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ganforge import api, config
from ganforge.core.io import atomic_write_text
from ganforge.data import DATASETS, load_embedded_mnist, load_idx_split
from ganforge.data.idx import read_idx
from ganforge.data.mnist import idx_files
from ganforge.data.sources import find_idx_file, missing_data_message
from ganforge.metrics.featurenet import accuracy, shift  # the feature nets' own training recipe
from ganforge.metrics.features import DomainCNN, load_extractor

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


# --- the machine ----------------------------------------------------------------------------------

def cpu_model() -> str:
    """The CPU's model name: timings from another CPU do not compare."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> dict:
    """What a measurement ran on, as the result files record it."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version()}


def machine_line() -> str:
    m = machine()
    return f"{m['cpu']}, {m['cores']} cores, {m['threads']} torch threads; torch {m['torch']}"


# --- statistics and tables ------------------------------------------------------------------------

def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (nan from a single value)."""
    m = statistics.fmean(values)
    return m, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan"))


def format_mean_se(values: list[float], digits: int = 2) -> str:
    """'mean +- se', or the value alone where there is only one."""
    m, se = mean_se(values)
    return f"{m:.{digits}f}" if len(values) < 2 else f"{m:.{digits}f} +- {se:.{digits}f}"


def table_head(*columns: str) -> str:
    """A Markdown table's header row and rule."""
    return "| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns)


# --- images and the real splits -------------------------------------------------------------------

def unit_images(images_u8: np.ndarray) -> torch.Tensor:
    """IDX images uint8 [N, H, W] -> float [N, 1, H, W] in [0, 1]."""
    return torch.from_numpy(images_u8).float().div_(255)[:, None]


def to_unit(x: torch.Tensor, value_range: str) -> torch.Tensor:
    """Images in a data range (uint8, 'signed' [-1, 1] or 'unit' [0, 1]) -> float in [0, 1], what
    the domain classifiers read."""
    if x.dtype == torch.uint8:
        return x.float() / 255
    return (x.float() + 1) / 2 if value_range == "signed" else x.float()


def real_split(domain: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [N, 1, 28, 28] in [0, 1], labels) of an IDX dataset split on the data search path."""
    x, y, _ = load_idx_split(domain, split)
    return unit_images(x), torch.from_numpy(y).long()


def synthetic(run_dir: Path, out: Path, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n labelled samples of a conditional run, written by `ganforge sample RUN --labels --format idx`
    and read back as the IDX files any tool would read (once per run: the folder is reused)."""
    folder = out / f"synthetic-{run_dir.name}"
    if not folder.exists():
        api.sample_dataset(run_dir, n, folder, seed=seed, fmt="idx")
    x = read_idx(folder / "synthetic-images-idx3-ubyte")
    y = read_idx(folder / "synthetic-labels-idx1-ubyte")
    return unit_images(x), torch.from_numpy(y.astype(np.int64))


def train_classifier(sets: list[tuple[torch.Tensor, torch.Tensor]], shares: list[float], steps: int,
                     test: tuple[torch.Tensor, torch.Tensor], seed: int = 0, batch: int = 128) -> float:
    """The shipped domain classifier's architecture trained from scratch with its own recipe (AdamW
    2e-3, one-cycle, +-2 px shifts, label smoothing 0.05); each batch draws shares[i] of its images
    uniformly from sets[i]. Returns the test accuracy."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = DomainCNN()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    counts = [round(s * batch) for s in shares]
    net.train()
    for _ in range(steps):
        xs, ys = [], []
        for (x, y), k in zip(sets, counts):
            idx = torch.randint(len(x), (k,), generator=g)
            xs.append(x[idx])
            ys.append(y[idx])
        loss = F.cross_entropy(net(shift(torch.cat(xs), g)), torch.cat(ys), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return accuracy(net, *test)


def agreement(G, n: int, seed: int) -> tuple[float, list[float]]:
    """Share of n samples of a conditional generator (the classes in turn) that the shipped domain
    classifier reads as the class G was asked for: overall and per class."""
    x = G.sample(n, seed=seed)
    asked = G.inputs(n, seed=seed)["c"]
    _, read = load_extractor(DATASETS[G.cfg.data.name].feature_net).run(to_unit(x, G.value_range))
    hit = (read == asked).float()
    return hit.mean().item(), [hit[asked == k].mean().item() for k in range(G.num_classes)]


# --- the textbook's MNIST GAN, the reference the loops are timed against ---------------------------

class MnistDataset(Dataset):
    """A per-sample Dataset converting each image as ToTensor + Normalize((0.5,), (0.5,)) do."""

    def __init__(self, images_u8):
        self.images = images_u8

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i].astype(np.float32) / 255.0)[None]  # ToTensor
        return (x - 0.5) / 0.5  # Normalize((0.5,), (0.5,))


def load_images(name: str) -> np.ndarray:
    """MNIST training images, uint8: the embedded 10,000 or the full set."""
    return load_embedded_mnist()[0] if name == "mnist-embedded" else load_idx_split("mnist", "train")[0]


def load_labels(name: str) -> np.ndarray:
    return load_embedded_mnist()[1] if name == "mnist-embedded" else load_idx_split("mnist", "train")[1]


class TextbookG(nn.Module):
    def __init__(self, nz=128):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(nn.Linear(nz, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
                                  nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh())

    def forward(self, x):
        return self.main(x).view(-1, 1, 28, 28)


class TextbookD(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
                                  nn.Linear(256, 1), nn.Sigmoid())

    def forward(self, x):
        return self.main(x.view(-1, 784))


def textbook_step(G, D, opt_g, opt_d, bce, image):
    """One step of the textbook's loop: D on the real batch and a detached fake, then the G step
    through a second G forward. Returns (loss_D, loss_G, D(x), D(G(z)))."""
    b, device = image.size(0), image.device
    real_label, fake_label = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
    fake = G(torch.randn(b, G.nz, device=device)).detach()
    opt_d.zero_grad()
    out_real, out_fake = D(image), D(fake)
    loss_d = bce(out_real, real_label) + bce(out_fake, fake_label)
    loss_d.backward()
    opt_d.step()
    fake = G(torch.randn(b, G.nz, device=device))
    opt_g.zero_grad()
    loss_g = bce(D(fake), real_label)
    loss_g.backward()
    opt_g.step()
    return loss_d, loss_g, out_real, out_fake


# --- timing a reference loop against `ganforge train` ---------------------------------------------

WARMUP = 5  # steps run before the clock starts, on both sides: allocations and thread pools settle


def reference_samples_per_s(loader: DataLoader, steps: int, batch: int, step: Callable, device: str = "cpu") -> float:
    """Real images per second through `step` over `steps` batches of `loader` after the warm-up
    (each batch moved to `device` as a reference loop does; CUDA's queue drained at both clock reads)."""
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    done, t_start = 0, None
    while done < steps + WARMUP:
        for x in loader:
            if done == WARMUP:
                sync()
                t_start = time.perf_counter()
            step(x.to(device, non_blocking=True) if isinstance(x, torch.Tensor) else x)
            done += 1
            if done >= steps + WARMUP:
                break
    sync()
    return steps * batch / (time.perf_counter() - t_start)


def ganforge_samples_per_s(preset: str, data: str, steps: int, extra=()) -> float:
    """Real images per second of `ganforge train` with configs/<preset> over `steps` steps after the
    warm-up, in a throw-away run folder. The run report is left out: it is written after the last
    step, outside the timed span, so it would only cost wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.load(CONFIGS / preset, [f"data.name={data}", f"train.max_steps={steps + WARMUP}",
                                             "log.progress=false", "log.report=false",
                                             f"log.stats_every_steps={WARMUP}", "log.ckpt_every_steps=100000",
                                             f"run.dir={tmp}", *extra])
        run_dir, _ = api.train(cfg, log=lambda s: None)
        rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
        # time_s counts step time only; the first row is the warm-up
        t = rows[-1]["time_s"] - rows[0]["time_s"]
        return (rows[-1]["step"] - rows[0]["step"]) * cfg.train.batch_size / t


# --- --smoke: does the script still run? ----------------------------------------------------------

SMOKE_HELP = ("run the smallest configuration inside a temporary folder, ignoring the other arguments "
              "(a check that the script still runs, not a measurement)")
SMOKE_SKIPPED = "smoke skipped:"

# A run small enough to train in a second: something for a smoke run to evaluate, serve or load.
TINY_RUN = ["train.precision=fp32", "data.name=mnist-embedded", "data.max_images=256", "model.width=8",
            "train.batch_size=32", "train.epochs=1", "train.max_steps=2", "eval.every_steps=0",
            "health.every_steps=0", "log.progress=false", "log.report=false"]


def write_results(out: Path | None, text: str, rows: list[dict]) -> None:
    """The table (results.md) and its rows (results.json) in `out`, when given; then the table."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "results.md", text)
        atomic_write_text(out / "results.json", json.dumps(rows, indent=2) + "\n")
    print(text)


def parser(doc: str) -> argparse.ArgumentParser:
    """A script's argument parser, its --help showing the module docstring as written (the usage
    examples keep their lines)."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def run_script(ap: argparse.ArgumentParser, run: Callable, smoke: Callable[[Path], list[str]]) -> None:
    """Parse the command line and call run(args). With --smoke, parse smoke(tmp) instead: the
    script's own arguments set to its smallest configuration, writing nothing outside the
    temporary folder tmp. (--smoke is looked for before parsing, so that a script's required
    arguments need not be given with it.)"""
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    if "--smoke" not in sys.argv[1:]:
        run(ap.parse_args())
        return
    # A smoke run measures nothing: one thread keeps it from fighting other work for the cores.
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        run(ap.parse_args(smoke(Path(tmp))))


def need_data(*domains: str) -> None:
    """In a smoke run: stop cleanly, saying why, when an IDX dataset is not on the data search path
    (GANFORGE_DATA) rather than fail."""
    for name in domains:
        ds = idx_files(name)
        for filename in ds.files.values():
            if find_idx_file(ds, filename) is None:
                print(f"{SMOKE_SKIPPED} {name} is not on the data search path (GANFORGE_DATA)")
                print(missing_data_message(ds, filename))
                raise SystemExit(0)


def tiny_run(tmp: Path, preset: str, *overrides: str) -> Path:
    """configs/<preset> trained for two steps on a few embedded MNIST images, inside tmp."""
    cfg = config.load(CONFIGS / preset, [*TINY_RUN, *overrides, f"run.dir={tmp / 'runs'}"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return run_dir
