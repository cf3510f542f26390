"""Adding a metric, a dataset, a recipe or a command is one file in its package (plus its test):
each toy below is written to a folder that joins the package's search path, is found by
`import_all` (or the CLI's listing of its commands), and works end to end without another file
of ganforge being touched."""

import importlib
import json
import sys
import textwrap

import pytest

import ganforge.cli
import ganforge.data
import ganforge.metrics
import ganforge.recipes
from ganforge import api
from ganforge.cli import main
from ganforge.core.registry import import_all
from ganforge.data import DATASETS
from ganforge.metrics import METRICS
from ganforge.recipes import RECIPES

from conftest import train_tiny

TOY_METRIC = '''
"""Mean pixel brightness of the samples: a toy metric."""
from ganforge.metrics.registry import Headline, Metric, register


def _brightness(ctx):
    return {"value": float(ctx.fake.mean())}


register(Metric("brightness", "mean pixel brightness of the samples", _brightness,
                fmt=lambda r: f"{r['value']:.4f}", headline=(Headline("value", "mean brightness", None),)))
'''

TOY_DATASET = '''
"""Checkerboards of random phase: a toy dataset."""
import torch

from ganforge.data.dataset import Dataset, DatasetSpec
from ganforge.data.registry import DATASETS, register


def _load(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    r = cfg.resolution
    ij = torch.arange(r)[:, None] + torch.arange(r)[None, :]
    phase = torch.randint(0, 2, (256, 1, 1, 1), generator=g)
    x = (((ij[None, None] + phase) % 2) * 255).to(torch.uint8)  # [256, 1, r, r]
    return Dataset(DATASETS["checkers"], x, None, cfg.range, "generated checkerboards")


register(DatasetSpec("checkers", "image", "checkerboards of random phase (toy)", _load))
'''

TOY_RECIPE = '''
"""The GAN step with one more statistic: a toy recipe."""
import torch

from ganforge.recipes.base import register
from ganforge.recipes.gan import GANRecipe


@register
class CountingGAN(GANRecipe):
    kind = "counting-gan"

    def train_step(self, batch):
        return {**super().train_step(batch), "batch_images": torch.tensor(float(len(batch["x"])))}
'''

TOY_COMMAND = '''
"""`ganforge hello`: a toy command."""
HELP = "say hello"


def add_arguments(p):
    p.add_argument("--name", default="world")


def run(args):
    print(f"hello, {args.name}")
    return 0
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Write one toy module into each package's search path; undo every registration after."""
    before = {k: dict(r) for k, r in (("m", METRICS), ("d", DATASETS), ("r", RECIPES))}
    modules = set(sys.modules)
    for package, name, text in ((ganforge.metrics, "toy_brightness", TOY_METRIC), (ganforge.data, "toy_checkers", TOY_DATASET),
                                (ganforge.recipes, "toy_counting", TOY_RECIPE), (ganforge.cli, "hello", TOY_COMMAND)):
        folder = tmp_path / package.__name__
        folder.mkdir()
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
        monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    for package in (ganforge.metrics, ganforge.data, ganforge.recipes):
        import_all(package.__name__, package.__path__)
    yield tmp_path
    for registry, saved in ((METRICS, before["m"]), (DATASETS, before["d"]), (RECIPES, before["r"])):
        for key in set(registry) - set(saved):
            del registry[key]
    for name in set(sys.modules) - modules:
        if name.startswith("ganforge."):  # the toys (torch's lazily loaded modules stay)
            del sys.modules[name]
    importlib.invalidate_caches()


def test_a_toy_metric_is_one_file(plugins, capsys):
    run = train_tiny(plugins, "train.max_steps=2", "eval.every_steps=2", "eval.metrics=[brightness]",
                     "eval.num_samples=50")
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < row["brightness"] < 1  # in metrics.jsonl under its own name, samples in [0, 1]
    assert main(["eval", str(run), "--metrics", "brightness", "--num-samples", "20"]) == 0
    assert "brightness" in capsys.readouterr().out


def test_a_toy_dataset_is_one_file(plugins):
    run = train_tiny(plugins, "data.name=checkers", "data.max_images=0", "data.resolution=8", "train.max_steps=2")
    assert (run / "ckpt" / "last.pt").is_file()
    assert main(["data", "info", "checkers"]) == 0


def test_a_toy_recipe_is_one_file(plugins):
    run = train_tiny(plugins, "train.recipe=counting-gan", "train.max_steps=4")
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["batch_images"] == 32
    assert api.load_generator(run).sample(3).shape[0] == 3  # its generator loads like any GAN's


def test_a_toy_command_is_one_file(plugins, capsys):
    assert main(["hello", "--name", "ganforge"]) == 0
    assert capsys.readouterr().out == "hello, ganforge\n"
