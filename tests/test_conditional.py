"""Class-conditional GANs: cGAN, projection discriminator, AC-GAN as configurations of the GAN recipe."""

from pathlib import Path

import pytest
import torch

from ganforge import api, checkpoint, validate
from ganforge.cli import main
from ganforge.data import build_dataset
from ganforge.core.errors import ConfigError
from ganforge.api import load_generator
from ganforge.recipes import build_recipe


def _recipe(tiny_cfg, *extra):
    cfg = tiny_cfg("model.d_dropout=0.0", *extra)
    torch.manual_seed(0)
    data = build_dataset(cfg.data)
    cfg.model.num_classes = len(data.classes)  # as api.prepare fills it in
    return cfg, data, build_recipe(cfg, data, torch.device("cpu"))


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
@pytest.mark.parametrize("kind", ["cgan", "projection", "acgan"])
def test_the_class_reaches_both_players_and_a_step_trains_them(tiny_cfg, arch, kind):
    cfg, data, recipe = _recipe(tiny_cfg, f"model.conditional={kind}", f"model.arch={arch}", "model.width=8")
    z = torch.randn(4, 8)
    with torch.no_grad():
        recipe.G.eval()
        x3, x7 = recipe.G(z, torch.full((4,), 3)), recipe.G(z, torch.full((4,), 7))
        assert x3.shape == (4, 1, 28, 28) and not torch.allclose(x3, x7)  # G's output depends on c
        recipe.D.eval()
        d3, d7 = recipe.D(x3, torch.full((4,), 3)), recipe.D(x3, torch.full((4,), 7))
        assert d3.shape == ((4, 11) if kind == "acgan" else (4,))
        if kind == "acgan":  # the class does not enter an AC-GAN's D: its head predicts it
            torch.testing.assert_close(d3, d7)
        else:
            assert not torch.allclose(d3, d7)
    G0 = [p.detach().clone() for p in recipe.G.parameters()]
    stats = recipe.train_step(data.batch(torch.arange(32)))
    assert "loss_G" in stats and any(not torch.equal(a, b) for a, b in zip(G0, recipe.G.parameters()))
    if kind == "acgan":
        assert stats["aux_D"] > 0 and 0 <= stats["aux_acc_real"] <= 1


def test_acgan_losses_include_the_class_cross_entropy(tiny_cfg):
    """loss_D of an AC-GAN step = logistic loss + CE(aux(real), c) + CE(aux(fake), c)."""
    _, data, recipe = _recipe(tiny_cfg, "model.conditional=acgan")
    stats = recipe.train_step(data.batch(torch.arange(32)))
    assert stats["loss_D"] > stats["aux_D"] > 2 * 2.0  # two cross-entropies near log(10) = 2.3 at the start


def test_conditional_run_grid_sample_and_export(tiny_cfg, tmp_path):
    from PIL import Image

    run_dir, _ = api.train(tiny_cfg("model.conditional=cgan", "log.num_samples=20", "train.max_steps=4"),
                           log=lambda s: None)
    assert validate.load(run_dir / "config.yaml").model.num_classes == 10  # filled in from the data
    with Image.open(run_dir / "samples" / "step_0000004.png") as grid:
        assert grid.size == ((2 * 30 + 2) * 2, (10 * 30 + 2) * 2)  # a row per class, 2 samples each, scale 2
    G = load_generator(run_dir / "export")
    assert G.num_classes == 10 and G.inputs(25, seed=0)["c"].bincount().tolist() == [3] * 5 + [2] * 5
    torch.testing.assert_close(G.sample(6, seed=1, c=4), load_generator(run_dir).sample(6, seed=1, c=4))
    assert main(["sample", str(run_dir), "--class", "3", "--n", "8", "--out", str(tmp_path / "threes.png")]) == 0
    assert main(["sample", str(run_dir), "--class", "12", "--out", str(tmp_path / "x.png")]) == 2


def test_conditional_resume_with_ema_and_r1_is_bit_identical(tiny_cfg):
    from test_train import assert_same_state

    extra = ("model.conditional=projection", "loss.r1_gamma=1", "loss.r1_every=2", "train.ema_halflife_kimg=0.5",
             "model.d_dropout=0.0")
    _, full = api.train(tiny_cfg(*extra, "run.name=full"), log=lambda s: None)
    part_dir, part = api.train(tiny_cfg(*extra, "run.name=part", "train.max_steps=11"), log=lambda s: None)
    _, resumed = api.train(tiny_cfg(*extra, "run.name=part"), resume="auto", log=lambda s: None)
    assert part.step == 11 and resumed.step == full.step == 32
    full_dir = Path(tiny_cfg().run.dir) / "00000-full"
    a, b = checkpoint.load(full_dir / "ckpt/last.pt"), checkpoint.load(part_dir / "ckpt/last.pt")
    assert "ema" in a["recipe"]["players"]["G"]
    assert_same_state(a, b)


def test_folder_classes_come_from_sub_folders(tmp_path, tiny_cfg):
    from PIL import Image

    for i in range(40):
        sub = tmp_path / "imgs" / ("dark" if i % 2 else "light")
        sub.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 8), 40 if i % 2 else 220).save(sub / f"{i}.png")
    common = ("data.name=folder", f"data.root={tmp_path / 'imgs'}", "data.resolution=8", "data.max_images=0",
              "model.conditional=cgan", "train.max_steps=2")
    with pytest.raises(ConfigError, match=r"needs labelled data; folder has no labels \(set data.labels=true"):
        tiny_cfg(*common)
    run_dir, _ = api.train(tiny_cfg(*common, "data.labels=true"), log=lambda s: None)
    assert load_generator(run_dir).num_classes == 2


@pytest.mark.parametrize("overrides, message", [
    (["model.conditional=cgan", "data.name=ring", "model.z_dim=2"], "needs labelled data; ring has no labels"),
    (["model.conditional=acgan", "model.arch=goodfellow2014", "model.width=20", "data.range=unit"],
     "model.G=goodfellow2014 takes no class"),
    (["model.conditional=cgan", "train.pack=2", "train.batch_size=64"], "packs samples of different classes"),
    (["model.conditional=cgn"], "did you mean 'cgan'"),
])
def test_conditional_refusals_name_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, overrides)


def test_sample_labels_writes_a_labelled_dataset(tiny_cfg, tmp_path, capsys):
    from ganforge.data.folder import load_folder
    from ganforge.data.idx import read_idx

    run_dir, _ = api.train(tiny_cfg("model.conditional=acgan", "train.max_steps=2"), log=lambda s: None)
    assert main(["sample", str(run_dir), "--labels", "--n", "25", "--out", str(tmp_path / "png")]) == 0
    x, y, classes, _ = load_folder(tmp_path / "png", 28, 1, labels=True)  # ganforge reads it back as data
    assert x.shape == (25, 1, 28, 28) and classes == [str(k) for k in range(10)]
    assert sorted(y.tolist()) == sorted(k % 10 for k in range(25))
    assert main(["sample", str(run_dir), "--labels", "--n", "25", "--format", "idx", "--out", str(tmp_path / "idx")]) == 0
    images, labels = read_idx(tmp_path / "idx" / "synthetic-images-idx3-ubyte"), read_idx(tmp_path / "idx" / "synthetic-labels-idx1-ubyte")
    assert images.shape == (25, 28, 28) and labels.tolist() == [k % 10 for k in range(25)]
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--labels", "--out", str(tmp_path / "png")]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err
    plain, _ = api.train(tiny_cfg("train.max_steps=2", "run.name=plain"), log=lambda s: None)
    assert main(["sample", str(plain), "--labels", "--out", str(tmp_path / "none")]) == 2
    assert "needs a conditional generator" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_projection_and_acgan_heads_compute_their_formulas():
    from ganforge.nets.common import ConditionalHead

    torch.manual_seed(0)
    logit, h, c = torch.randn(5), torch.randn(5, 7), torch.tensor([0, 2, 1, 2, 0])
    proj = ConditionalHead("projection", 3, 7)
    torch.testing.assert_close(proj(logit, h, c), logit + (proj.embed.weight[c] * h).sum(1))
    ac = ConditionalHead("acgan", 3, 7)
    out = ac(logit, h, c)
    torch.testing.assert_close(out, torch.cat([logit[:, None], h @ ac.aux.weight.T + ac.aux.bias], 1))


def test_acgan_generator_loss_includes_the_class_cross_entropy(tiny_cfg, monkeypatch):
    """G's AC-GAN objective = the adversarial loss + CE(aux(G(z, c)), c): with the adversarial part
    switched off, G's loss is exactly that cross-entropy."""
    from ganforge import losses

    zero = losses.Loss("zero-test", d=lambda r, f: (r * 0).sum() + (f * 0).sum(), g=lambda f: (f * 0).sum(),
                       stats=lambda r, f: {}, labels={})
    monkeypatch.setitem(losses.LOSSES, "zero-test", zero)
    _, data, recipe = _recipe(tiny_cfg, "model.conditional=acgan", "loss.kind=zero-test")
    stats = recipe.train_step(data.batch(torch.arange(32)))
    assert 1.5 < stats["loss_G"] < 4.0  # a cross-entropy over 10 classes near log(10) = 2.3 at the start


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_per_class_fid_scores_each_class_against_its_own_real_images(tiny_cfg, tiny_run, monkeypatch):
    """class_fid: a generator that draws real test images of the asked class scores far lower than
    one that draws the wrong class; an unconditional generator is refused with the reason."""
    import ganforge.metrics as metrics
    from ganforge.data import load_embedded_mnist
    from ganforge.metrics import evaluate_generator

    run_dir, _ = api.train(tiny_cfg("model.conditional=cgan", "train.max_steps=1"), log=lambda s: None)
    G = load_generator(run_dir)
    x, y = load_embedded_mnist()  # training images: not the test images the metric compares with
    x, y = torch.from_numpy(x).float().div(255)[:, None], torch.from_numpy(y).long()
    by_class = [(y == k).nonzero()[:, 0] for k in range(10)]

    def real_images_of(shift: int):
        """A stand-in generator: for class k it returns real training images of class k + shift."""
        def fake_generate(G, n, seed, batch=1000, dist=None):
            asked = (torch.arange(n) % 10 + shift) % 10
            return x[torch.stack([by_class[k][i // 10] for i, k in enumerate(asked.tolist())])]
        return fake_generate

    monkeypatch.setattr(metrics, "generate", real_images_of(0))
    (right,) = evaluate_generator(G, ["class_fid"], 2000, seed=0)
    monkeypatch.setattr(metrics, "generate", real_images_of(1))
    (wrong,) = evaluate_generator(G, ["class_fid"], 2000, seed=0)
    assert len(right["per_class"]) == 10 and right["num_fake_per_class"] == 200
    assert right["value"] < 0.2 * wrong["value"], (right["value"], wrong["value"])
    monkeypatch.undo()
    (refused,) = api.evaluate(tiny_run, ["class_fid"], num_samples=100)
    assert "needs a conditional generator" in refused["refused"]
