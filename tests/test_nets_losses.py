import pytest
import torch
from torch import nn

from ganforge import losses, validate
from ganforge.nets import build_D, build_G, sample_shape_for
from ganforge.nets.common import Dropout
from ganforge.nets.dcgan import base_size
from ganforge.nets.goodfellow import Maxout


def test_textbook_mlp_has_the_chapter_layer_sizes():
    cfg = validate.load(None, ["model.arch=mlp", "model.width=256", "model.z_dim=128"])
    G, D = build_G(cfg, (1, 28, 28)), build_D(cfg, (1, 28, 28))
    g_lin = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    d_lin = [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, nn.Linear)]
    assert g_lin == [(128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d_lin == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert [m.p for m in D.modules() if isinstance(m, Dropout)] == [0.3] * 3
    assert isinstance(list(G.modules())[-1], nn.Tanh)
    x = G(torch.randn(5, 128))
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert D(x).shape == (5,)


def test_goodfellow_model_matches_the_paper_code():
    cfg = validate.load(None, ["model.arch=goodfellow2014", "model.width=1200", "model.z_dim=100", "data.range=unit"])
    G, D = build_G(cfg, (1, 28, 28)), build_D(cfg, (1, 28, 28))
    g_lin = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, nn.Linear)]
    assert g_lin == [(100, 1200), (1200, 1200), (1200, 784)]
    maxouts = [m for m in D.modules() if isinstance(m, Maxout)]
    assert [(m.units, m.pieces, m.linear.in_features) for m in maxouts] == [(240, 5, 784), (240, 5, 240)]
    assert [m.p for m in D.modules() if isinstance(m, Dropout)] == [0.2, 0.5, 0.5]
    assert G.net[0].weight.abs().max() <= 0.05 and D.net[2].linear.weight.abs().max() <= 0.005
    x = G(torch.rand(3, 100))
    assert x.shape == (3, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    mean = torch.full((1, 28, 28), 0.25)
    G.init_output_bias(mean)
    torch.testing.assert_close(G.net[-2].bias, torch.full((784,), torch.logit(torch.tensor(0.25)).item()))


def test_maxout_takes_the_max_over_pieces():
    m = Maxout(2, 1, 3)
    with torch.no_grad():
        m.linear.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        m.linear.bias.zero_()
    out = m(torch.tensor([[2.0, -3.0], [-1.0, -1.0]]))
    torch.testing.assert_close(out, torch.tensor([[2.0], [2.0]]))


@pytest.mark.parametrize("res, channels", [(28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(res, channels):
    cfg = validate.load(None, ["data.name=folder", "data.root=x", f"data.resolution={res}",
                             f"data.channels={channels}", "model.arch=dcgan", "model.width=8", "model.z_dim=16"])
    shape = sample_shape_for(cfg)
    G, D = build_G(cfg, shape), build_D(cfg, shape)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, channels, res, res)
    assert D(x).shape == (4,)
    assert base_size(res)[0] in (4, 7)


def test_mlp_on_points_has_no_output_squashing():
    cfg = validate.load(None, ["data.name=ring", "model.width=8", "model.z_dim=2"])
    G = build_G(cfg, (2,))
    assert isinstance(list(G.modules())[-1], nn.Identity)
    assert G(torch.randn(7, 2)).shape == (7, 2)


def test_logit_losses_equal_sigmoid_bce():
    torch.manual_seed(0)
    real, fake = torch.randn(64) * 3, torch.randn(64) * 3
    bce = nn.BCELoss()
    expected_d = bce(torch.sigmoid(real), torch.ones(64)) + bce(torch.sigmoid(fake), torch.zeros(64))
    torch.testing.assert_close(losses.d_loss(real, fake), expected_d)
    torch.testing.assert_close(losses.g_loss("ns", fake), bce(torch.sigmoid(fake), torch.ones(64)))
    torch.testing.assert_close(losses.g_loss("minimax", fake), torch.log(1 - torch.sigmoid(fake)).mean())


def test_logit_losses_stay_finite_where_sigmoid_bce_saturates():
    fake = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(losses.d_loss(fake, fake)) and torch.isfinite(losses.g_loss("ns", fake))
    assert losses.g_loss("ns", torch.tensor([-200.0])).item() == pytest.approx(200.0)


def test_minimax_saturates_and_ns_does_not():
    # Goodfellow et al.: early on D(G(z)) ~ 0, where log(1 - D(G(z))) has a vanishing gradient.
    fake = torch.tensor([-8.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(losses.g_loss("minimax", fake), fake)
    (g_ns,) = torch.autograd.grad(losses.g_loss("ns", fake), fake)
    assert abs(g_mm.item()) < 1e-3 < abs(g_ns.item())
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        losses.g_loss("nope", fake)


def test_dropout_keeps_the_expected_fraction_and_scale():
    torch.manual_seed(0)
    d = Dropout(0.3)
    x = torch.ones(200_000)
    y = d(x)
    kept = (y > 0).float().mean().item()
    assert abs(kept - 0.7) < 0.005
    torch.testing.assert_close(y[y > 0], torch.full_like(y[y > 0], 1 / 0.7))
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
    d.eval()
    assert torch.equal(d(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_the_size_probe_draws_no_random_numbers_and_refuses_absurd_sizes():
    """build_G / build_D count parameters on the meta device first: the nets and the random stream
    must come out exactly as a direct build gives them, and a width no machine holds is refused."""
    from ganforge.core.errors import ConfigError
    from ganforge.nets import build_D, build_G
    from ganforge.nets.registry import DISCRIMINATORS, GENERATORS

    cfg = validate.load(None, ["model.arch=dcgan", "model.width=8", "model.z_dim=8"])
    torch.manual_seed(0)
    G, D = build_G(cfg, (1, 28, 28)), build_D(cfg, (1, 28, 28))
    after = torch.rand(1)
    torch.manual_seed(0)
    G2 = GENERATORS["dcgan"].build(z_dim=8, c_dim=0, sample_shape=(1, 28, 28), width=8, out="tanh")
    D2 = DISCRIMINATORS["dcgan"].build(c_dim=0, sample_shape=(1, 28, 28), width=8, dropout=cfg.model.d_dropout,
                                       norm=cfg.model.d_norm, cond=cfg.model.conditional)
    assert torch.equal(after, torch.rand(1))
    for a, b in ((G, G2), (D, D2)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    for width in ("1000000", "10000000000"):
        with pytest.raises(ConfigError, match=r"model.width="):
            build_G(validate.load(None, ["model.arch=mlp", f"model.width={width}"]), (1, 28, 28))


def test_a_net_builder_gets_only_the_arguments_it_declares():
    from ganforge.nets.registry import DISCRIMINATORS, GENERATORS, NetEntry

    assert GENERATORS["stylegan"].takes == {"z_dim", "c_dim", "sample_shape", "width", "out", "code_dim"}
    assert "dropout" in DISCRIMINATORS["mlp"].takes and "dropout" not in DISCRIMINATORS["dcgan"].takes
    seen = {}
    entry = NetEntry("probe", lambda *, width: seen.update(width=width) or torch.nn.Identity(), lambda s, c: None)
    entry.build(width=3, z_dim=8, dropout=0.5)  # the config's other arguments are not forced on it
    assert seen == {"width": 3}
