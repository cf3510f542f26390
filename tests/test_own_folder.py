"""A folder of one's own images: `ganforge train --data DIR` chooses from the data and says so; a
budget in time or images; the watch that says when a run is not learning; the closing line."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from conftest import tiny_overrides, tiny_yaml
from ganforge import api, autoconfig, cli, validate
from ganforge.core.errors import ConfigError, DataError
from ganforge.data.folder import probe_folder
from ganforge.engine.trainer import make_schedule
from ganforge.engine.watch import Watch


def _icons(root, n=40, size=48, colour=True, alpha=True, classes=("cats", "dogs")):
    """Small drawn icons: a filled shape on a transparent (or white) ground, in sub-folders."""
    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        mode = ("RGBA" if alpha else "RGB") if colour else ("LA" if alpha else "L")
        ground = {"RGBA": (0, 0, 0, 0), "RGB": (255, 255, 255), "LA": (0, 0), "L": 255}[mode]
        im = Image.new(mode, (size, size + 8), ground)
        fill = tuple(int(v) for v in rng.integers(0, 255, 3)) if colour else int(rng.integers(0, 200))
        if alpha:
            fill = (*fill, 255) if colour else (fill, 255)
        a, b = rng.integers(4, size // 3, 2)
        ImageDraw.Draw(im).ellipse([a, b, size - a, size - b + 8], fill=fill)
        im.save(folder / f"{i:03d}.png")
    return root


def test_probe_reads_size_colour_transparency_and_sub_folders(tmp_path):
    probe = probe_folder(_icons(tmp_path / "icons"))
    assert (probe.num_files, probe.short_side, probe.grey, probe.transparent) == (40, 48, 0.0, 1.0)
    assert probe.classes == ("cats", "dogs")
    grey = probe_folder(_icons(tmp_path / "grey", colour=False, alpha=False))
    assert grey.grey == 1.0 and grey.transparent == 0.0


@pytest.mark.parametrize("side, cuda, expected", [(48, False, 32), (20, False, 32), (64, False, 32),
                                                  (300, False, 32), (300, True, 128)])
def test_resolution_is_the_largest_size_the_images_fill_capped_on_a_cpu(tmp_path, side, cuda, expected):
    probe = probe_folder(_icons(tmp_path / "i", n=4, size=side))
    size, why = autoconfig.resolution_for(probe, cuda)
    assert size == expected
    assert f"{min(side, side + 8)} px" in why
    if side == 300:
        assert "x the pixels" in why
        assert "data.resolution=256" in why  # how to have more


def test_choices_follow_the_data_and_the_users_keys_win(tmp_path):
    root = _icons(tmp_path / "grey", colour=False, alpha=False)
    probe, choices = autoconfig.choose(root, ["train.max_kimg=5", "model.width=8"], cuda=False)
    settings = {k: v for c in choices for k, v in c.settings.items()}
    assert settings["data.channels"] == 1 and settings["data.resolution"] == 32
    assert "data.background" not in settings  # nothing transparent: nothing to say about it
    assert settings["model.width"] == 8 and settings["train.augment"] == autoconfig.AUGMENT["train.augment"]
    assert settings["train.batch_size"] == 4  # 40 images: 8 batches an epoch at least
    assert "train.max_minutes" not in settings  # the user's own budget replaces the time budget
    assert settings["train.epochs"] == 1_000_000  # ... and no epoch limit cuts it short
    nets = next(c for c in choices if c.what == "nets")
    assert nets.yours == ("model.width",) and "model.width=8 (yours)" in nets.line()
    cfg = validate.from_dict(autoconfig.config_dict(choices, ["train.max_kimg=5", "model.width=8"]))
    assert (cfg.train.max_kimg, cfg.train.max_minutes, cfg.model.width, cfg.run.name) == (5, 0, 8, "grey")
    with pytest.raises(ConfigError, match="data.name=mnist"):
        autoconfig.choose(root, ["data.name=mnist"], cuda=False)


def test_the_budget_is_time_and_at_32_px_at_most_the_images_measured_to_help(tmp_path):
    root = _icons(tmp_path / "icons", colour=True, alpha=False)

    def budget(*overrides):
        _, choices = autoconfig.choose(root, list(overrides), cuda=False)
        return next(c for c in choices if c.what == "budget")
    at_32 = budget()
    assert at_32.settings["train.max_minutes"] == autoconfig.MINUTES
    assert at_32.settings["train.max_kimg"] == autoconfig.MAX_KIMG_AT[32] and "whichever comes first" in at_32.why
    assert "train.max_kimg" not in budget("data.resolution=64").settings  # not measured there: time alone
    assert "train.max_kimg" not in budget("data.resolution=abc").settings  # left to validation to name
    lifted = budget("train.max_kimg=0")  # the cap lifted, the time budget kept (never a run without an end)
    assert (lifted.settings["train.max_kimg"], lifted.settings["train.max_minutes"]) == (0, autoconfig.MINUTES)
    assert budget("train.max_kimg=5").settings == {"train.epochs": 1_000_000}  # the user's own budget: theirs alone


def test_an_empty_or_missing_folder_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no image file found"):
        probe_folder(tmp_path / "empty")
    assert cli.main(["train", "--data", str(tmp_path / "nowhere")]) == 3  # a data error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no such folder" in err[0]
    assert cli.main(["train", "configs/mnist_mlp.yaml", "--data", str(tmp_path / "empty")]) == 2  # a usage error
    assert "not both" in capsys.readouterr().err


@pytest.mark.slow
def test_train_data_dir_prints_one_line_per_choice_and_the_run_repeats_from_its_config(tmp_path, capsys):
    root = _icons(tmp_path / "my icons", n=64)
    runs = tmp_path / "runs"
    args = ["train", "--data", str(root), "train.max_kimg=0.2", "log.progress=false", "log.report=false",
            f"run.dir={runs}", "train.precision=fp32", "health.watch_every=2"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith("  ") and ":" in line]
    whats = [line.split(":")[0].strip() for line in lines]
    assert whats == ["data", "resolution", "colour", "transparency", "nets", "batch", "augmentation", "EMA of G", "budget",
                     "pictures", "evaluation", "run name"]
    assert out[-1].startswith("reached:") and "ganforge featurenet train" in out[-1]  # nothing to measure it with yet
    run = next(runs.glob("*-my_icons"))
    saved = validate.load(run / "config.yaml")
    assert (saved.model.arch, saved.train.batch_size, saved.data.resolution) == ("dcgan", 8, 32)
    assert capsys.readouterr().out == ""
    assert cli.main(["train", str(run / "config.yaml"), "--print-config"]) == 0
    again = yaml.safe_load(capsys.readouterr().out)
    assert cli.main([*args[:3], *args[3:], "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == again


@pytest.mark.parametrize("n, batch", [(40, 4), (1023, 64), (1024, 128), (50_000, 128)])
def test_the_batch_leaves_a_small_folder_eight_batches_an_epoch(n, batch):
    assert autoconfig.batch_for(n)[0] == batch


def test_max_kimg_is_a_budget_in_images(tiny_cfg):
    cfg = tiny_cfg("train.max_kimg=0.1", "train.epochs=100")
    assert make_schedule(cfg, 512).total_steps == math.ceil(100 / 32)
    with pytest.raises(ConfigError, match="max_kimg"):
        tiny_cfg("train.max_kimg=-1")


@pytest.mark.slow
def test_the_run_says_what_its_budget_buys_and_closes_with_the_number_it_reached(tmp_path, capsys):
    assert cli.main(["train", str(tiny_yaml(tmp_path)), "train.max_minutes=0.03", "train.epochs=1000",
                     "eval.every_steps=40", "eval.metrics=[fid]", "eval.num_samples=200"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("reached:") and "lower is better" in out[-1], out[-1]
    log = next((tmp_path / "runs").glob("*/log.txt")).read_text()
    assert "budget:" in log and "train.max_minutes=0.03 ends near step" in log


# --- the watch ------------------------------------------------------------------------------------

class _Recipe:
    """Stands in for a recipe: samples from a fixed list, one per look."""

    def __init__(self, frames):
        self.frames = list(frames)

    def fixed_inputs(self, n, g):
        return {"z": torch.zeros(n, 1)}

    def sample(self, inputs):
        return self.frames.pop(0)


class _Run:
    def __init__(self):
        self.rows = []

    def append(self, name, row):
        self.rows.append(row)

    def truncate(self, name, step):
        pass


class _Data:
    def samples(self, n):
        return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _watch(tiny_cfg, frames):
    cfg = tiny_cfg("health.watch_every=10")
    w = Watch(cfg, _Data(), _Recipe(frames), _Run())
    w.real_spread = 1.0
    w.previous = w._samples()
    return w


def test_the_watch_says_d_wins_only_when_it_lasts_and_once(tiny_cfg):
    g = torch.Generator().manual_seed(0)
    frames = [torch.randn(32, 1, 8, 8, generator=g) for _ in range(6)]
    w = _watch(tiny_cfg, frames)
    said = []
    for acc in (0.99, 0.98, 0.99, 0.97):
        w.acc_sum, w.acc_n = acc * 10, 10
        said.append([kind for kind, _ in w.look(0)])
    assert said == [[], ["d_wins"], [], []]  # the second window in a row; said once while it lasts
    w.acc_sum, w.acc_n = 0.6 * 10, 10
    assert w.look(0) == [] and "d_wins" not in w.active  # cleared: it may be said again later


def test_the_watch_says_when_samples_stop_changing_and_when_they_collapse(tiny_cfg):
    g = torch.Generator().manual_seed(0)
    moving = [torch.randn(32, 1, 8, 8, generator=g) for _ in range(3)]
    still = [moving[-1].clone() for _ in range(2)]
    collapsed = [torch.randn(1, 1, 8, 8, generator=g).expand(32, 1, 8, 8) + 0.01 * torch.randn(32, 1, 8, 8, generator=g)]
    w = _watch(tiny_cfg, moving + still + collapsed)
    w.real_spread = 11.3  # about the spread of 64 N(0, 1) pixels
    kinds = [[kind for kind, _ in w.look(0)] for _ in range(4)]
    assert kinds == [[], [], [], ["still"]]
    found = w.look(0)
    assert [k for k, _ in found] == ["alike"] and "try train.pack=2" in found[0][1]
    assert [r["kind"] for r in w.run.rows] == ["still", "alike"]


def test_a_young_g_whose_samples_start_alike_is_not_called_collapsed(tiny_cfg):
    g = torch.Generator().manual_seed(0)
    alike = [torch.zeros(32, 1, 8, 8) + 0.01 * torch.randn(32, 1, 8, 8, generator=g) for _ in range(3)]
    w = _watch(tiny_cfg, alike)
    w.real_spread = 11.3
    assert [k for _ in range(2) for k, _ in w.look(0) if k == "alike"] == []


@pytest.mark.slow
def test_a_frozen_g_is_reported_in_a_short_run(tmp_path):
    """lr_G ~ 0: G cannot learn, D soon wins outright and the samples never move; both said in a
    run of a few hundred steps, in log.txt, watch.jsonl and the report's words."""
    cfg = validate.load(None, tiny_overrides(tmp_path, "optim.lr_G=1e-12", "train.epochs=16", "health.watch_every=50",
                                             "log.report=true", "health.every_steps=0"))
    run_dir, result = api.train(cfg, log=lambda s: None)
    kinds = [json.loads(line)["kind"] for line in (run_dir / "watch.jsonl").read_text().splitlines()]
    assert "still" in kinds and "d_wins" in kinds
    assert "D is winning outright" in (run_dir / "log.txt").read_text()
    assert "samples have stopped changing" in (run_dir / "report" / "report.html").read_text()
