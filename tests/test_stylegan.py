"""The compact StyleGAN2 nets: shapes, demodulation, the mapping network, style mixing,
truncation toward the mean w, minibatch standard deviation; training resumes exactly
(tests/test_train.py runs it with R1 and an EMA)."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganforge import validate
from ganforge.core.errors import ConfigError
from ganforge.nets.stylegan import (MappingNetwork, ModulatedConv2d, StyleGANDiscriminator, StyleGANGenerator,
                                    minibatch_std)


def tiny_handle():
    """A freshly initialised 28 px StyleGAN (z 16, width 4) behind a GeneratorHandle, in eval mode."""
    from ganforge.generator import GeneratorHandle

    cfg = validate.load(None, ["model.arch=stylegan", "data.name=mnist-embedded", "model.d_norm=none", "model.z_dim=16",
                             "model.width=4"])
    torch.manual_seed(0)
    return GeneratorHandle(StyleGANGenerator(16, 28, 1, width=4).eval(), cfg)


@pytest.mark.parametrize("resolution, channels", [(28, 1), (32, 1), (32, 3), (8, 3), (64, 3)])
def test_generator_and_discriminator_shapes(resolution, channels):
    torch.manual_seed(0)
    G, D = StyleGANGenerator(16, resolution, channels, width=8), StyleGANDiscriminator(resolution, channels, width=8)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, channels, resolution, resolution) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    assert G.ws(torch.randn(5, 16)).shape == (5, G.num_ws, G.w_dim)


def test_modulated_conv_shapes_and_demodulation_gives_unit_variance():
    torch.manual_seed(0)
    conv = ModulatedConv2d(32, 48, 3, w_dim=16)
    up = ModulatedConv2d(32, 48, 3, w_dim=16, up=True)
    x, w = torch.randn(64, 32, 8, 8), torch.randn(64, 16)
    assert conv(x, w).shape == (64, 48, 8, 8) and up(x, w).shape == (64, 48, 16, 16)
    # unit-variance input -> about unit-variance output, whatever the styles' size (demodulation)
    for style_scale in (1.0, 5.0):
        with torch.no_grad():
            conv.affine.bias.fill_(style_scale)
        assert 0.8 < conv(x, w).std().item() < 1.2
    plain = ModulatedConv2d(32, 48, 3, w_dim=16, demodulate=False)
    with torch.no_grad():
        plain.affine.bias.fill_(5.0)
    assert plain(x, w).std().item() > 3  # without demodulation the styles' size passes through


def test_demodulated_weights_have_unit_norm_per_output_channel():
    torch.manual_seed(1)
    conv = ModulatedConv2d(8, 4, 3, w_dim=6)
    x = torch.zeros(2, 8, 5, 5)
    x[:, :, 2, 2] = 1.0  # an impulse: the output at the centre reads the weights themselves
    # with unit-norm weights per (sample, output channel), the centre response over all input
    # channels summed is the weights' sum; check the norm through a second impulse per channel
    outs = []
    for k in range(8):
        e = torch.zeros(2, 8, 5, 5)
        e[:, k, 2, 2] = 1.0
        outs.append(conv(e, torch.ones(2, 6))[:, :, 1:4, 1:4])  # the 3 x 3 footprint: weights flipped
    norms = torch.stack(outs, 2).pow(2).sum(dim=(2, 3, 4)).sqrt()
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)


def test_mapping_network_normalises_z():
    torch.manual_seed(0)
    M = MappingNetwork(16, 24, depth=4)
    z = torch.randn(6, 16)
    w = M(z)
    assert w.shape == (6, 24)
    assert torch.allclose(M(5 * z), w, atol=1e-5)  # only z's direction matters


def test_style_mixing_only_in_training_and_truncation_toward_the_mean_w():
    torch.manual_seed(0)
    G = StyleGANGenerator(16, 16, 1, width=4, mixing=1.0)
    z = torch.randn(4, 16)
    G.train()
    ws = G.ws(z)
    assert not all(torch.equal(ws[:, 0], ws[:, i]) for i in range(1, G.num_ws))  # two w's in one image
    assert G.w_avg.abs().sum() > 0  # the running mean of w moved
    G.eval()
    ws = G.ws(z)
    assert all(torch.equal(ws[:, 0], ws[:, i]) for i in range(1, G.num_ws))
    assert torch.allclose(G.truncate(ws, 0.0), G.w_avg.expand_as(ws)) and torch.equal(G.truncate(ws, 1.0), ws)
    no_mix = StyleGANGenerator(16, 16, 1, width=4, mixing=0.0).train()
    ws = no_mix.ws(z)
    assert all(torch.equal(ws[:, 0], ws[:, i]) for i in range(1, no_mix.num_ws))


def test_eval_mode_is_deterministic_noise_included():
    torch.manual_seed(0)
    G = StyleGANGenerator(16, 16, 1, width=4).eval()
    with torch.no_grad():
        for layer in G.layers:
            layer.noise_strength.fill_(1.0)
    z = torch.randn(3, 16)
    assert torch.equal(G(z), G(z))
    G.train()
    assert not torch.equal(G(z), G(z))  # fresh noise (and mixing) in training


def test_minibatch_std_adds_one_feature():
    x = torch.randn(8, 5, 4, 4)
    y = minibatch_std(x)
    assert y.shape == (8, 6, 4, 4) and torch.equal(y[:, :5], x)
    same = minibatch_std(torch.ones(8, 5, 4, 4))
    assert same[:, 5].abs().max() < 1e-3  # no variety in the batch: about zero


def test_stylegan_configs():
    cfg = validate.load("configs/mnist_stylegan.yaml", ["data.name=mnist-embedded"])
    assert cfg.model.arch == "stylegan"
    with pytest.raises(ConfigError, match="stylegan needs data.resolution"):
        validate.load(None, ["model.arch=stylegan", "data.name=folder", "data.root=x", "data.resolution=24",
                           "model.d_norm=none"])
    with pytest.raises(ConfigError, match="takes no class"):
        validate.load(None, ["model.arch=stylegan", "data.name=mnist-embedded", "model.conditional=cgan"])


def test_psi_truncates_in_w_through_the_handle_the_explorer_and_the_sweep(tmp_path):
    from ganforge.api import truncation_sweep
    from ganforge.serve.explorer import Explorer, View

    handle = tiny_handle()
    G = handle.G
    G.w_avg.normal_()
    inputs = handle.inputs(3, seed=1, psi=0.5)
    assert torch.equal(inputs["z"], handle.inputs(3, seed=1)["z"]) and "psi" in inputs  # z untouched: psi acts on w
    with torch.no_grad():
        expected = G.synthesis(G.truncate(G.ws(inputs["z"]), 0.5))
    assert torch.allclose(handle.sample(3, seed=1, psi=0.5), expected)
    mean = handle.sample(3, seed=1, psi=0.0)
    assert torch.allclose(mean[0], mean[1]) and torch.allclose(mean[0], mean[2])  # every seed: the mean w's image
    ex = Explorer(handle, num_directions=2)
    assert torch.allclose(ex.G(ex.latent_inputs(View(seed=1, psi=0.5, offsets=(0.0, 0.0)))), expected[:1], atol=1e-5)
    sweep = truncation_sweep(handle, tmp_path / "sweep.png", n=4)
    assert sweep.is_file()


def test_style_mixing_grid_takes_coarse_styles_from_rows_and_fine_from_columns(tmp_path, capsys):
    import numpy as np

    from ganforge.api import style_mixing
    from ganforge.cli import main
    from ganforge.core.images import to_uint8

    handle = tiny_handle()
    G = handle.G
    path = style_mixing(handle, tmp_path / "mix.png", row_seeds=(1, 2), col_seeds=(3, 4, 5), cut=2)
    grid = np.asarray(Image.open(path))  # 4 columns x 3 rows of 28 px cells, 2 px padding, enlarged 2x

    def cell(r, c):
        return grid[2 * (2 + 30 * r): 2 * (30 + 30 * r): 2, 2 * (2 + 30 * c): 2 * (30 + 30 * c): 2]

    with torch.no_grad():
        w_row, w_col = G.ws(handle.inputs(1, seed=2)["z"]), G.ws(handle.inputs(1, seed=4)["z"])
        mixed = w_col.clone()
        mixed[:, :2] = w_row[:, :2]
        expected = to_uint8(G.synthesis(mixed), "signed")[0, ..., 0]
        row_image = to_uint8(G.synthesis(w_row), "signed")[0, ..., 0]
    assert np.array_equal(cell(2, 2), expected)  # row seed 2 (coarse) x column seed 4 (fine)
    assert np.array_equal(cell(2, 0), row_image) and cell(0, 0).max() == 0  # the row's own image; a blank corner
    assert main(["stylemix", "runs/none.pt", "--out", str(tmp_path / "x.png")]) != 0
    from conftest import train_tiny

    mlp = train_tiny(tmp_path, "train.max_steps=2")
    assert main(["stylemix", str(mlp), "--out", str(tmp_path / "y.png")]) == 2
    assert "style-based generator" in capsys.readouterr().err


def test_a_stylegan_run_reports_its_mixing_figure_and_its_walk_in_w(tmp_path):
    from conftest import train_tiny

    from ganforge.cli import main

    run = train_tiny(tmp_path, "model.arch=stylegan", "model.width=4", "model.d_norm=none", "train.max_steps=3",
                     "log.report=true")
    html = (run / "report" / "report.html").read_text()
    for name in ("style_mixing.png", "walk_w.gif", "walk.gif", "truncation.png"):
        assert (run / "report" / name).is_file() and name in html, name
    assert Image.open(run / "report" / "walk_w.gif").n_frames == 4 * 12  # 4 seeds, 12 frames a leg, looping
    assert main(["stylemix", str(run), "--rows", "1", "2", "--cols", "3", "--out", str(tmp_path / "m.png"),
                 "--psi", "0.7"]) == 0


def test_interp_walks_w_in_straight_lines(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from ganforge.api import interp
    from ganforge.cli import main
    from ganforge.core.images import to_uint8

    handle = tiny_handle()
    G = handle.G
    strip = np.asarray(Image.open(interp(handle, tmp_path / "w.png", seeds=[1, 2], steps=4, space="w")))
    with torch.no_grad():
        w1, w2 = (G.ws(handle.inputs(1, seed=s)["z"]) for s in (1, 2))
        middle = to_uint8(G.synthesis(w1 + 0.5 * (w2 - w1)), "signed")[0, ..., 0]  # frame 2 of 5: t = 2/4
    frame = strip[2 * 2: 2 * 30: 2, 2 * (2 + 30 * 2): 2 * (30 + 30 * 2): 2]
    assert np.array_equal(frame, middle)
    from conftest import train_tiny

    mlp = train_tiny(tmp_path, "train.max_steps=2")
    assert main(["interp", str(mlp), "--space", "w", "--out", str(tmp_path / "x.gif")]) == 2
    assert "has only z" in capsys.readouterr().err


def test_path_length_penalty_on_known_inputs():
    from ganforge.losses import path_length_penalty

    # images = 3 * ws seen as one-channel [L, D] images: J^T y = 3 y, whatever ws is.
    ws = torch.randn(6, 5, 7, requires_grad=True)
    pl, new_mean, length = path_length_penalty(lambda w: 3 * w[:, None], ws, torch.tensor(2.0), decay=0.1,
                                               generator=torch.Generator().manual_seed(1))
    y = torch.randn(6, 1, 5, 7, generator=torch.Generator().manual_seed(1)) / (5 * 7) ** 0.5
    lengths = (3 * y[:, 0]).pow(2).sum(2).mean(1).sqrt()
    expect_mean = 2.0 + 0.1 * (lengths.mean() - 2.0)
    assert torch.allclose(length, lengths.mean()) and torch.allclose(new_mean, expect_mean)
    assert torch.allclose(pl, (lengths - expect_mean).pow(2).mean())
    assert not new_mean.requires_grad  # a statistic, not a path for gradients
    # A map whose Jacobian has equal singular values has lengths close to a constant: the penalty is small
    # once the running mean has reached it (on 28 x 28 images the lengths barely vary).
    ws = torch.randn(64, 2, 392, requires_grad=True)
    _, mean, _ = path_length_penalty(lambda w: w.reshape(64, 1, 28, 28), ws, torch.tensor(0.0), decay=1.0)
    pl, _, _ = path_length_penalty(lambda w: w.reshape(64, 1, 28, 28), ws, mean, decay=0.0)
    assert pl < 1e-3 * mean ** 2


def _stylegan_recipe(*extra):
    from ganforge import api

    cfg = validate.load(None, ["model.arch=stylegan", "data.name=mnist-embedded", "data.max_images=64",
                             "model.d_norm=none", "model.z_dim=16", "model.width=4", "train.batch_size=8",
                             "train.precision=fp32", "train.channels_last=false", *extra])
    torch.manual_seed(0)
    data, recipe, _ = api.prepare(cfg, torch.device("cpu"))
    return data, recipe


def test_path_length_regularisation_trains_G_only_lazily_and_keeps_its_mean():
    data, recipe = _stylegan_recipe("loss.pl_weight=2", "loss.pl_every=2")
    batch = data.batch(torch.arange(8), torch.device("cpu"))
    seen = [recipe.train_step(batch) for _ in range(4)]
    assert ["pl" in s for s in seen] == [True, False, True, False]  # every 2nd G update, from the first
    assert seen[0]["pl_mean"] > 0 and seen[2]["pl_mean"] > seen[0]["pl_mean"]  # the running mean climbs from 0
    assert float(recipe.pl_mean) == pytest.approx(float(seen[2]["pl_mean"]))
    assert recipe.state_dict()["pl_mean"] == pytest.approx(float(recipe.pl_mean))

    # The same first step with and without the penalty: D's update is the same, G's differs.
    _, a = _stylegan_recipe("loss.pl_weight=2")
    _, b = _stylegan_recipe("loss.pl_weight=0")
    torch.manual_seed(5)
    a.train_step(batch)
    torch.manual_seed(5)
    b.train_step(batch)
    assert all(torch.equal(p, q) for p, q in zip(a.D.parameters(), b.D.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.G.parameters(), b.G.parameters()))
    assert torch.equal(a.G.w_avg, b.G.w_avg)  # the penalty's batch leaves the mean w alone


def test_path_length_regularisation_needs_a_mapping_network():
    with pytest.raises(ConfigError, match="loss.pl_weight=2.0 regularises the map from styles w.*model.arch=stylegan"):
        validate.load(None, ["model.arch=dcgan", "data.name=mnist-embedded", "loss.pl_weight=2"])
    with pytest.raises(ConfigError, match="loss.pl_weight needs train.update=alternating"):
        validate.load(None, ["model.arch=stylegan", "data.name=mnist-embedded", "model.d_norm=none", "loss.pl_weight=2",
                           "train.update=simultaneous"])


def test_augment_p_applies_each_policy_to_that_share_of_the_samples():
    from ganforge.core.augment import diff_augment

    x = torch.rand(4000, 1, 8, 8) + 1  # no zero pixel: cutout always shows
    torch.manual_seed(0)
    always = diff_augment(x, ["cutout"])
    torch.manual_seed(0)
    assert torch.equal(diff_augment(x, ["cutout"], 1.0), always)  # p = 1 is DiffAugment, draw for draw
    assert torch.equal(diff_augment(x, ["cutout", "translation"], 0.0), x)
    changed = (diff_augment(x, ["cutout"], 0.3) != x).flatten(1).any(1).float().mean()
    assert 0.27 < changed < 0.33


def test_ada_moves_p_with_the_sign_of_the_real_logits():
    from ganforge.core.augment import ada_step

    assert ada_step(0.0, 0.9, 0.6, images=1000, kimg=10) == pytest.approx(0.1)  # D overfits: more augmentation
    assert ada_step(0.5, 0.2, 0.6, images=1000, kimg=10) == pytest.approx(0.4)
    assert ada_step(0.0, 0.2, 0.6, images=1000, kimg=10) == 0.0 and ada_step(1.0, 1.0, 0.6, 1000, 10) == 1.0

    # In the recipe: every ada_every D updates, from the real logits it saw.
    data, recipe = _stylegan_recipe("train.augment=translation", "train.augment_p=0", "train.ada_target=0.6",
                                    "train.ada_every=2", "train.ada_kimg=0.16")  # a step of 8 * 2 / 160 = 0.1
    batch = data.batch(torch.arange(8), torch.device("cpu"))
    recipe._split = lambda out: (out.float() * 0 + 3.0, None)  # D says "real" to everything
    ps = [float(recipe.train_step(batch)["aug_p"]) for _ in range(6)]
    assert ps == pytest.approx([0.0, 0.1, 0.1, 0.2, 0.2, 0.3])
    recipe._split = lambda out: (out.float() * 0 - 3.0, None)  # D says "fake" to everything
    ps = [float(recipe.train_step(batch)["aug_p"]) for _ in range(4)]
    assert ps == pytest.approx([0.3, 0.2, 0.2, 0.1])
    assert recipe.state_dict()["aug_p"] == pytest.approx(0.1)


def test_augment_probability_needs_an_augmentation():
    with pytest.raises(ConfigError, match="train.augment names no augmentation"):
        validate.load(None, ["data.name=mnist-embedded", "train.ada_target=0.6"])
    with pytest.raises(ConfigError, match=r"train.augment_p=1.5 must be in \[0, 1\]"):
        validate.load(None, ["data.name=mnist-embedded", "train.augment=color", "train.augment_p=1.5"])
    with pytest.raises(ConfigError, match="train.ada_target=0.6: loss.kind=wasserstein has no decision boundary"):
        validate.load(None, ["data.name=mnist-embedded", "train.augment=color", "train.ada_target=0.6",
                           "loss.kind=wasserstein", "loss.gp_weight=10", "model.d_norm=none"])
    with pytest.raises(ConfigError, match="train.update=simultaneous has no separate D update"):
        validate.load(None, ["data.name=mnist-embedded", "train.augment=color", "train.ada_target=0.6",
                           "train.update=simultaneous"])


@pytest.mark.parametrize("up, demodulate", [(False, True), (True, True), (False, False)])
def test_modulated_conv_equals_a_per_sample_modulated_weight(up, demodulate):
    """The batch computation against the definition: each sample convolved with its own weight
    w'_ijk = s_i w_ijk, demodulated by 1 / sqrt(sum_ik w'_ijk^2 + eps) (StyleGAN2 eq. 1 and 3)."""
    torch.manual_seed(2)
    conv = ModulatedConv2d(5, 7, 3, w_dim=4, demodulate=demodulate, up=up)
    x, w = torch.randn(3, 5, 6, 6), torch.randn(3, 4)
    with torch.no_grad():
        s = conv.affine(w)
        expect = []
        for n in range(3):
            wn = conv.weight * conv.scale * s[n][None, :, None, None]
            if demodulate:
                wn = wn / (wn.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
            xn = F.interpolate(x[n:n + 1], scale_factor=2, mode="bilinear", align_corners=False) if up else x[n:n + 1]
            expect.append(F.conv2d(xn, wn, padding=1))
        assert torch.allclose(conv(x, w), torch.cat(expect), atol=1e-5)
