"""The GAN family as configurations of one recipe: losses, penalties, constraints, EMA."""

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge import api, checkpoint, losses, validate
from ganforge.cli import main
from ganforge.data import build_dataset
from ganforge.core.errors import ConfigError
from ganforge.api import load_generator
from ganforge.recipes import build_recipe

from conftest import preset_overrides, tiny_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))

REAL, FAKE = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])


@pytest.mark.parametrize("kind, d_expected, g_expected", [
    # 0.5 * mean((r - 1)^2) + 0.5 * mean(f^2); 0.5 * mean((f - 1)^2)
    ("lsgan", 0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2, 0.5 * (0.25 + 16) / 2),
    # mean(relu(1 - r)) + mean(relu(1 + f)); -mean(f)
    ("hinge", (0 + 2) / 2 + (1.5 + 0) / 2, 1.25),
    # mean(f) - mean(r); -mean(f)
    ("wasserstein", -1.25 - 0.5, 1.25),
    # softplus(-r) + softplus(f) means; softplus(-f)
    ("ns", (math.log1p(math.exp(-2)) + math.log1p(math.exp(1))) / 2
     + (math.log1p(math.exp(0.5)) + math.log1p(math.exp(-3))) / 2,
     (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(3))) / 2),
])
def test_loss_values_on_known_logits(kind, d_expected, g_expected):
    loss = losses.LOSSES[kind]
    assert loss.d(REAL, FAKE).item() == pytest.approx(d_expected, rel=1e-6)
    assert loss.g(FAKE).item() == pytest.approx(g_expected, rel=1e-6)
    stats = loss.stats(REAL, FAKE)
    assert stats and all(v.dim() == 0 and not v.requires_grad for v in stats.values())


class Linear(nn.Module):
    """D(x) = w . x + b: its input gradient is w everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        return x.flatten(1) @ self.w + 0.3


def test_penalties_on_a_linear_critic():
    D = Linear([3.0, 4.0])  # ||w|| = 5
    x_real, x_fake = torch.randn(6, 2), torch.randn(6, 2)
    assert losses.gradient_penalty(D, x_real, x_fake).item() == pytest.approx((5 - 1) ** 2)
    assert losses.r1_penalty(D, x_real).item() == pytest.approx(25.0)
    # both are differentiable in D's weights (the penalty trains D): d/dw (||w|| - 1)^2 = 2 (5 - 1) w / 5
    (grad,) = torch.autograd.grad(losses.gradient_penalty(D, x_real, x_fake), D.w)
    torch.testing.assert_close(grad, torch.tensor([3.0, 4.0]) * 2 * 4 / 5)


@pytest.mark.parametrize("overrides, message", [
    (["loss.kind=wasserstein"], "needs a Lipschitz constraint on D: set loss.gp_weight=10"),
    (["loss.kind=wasserstein", "loss.clip=0.01", "loss.gp_weight=10", "model.arch=mlp"], "choose one Lipschitz"),
    (["loss.kind=wasserstein", "loss.gp_weight=10", "model.arch=dcgan"], "set model.d_norm=none"),
    (["loss.r1_gamma=1", "model.arch=dcgan"], "loss.r1_gamma penalises per-sample gradients"),
    (["loss.gp_weight=1", "train.update=simultaneous"], "needs train.update=alternating"),
    (["loss.r1_every=0"], "loss.r1_every must be at least 1"),
    (["train.ema_halflife_kimg=-1"], "train.ema_halflife_kimg must be >= 0"),
    (["model.d_norm=layer"], "model.d_norm='layer' is not one of batch, none"),
])
def test_invalid_combinations_are_refused_with_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, overrides)


def _recipe(tiny_cfg, *extra):
    cfg = tiny_cfg("model.d_dropout=0.0", *extra)
    torch.manual_seed(0)
    data = build_dataset(cfg.data)
    return cfg, data, build_recipe(cfg, data, torch.device("cpu"))


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("extra", [
    ("loss.kind=lsgan",), ("loss.kind=hinge",), ("loss.kind=wasserstein", "loss.gp_weight=10"),
    ("loss.kind=wasserstein", "loss.clip=0.05", "optim.kind=rmsprop"), ("loss.r1_gamma=10", "loss.r1_every=1"),
    ("loss.kind=hinge", "model.d_spectral_norm=true"),
])
def test_one_step_moves_the_right_player(tiny_cfg, extra):
    """With k = 2 the first call updates D only, the second D and then G; a D update never touches
    G's weights and the G update never touches D's."""
    cfg, data, recipe = _recipe(tiny_cfg, "train.n_dis=2", *extra)
    G0, D0 = _params(recipe.G), _params(recipe.D)
    stats = recipe.train_step(data.batch(torch.arange(32)))
    assert all(torch.equal(a, b) for a, b in zip(G0, _params(recipe.G)))  # G untouched
    assert any(not torch.equal(a, b) for a, b in zip(D0, _params(recipe.D)))  # D moved
    assert all(math.isfinite(float(v)) for v in stats.values()) and "loss_G" not in stats
    if cfg.loss.gp_weight:
        assert "gp" in stats
    if cfg.loss.r1_gamma:
        assert "r1" in stats
    if cfg.loss.clip:
        assert all(p.abs().max() <= cfg.loss.clip for p in recipe.D.parameters())
    D1 = _params(recipe.D)
    stats = recipe.train_step(data.batch(torch.arange(32, 64)))
    assert "loss_G" in stats and any(not torch.equal(a, b) for a, b in zip(G0, _params(recipe.G)))
    assert recipe.players["G"].updates == 1 and recipe.players["D"].updates == 2
    assert any(not torch.equal(a, b) for a, b in zip(D1, _params(recipe.D)))


def test_lazy_r1_runs_every_nth_d_update(tiny_cfg):
    _, data, recipe = _recipe(tiny_cfg, "loss.r1_gamma=1", "loss.r1_every=3")
    seen = ["r1" in recipe.train_step(data.batch(torch.arange(i * 32, i * 32 + 32))) for i in range(6)]
    assert seen == [True, False, False, True, False, False]


def test_spectral_norm_keeps_each_weight_near_unit_norm(tiny_cfg):
    _, data, recipe = _recipe(tiny_cfg, "model.arch=dcgan", "model.width=4", "model.d_norm=none",
                              "model.d_spectral_norm=true", "loss.kind=hinge")
    convs = [m for m in recipe.D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    for i in range(5):  # power iterations run with the training forwards
        recipe.train_step(data.batch(torch.arange(i * 32, i * 32 + 32)))
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.15), sigma


def test_ema_follows_its_half_life_and_is_what_samples_come_from(tiny_cfg, tmp_path):
    cfg, data, recipe = _recipe(tiny_cfg, "train.ema_halflife_kimg=0.064")  # beta = 0.5 ** (32 / 64)
    ema = recipe.players["G"].ema
    assert ema.beta == pytest.approx(0.5 ** 0.5)
    recipe.train_step(data.batch(torch.arange(32)))  # the first update copies G
    for a, b in zip(ema.module.parameters(), recipe.G.parameters()):
        assert torch.equal(a, b)
    before = _params(ema.module)
    recipe.train_step(data.batch(torch.arange(32, 64)))
    for e0, e1, g in zip(before, _params(ema.module), _params(recipe.G)):
        torch.testing.assert_close(e1, ema.beta * e0 + (1 - ema.beta) * g)
    assert recipe.generator().G is ema.module
    run_dir, _ = api.train(tiny_cfg("train.ema_halflife_kimg=0.5", "train.max_steps=5"), log=lambda s: None)
    ckpt = checkpoint.load(run_dir / "ckpt/last.pt")
    G_ema = ckpt["recipe"]["players"]["G"]["ema"]["net"]
    for source in (run_dir, run_dir / "export"):  # checkpoint and export both give the moving average
        G = load_generator(source)
        assert G.player == "G_ema"
        for k, v in G.G.state_dict().items():
            assert torch.equal(v, G_ema[k]), (source, k)


@pytest.mark.parametrize("extra", [
    pytest.param(("model.arch=dcgan", "model.width=4", "model.d_norm=none", "model.d_spectral_norm=true",
                  "loss.kind=hinge", "loss.r1_gamma=1", "loss.r1_every=2", "train.ema_halflife_kimg=0.5"),
                 marks=pytest.mark.slow),  # SN + R1 + EMA, batch-norm G; over a second
    ("loss.kind=wasserstein", "loss.gp_weight=10", "train.n_dis=3"),  # WGAN-GP with dropout in D
    ("loss.kind=wasserstein", "loss.clip=0.01", "optim.kind=rmsprop", "train.n_dis=2"),
    pytest.param(("model.arch=dcgan", "model.width=4", "train.augment=color,translation,cutout", "train.pack=2",
                  "loss.kind=lsgan"), marks=pytest.mark.slow),  # DiffAugment and packing draw from the global stream
])
def test_interrupted_and_resumed_family_run_is_bit_identical(tiny_cfg, extra):
    from test_train import assert_same_state

    _, full = api.train(tiny_cfg(*extra, "run.name=full"), log=lambda s: None)
    part_dir, part = api.train(tiny_cfg(*extra, "run.name=part", "train.max_steps=13"), log=lambda s: None)
    resumed_dir, resumed = api.train(tiny_cfg(*extra, "run.name=part"), resume="auto", log=lambda s: None)
    assert resumed.step == full.step == 32
    full_dir = Path(tiny_cfg().run.dir) / "00000-full"
    assert_same_state(checkpoint.load(full_dir / "ckpt/last.pt"), checkpoint.load(part_dir / "ckpt/last.pt"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_preset_is_valid_and_dry_runs(path, tmp_path, capsys):
    assert main(["train", str(path), "--dry-run", f"run.dir={tmp_path}", *preset_overrides(path, tmp_path)]) == 0
    assert "dry run ok" in capsys.readouterr().out


@pytest.mark.parametrize("loss", ["lsgan", "hinge", "wgan_gp"])
def test_toy_presets_of_each_loss_train(loss, tmp_path):
    cfg = validate.load(Path(__file__).resolve().parents[1] / "configs" / f"toy_ring_{loss}.yaml",
                      tiny_overrides(tmp_path, "data.toy_num_samples=2048", "model.width=32", "train.batch_size=64",
                                     "train.epochs=1", "model.z_dim=2", "data.name=ring"))
    run_dir, result = api.train(cfg, log=lambda s: None)
    assert result.step == 32 and all(math.isfinite(v) for v in result.last_stats.values())



def test_the_gradient_penalty_is_part_of_the_d_update(tiny_cfg):
    """One D update with SGD (no momentum) is exactly a step along -grad(loss_D + lambda * GP),
    computed here by hand from the same latents and the same interpolation weights."""
    from ganforge.core import latent

    cfg, data, recipe = _recipe(tiny_cfg, "loss.kind=wasserstein", "loss.gp_weight=10", "optim.kind=sgd",
                                "optim.momentum=0.0", "optim.momentum_final=0.0", "optim.lr_D=0.1", "train.n_dis=2")
    G0, D0 = copy.deepcopy(recipe.G), copy.deepcopy(recipe.D)
    z = latent.sample_z(32, 8, "normal", torch.Generator().set_state(recipe.z_rng.get_state()))
    rng = torch.get_rng_state()  # the interpolation weights come from the global stream
    x_real = data.batch(torch.arange(32))["x"]
    recipe.train_step({"x": x_real})
    torch.set_rng_state(rng)
    with torch.no_grad():
        x_fake = G0(z)
    logits = D0(torch.cat([x_real, x_fake]))
    objective = losses.d_wasserstein(logits[:32], logits[32:]) + 10 * losses.gradient_penalty(D0, x_real, x_fake)
    grads = torch.autograd.grad(objective, list(D0.parameters()))
    for p, p0, g in zip(recipe.D.parameters(), D0.parameters(), grads):
        torch.testing.assert_close(p.detach(), p0.detach() - 0.1 * g, rtol=1e-5, atol=1e-6)


def test_diff_augment_ops_keep_shape_and_gradients_and_do_what_they_say():
    from ganforge.core import augment

    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16, requires_grad=True)
    for name in augment.POLICIES:
        y = augment.diff_augment(x, [name])
        assert y.shape == x.shape
        (g,) = torch.autograd.grad(y.sum(), x)
        assert g.abs().sum() > 0, name  # differentiable: G gets gradients through it
    # translation moves content by whole pixels and shifts zeros in: an all-ones image keeps at least
    # (16 - 2) ** 2 ones and every value is 0 or 1
    ones = torch.ones(64, 1, 16, 16)
    moved = augment.translation(ones)
    assert set(moved.unique().tolist()) <= {0.0, 1.0} and (moved.sum((1, 2, 3)) >= 14 * 14).all()
    assert (moved.sum((1, 2, 3)) < 256).any()  # some samples really moved
    # translation is a shift: where a sample moved by (dy, dx), a pixel reappears dy rows lower
    img = torch.arange(256.0).view(1, 1, 16, 16).repeat(64, 1, 1, 1)
    shifted = augment.translation(img)
    inner = shifted[:, 0, 4:12, 4:12]
    diffs = inner[:, 1:, :] - inner[:, :-1, :]
    assert torch.all(diffs == 16)  # rows stay 16 apart: content is translated, not resampled
    # cutout zeroes one square of half the size (fewer pixels where it is clipped by the border)
    cut = augment.cutout(ones)
    zeros = (cut == 0).sum((1, 2, 3))
    assert zeros.max() == 64 and zeros.min() >= 16 and not (cut[cut != 0] != 1).any()
    # color: per-sample brightness / saturation / contrast, different for different samples
    c = augment.color(torch.zeros(8, 3, 4, 4) + 0.2)
    assert len(c.mean((1, 2, 3)).unique()) == 8


def test_packing_shows_d_m_samples_at_once(tiny_cfg):
    cfg, data, recipe = _recipe(tiny_cfg, "train.pack=4")
    first = next(m for m in recipe.D.modules() if isinstance(m, nn.Linear))
    assert first.in_features == 4 * 784  # m images side by side
    stats = recipe.train_step(data.batch(torch.arange(32)))
    assert all(math.isfinite(float(v)) for v in stats.values())
    _, _, conv = _recipe(tiny_cfg, "train.pack=2", "model.arch=dcgan", "model.width=4", "train.augment=translation,cutout")
    assert next(m for m in conv.D.modules() if isinstance(m, nn.Conv2d)).in_channels == 2
    conv.train_step(data.batch(torch.arange(32)))
    with pytest.raises(ConfigError, match="train.batch_size=30 is not a multiple of train.pack=4"):
        validate.load(None, ["train.pack=4", "train.batch_size=30"])
    with pytest.raises(ConfigError, match=r"train.augment='colour' is not one of.*did you mean 'color'"):
        validate.load(None, ["train.augment=colour,cutout"])
    with pytest.raises(ConfigError, match="transforms images; ring data is 2-D points"):
        validate.load(None, ["data.name=ring", "train.augment=color"])
    # under torchrun the check is per process: 2 x 6 samples cannot be packed in fours
    from ganforge.core.distributed import DistInfo

    with pytest.raises(ConfigError, match="each of the 2 processes gets 6 samples"):
        build_recipe(tiny_cfg("train.pack=4", "train.batch_size=12"), data, torch.device("cpu"), DistInfo(0, 2))


def test_lazy_r1_is_part_of_the_d_update_with_its_weight(tiny_cfg):
    """One D update with lazy R1 (gamma 4, every 3rd update) is SGD on loss_D + gamma / 2 * 3 * R1."""
    from ganforge.core import latent

    cfg, data, recipe = _recipe(tiny_cfg, "loss.r1_gamma=4", "loss.r1_every=3", "optim.kind=sgd",
                                "optim.momentum=0.0", "optim.momentum_final=0.0", "optim.lr_D=0.1", "train.n_dis=2")
    G0, D0 = copy.deepcopy(recipe.G), copy.deepcopy(recipe.D)
    z = latent.sample_z(32, 8, "normal", torch.Generator().set_state(recipe.z_rng.get_state()))
    x_real = data.batch(torch.arange(32))["x"]
    recipe.train_step({"x": x_real})
    with torch.no_grad():
        x_fake = G0(z)
    logits = D0(torch.cat([x_real, x_fake]))
    objective = losses.d_loss(logits[:32], logits[32:]) + 4 / 2 * 3 * losses.r1_penalty(D0, x_real)
    grads = torch.autograd.grad(objective, list(D0.parameters()))
    for p, p0, g in zip(recipe.D.parameters(), D0.parameters(), grads):
        torch.testing.assert_close(p.detach(), p0.detach() - 0.1 * g, rtol=1e-5, atol=1e-6)


def test_clipping_holds_in_every_update_mode(tiny_cfg):
    for update in ("alternating", "simultaneous"):
        cfg, data, recipe = _recipe(tiny_cfg, "loss.kind=wasserstein", "loss.clip=0.02", "optim.kind=rmsprop",
                                    f"train.update={update}")
        assert all(p.abs().max() <= 0.02 for p in recipe.D.parameters())  # from the first update on
        recipe.train_step(data.batch(torch.arange(32)))
        assert all(p.abs().max() <= 0.02 for p in recipe.D.parameters()), update
    with pytest.raises(ConfigError, match="train.precision=fp16: the penalty's inner gradient"):
        validate.load(None, ["loss.r1_gamma=1", "train.precision=fp16"])
