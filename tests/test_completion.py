"""Completion and restoration models: a U-Net told the holes, SRGAN, inpainting through any trained
generator (Yeh et al. 2017) and `ganforge restore`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_overrides
from ganforge import api, validate
from ganforge.cli import main
from ganforge.core.errors import ConfigError
from ganforge.data import build_dataset
from ganforge.explore.inpaint import context_weights, inpaint, poisson_blend
from ganforge.nets.srgan import SRResNet
from ganforge.nets.translation import MaskInput

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _train(tmp_path, *extra):
    return api.train(validate.load(None, tiny_overrides(tmp_path, "train.batch_size=8", "log.ckpt_every_steps=3",
                                                        "data.resolution=28", *extra)), log=lambda s: None)[0]


def _pix2pix(tmp_path, degrade, *extra):
    holes = ("model.mask_input=true",) if degrade in ("box", "strokes", "missing") else ()
    return _train(tmp_path, "train.recipe=pix2pix", "model.G=unet", "model.D=patchgan", "model.width=4",
                  f"data.degrade={degrade}", "train.max_steps=4", *holes, *extra)


def _srgan(tmp_path, *extra):
    return _train(tmp_path, "train.recipe=srgan", "model.arch=srresnet", "model.D=srgan", "model.width=4",
                  "data.degrade=down=4", "loss.adv_weight=0.001", *extra)


@pytest.fixture(scope="module")
def dcgan(tmp_path_factory):
    """A tiny trained DCGAN (28 px digits): a latent model with a D."""
    return _train(tmp_path_factory.mktemp("dcgan"), "model.arch=dcgan", "model.width=8", "train.max_steps=6")


def _folder(root, n=3, size=28, bad=True):
    root.mkdir(parents=True)
    g = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(g.integers(0, 255, (size, size), dtype=np.uint8)).save(root / f"im{i}.png")
    if bad:
        (root / "broken.png").write_bytes(b"not an image")
    return root


def _mask(path, box=(8, 8, 20, 20), size=28):
    m = np.zeros((size, size), np.uint8)
    m[box[1]:box[3], box[0]:box[2]] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(m).save(path)
    return path


# --- nets and recipes ------------------------------------------------------------------------------

@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_a_completion_unet_is_told_the_holes_and_other_degradations_are_not(tmp_path):
    holes = api.load_generator(_pix2pix(tmp_path / "h", "box"))
    assert isinstance(holes.G, MaskInput) and holes.G.net.down[0][0].in_channels == 2  # image + mask
    blur = api.load_generator(_pix2pix(tmp_path / "b", "blur"))
    assert not isinstance(blur.G, MaskInput)
    plain = api.load_generator(_train(tmp_path / "p", "train.recipe=pix2pix", "model.G=unet", "model.D=patchgan",
                                      "model.width=4", "data.degrade=box", "train.max_steps=1"))
    assert not isinstance(plain.G, MaskInput)  # model.mask_input off: pix2pix as runs saved before the key
    with pytest.raises(ConfigError, match="model.mask_input=true gives G the mask"):
        _pix2pix(tmp_path / "x", "blur", "model.mask_input=true")
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    mask = torch.zeros(2, 1, 28, 28)
    mask[:, :, 4:12, 4:12] = 1
    out = holes({"a": x * (1 - mask), "mask": mask})
    assert torch.equal(out[mask.expand_as(x) == 0], x[mask.expand_as(x) == 0])  # observed pixels kept


def test_srresnet_works_at_the_low_resolution_and_upsamples_by_pixel_shuffle():
    G = SRResNet(1, 4, width=8, n_blocks=2, out_act="tanh").eval()
    assert sum(isinstance(m, torch.nn.PixelShuffle) for m in G.modules()) == 2
    low = torch.rand(3, 1, 7, 7)
    a = low.repeat_interleave(4, 2).repeat_interleave(4, 3)  # what data.degrade=down=4 gives
    seen = []
    G.head.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    assert G(a).shape == (3, 1, 28, 28)
    assert torch.allclose(seen[0], low, atol=1e-6)  # the trunk sees the low-resolution image exactly


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_srgan_trains_with_its_content_loss_and_resumes_exactly(tmp_path):
    straight = _srgan(tmp_path / "a", "train.max_steps=6")
    rows = [json.loads(line) for line in (straight / "stats.jsonl").read_text().splitlines()]
    assert {"MSE", "content", "G_adv", "loss_D"} <= set(rows[-1]) and rows[-1]["content"] > 0
    _srgan(tmp_path / "b", "train.max_steps=3")
    resumed = api.train(validate.load(None, tiny_overrides(
        tmp_path / "b", "train.batch_size=8", "log.ckpt_every_steps=3", "data.resolution=28", "train.recipe=srgan",
        "model.arch=srresnet", "model.D=srgan", "model.width=4", "data.degrade=down=4", "loss.adv_weight=0.001",
        "train.max_steps=6")), resume="auto", log=lambda s: None)[0]
    a = torch.load(straight / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    b = torch.load(resumed / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    ablation = _srgan(tmp_path / "c", "train.max_steps=2", "loss.adv_weight=0", "loss.content_weight=0")
    rows = [json.loads(line) for line in (ablation / "stats.jsonl").read_text().splitlines()]
    assert "loss_D" not in rows[-1] and rows[-1]["content"] == 0  # SRResNet-MSE: G alone


@pytest.mark.parametrize("extra, message", [
    (("data.degrade=blur",), "set data.degrade=down=4 or down=2"),
    (("data.degrade=down=3",), "down=2 or 4|2 or 4"),
    (("model.D=dcgan",), "model.G=srresnet, model.D=srgan"),
    (("loss.kind=wasserstein",), "loss.kind=wasserstein: srgan uses ns"),
])
def test_srgan_refuses_what_it_cannot_do(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, tiny_overrides(tmp_path, "train.recipe=srgan", "model.arch=srresnet", "model.D=srgan",
                                           "data.resolution=28", "data.degrade=down=4", *extra))


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_the_content_loss_needs_a_feature_net_or_says_how_to_go_without(tmp_path):
    from ganforge.metrics.featurenet import train_on_folder

    root = tmp_path / "imgs"  # a folder: no feature net is shipped for it
    for k, kind in enumerate("ab"):
        (root / kind).mkdir(parents=True)
        for i in range(8):  # a tenth set aside as held-out images: 14 left to train on
            Image.fromarray(np.full((32, 32), 100 * k + 10 * i, np.uint8)).save(root / kind / f"{i}.png")
    folder = ("data.name=folder", f"data.root={root}", "data.resolution=32", "train.max_steps=1")
    with pytest.raises(ConfigError, match="loss.content_weight=0"):
        _srgan(tmp_path, *folder)
    run = _srgan(tmp_path / "ok", *folder, "loss.content_weight=0")
    assert (run / "ckpt" / "last.pt").is_file()
    net = train_on_folder(root, tmp_path / "nets", 32, 1, epochs=1, log=lambda s: None)
    run = _srgan(tmp_path / "net", *folder, f"eval.feature_net={net}")
    assert "content" in json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    for f in (net, net.with_suffix(".safetensors")):
        f.unlink()  # the model moved to a machine without its feature net: it still loads and restores
    assert api.load_generator(run).step == 1


# --- inpainting through a trained generator --------------------------------------------------------

def test_context_weights_are_the_share_of_missing_neighbours_of_known_pixels():
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., 8:12, 8:12] = 1
    W = context_weights(mask, window=7)
    assert W[mask == 1].eq(0).all()  # missing pixels weigh nothing
    assert W[0, 0, 0, 0] == 0 and W[0, 0, 7, 7] > W[0, 0, 5, 5] > 0  # far: 0; next to the hole: most
    assert torch.isclose(W[0, 0, 7, 10], torch.tensor(12 / 49))  # 3 rows x 4 columns of the 7 x 7 are missing


def test_poisson_blending_keeps_known_pixels_and_follows_gs_gradients():
    known = torch.full((1, 1, 16, 16), 0.5)
    generated = torch.full((1, 1, 16, 16), -0.3)  # the right shape, the wrong brightness
    generated[..., 6:10, 6:10] += torch.linspace(0, 0.2, 4)  # a ramp inside the hole
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 5:11, 5:11] = 1
    out = poisson_blend(known * (1 - mask), generated, mask)
    assert torch.equal(out[mask == 0], known[mask == 0])
    inside = out[0, 0, 5:11, 5:11]
    assert (inside - 0.5).abs().mean() < (generated[0, 0, 5:11, 5:11] - 0.5).abs().mean()  # brightness matched
    assert inside[3, 4] - inside[3, 1] > 0.05  # the ramp survives


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_inpainting_through_a_gan_fills_only_the_hole_and_uses_ds_prior(dcgan, tmp_path):
    G, critic, _ = api._load(dcgan, critic=True)
    assert critic is not None
    x = build_dataset(G.cfg.data).samples(4)
    mask = torch.zeros(4, 1, 28, 28)
    mask[..., 8:20, 8:20] = 1
    result = inpaint(G, x, mask, critic, steps=20)
    keep = mask.expand_as(x) == 0
    assert torch.equal(result.x[keep], x[keep]) and result.prior_used
    assert not torch.equal(result.x[~keep], (x * (1 - mask))[~keep])  # the hole is filled
    assert result.projection.history[-1] < result.projection.history[0]
    again = inpaint(G, x, mask, critic, steps=20)
    assert torch.equal(again.x, result.x)  # seeded: the same fill every time
    pasted = inpaint(G, x, mask, None, steps=20, blend="paste")
    assert torch.allclose(pasted.x[~keep], pasted.generated[~keep].clamp(-1, 1)) and not pasted.prior_used


# --- ganforge restore --------------------------------------------------------------------------------

@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_restore_through_a_gan_with_a_folder_of_masks(dcgan, tmp_path):
    inputs = _folder(tmp_path / "in")
    for i in range(2):  # im2 has no mask: named and skipped
        _mask(tmp_path / "masks" / f"im{i}.png")
    out, records = api.restore(dcgan, inputs, tmp_path / "out", tmp_path / "masks", steps=5)
    assert [r["input"].split("/")[-1] for r in records] == ["im0.png", "im1.png"]
    assert "D's prior" in records[0]["method"] and records[0]["missing_share"] == round(144 / 784, 4)
    restored = np.asarray(Image.open(out / "im0.png"))
    given = np.asarray(Image.open(inputs / "im0.png"))
    hole = np.asarray(Image.open(tmp_path / "masks" / "im0.png")) > 127
    assert np.array_equal(restored[~hole], given[~hole])  # known pixels exactly as they were
    assert Image.open(out / "im0.strip.png").size == (56, 28)
    assert json.loads((out / "restorations.json").read_text()) == records
    export = api.export(dcgan, tmp_path / "export")  # G alone: the search goes on without D's prior, and says so
    _, records = api.restore(export, inputs / "im0.png", tmp_path / "out2", tmp_path / "masks" / "im0.png", steps=2)
    assert "no prior: the source holds G alone" in records[0]["method"]


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_restore_with_completion_models(tmp_path):
    inputs = _folder(tmp_path / "in", bad=False)
    holes = _pix2pix(tmp_path / "h", "box")
    with pytest.raises(ConfigError, match="give --mask"):
        api.restore(holes, inputs, tmp_path / "o1")
    out, records = api.restore(holes, inputs, tmp_path / "o1", _mask(tmp_path / "one.png"))  # one mask for all
    assert len(records) == 3 and records[0]["method"] == "pix2pix completion model"
    denoise = _pix2pix(tmp_path / "n", "noise")
    _, records = api.restore(denoise, inputs / "im0.png", tmp_path / "o2")
    assert records[0]["missing_share"] is None
    Image.open(inputs / "im1.png").save(inputs / "im0.jpg")  # im0.jpg beside im0.png: two outputs, none lost
    out, records = api.restore(denoise, inputs, tmp_path / "o4")
    assert len({r["output"] for r in records}) == len(records) == 4
    assert all(Path(r["output"]).is_file() and Path(r["strip"]).is_file() for r in records)
    sr = _srgan(tmp_path / "s", "train.max_steps=1")
    small = _folder(tmp_path / "small", n=1, size=7, bad=False)
    out, _ = api.restore(sr, small, tmp_path / "o3")
    assert Image.open(out / "im0.png").size == (28, 28)  # x4


@pytest.mark.parametrize("args, message", [
    (["--mask", "MISSING"], "--mask MISSING: no such file or folder"),
    (["--mask", "BAD"], "not a readable image"),
    (["--mask", "EMPTY"], "holds no mask images"),
    ([], "give --mask"),
    (["--mask", "M", "--steps", "0"], "--steps 0: at least 1"),
    (["--mask", "M", "--prior-weight", "nan"], "--prior-weight nan"),
    (["--mask", "M", "--class", "3"], "unconditional"),
    (["--mask", "M", "--seed", "-1"], "--seed -1"),
    (["--mask", "IN"], "overlap"),
    (["--mask", "OUT"], "overlap"),
])
def test_restore_refuses_bad_input_with_one_error_line(dcgan, tmp_path, args, message, capsys):
    inputs = _folder(tmp_path / "in", n=1)
    (tmp_path / "BAD").write_bytes(b"nope")
    (tmp_path / "EMPTY").mkdir()
    _mask(tmp_path / "M.png")
    _mask(tmp_path / "out" / "m.png")
    names = {"MISSING": "MISSING", "BAD": "BAD", "EMPTY": "EMPTY", "M": "M.png", "IN": "in", "OUT": "out"}
    args = [str(tmp_path / names[a]) if a in names else a for a in args]
    code = main(["restore", str(dcgan), "--input", str(inputs), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error:") and len(err.strip().splitlines()) == 1, err
    assert message.replace("MISSING", str(tmp_path / "MISSING")) in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["m.png"]  # nothing written


def test_restore_refuses_a_folder_of_unreadable_files(dcgan, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    _mask(tmp_path / "m.png")
    with pytest.raises(ConfigError, match="no image could be restored"):
        api.restore(dcgan, bad, tmp_path / "out", tmp_path / "m.png", steps=1)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
@pytest.mark.parametrize("extra", [
    ("model.arch=dcgan", "model.width=8", "model.conditional=cgan"),  # the class searched, D given it
    ("model.arch=stylegan", "model.width=4", "model.d_norm=none", "model.z_dim=16"),  # in w, with noise maps
])
def test_restore_through_conditional_and_style_based_gans(tmp_path, extra):
    run = _train(tmp_path, *extra, "train.max_steps=2")
    inputs = _folder(tmp_path / "in", n=2, bad=False)
    _, records = api.restore(run, inputs, tmp_path / "out", _mask(tmp_path / "m.png"), steps=3)
    assert len(records) == 2 and "D's prior" in records[0]["method"]
    given, restored = (np.asarray(Image.open(p)) for p in (inputs / "im1.png", tmp_path / "out" / "im1.png"))
    hole = np.asarray(Image.open(tmp_path / "m.png")) > 127
    assert np.array_equal(restored[~hole], given[~hole])


def test_a_restoration_run_ends_with_its_distance_and_the_held_out_measure(tmp_path, capsys):
    args = tiny_overrides(tmp_path, "train.recipe=pix2pix", "model.G=unet", "model.D=patchgan", "model.width=4",
                          "data.resolution=28", "data.degrade=noise", "train.batch_size=8", "train.max_steps=2")
    assert main(["train", str(CONFIGS / "fashion_denoise_pix2pix.yaml"), *args]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("reached:      L1 to the targets ") and "python -m bench.restoration --run" in last, last


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_restore_lines_masks_up_with_their_images_and_refuses_a_mask_it_cannot_use(dcgan, tmp_path):
    wide = tmp_path / "in" / "wide.png"
    wide.parent.mkdir()
    g = np.random.default_rng(1)
    Image.fromarray(g.integers(0, 255, (28, 56), dtype=np.uint8)).save(wide)  # 56 x 28: cropped to its centre
    m = np.zeros((28, 56), np.uint8)
    m[:, 28:] = 255  # the right half of the photo: the right half of the centre crop
    Image.fromarray(m).save(tmp_path / "m.png")
    out, _ = api.restore(dcgan, wide, tmp_path / "out", tmp_path / "m.png", steps=2)
    restored = np.asarray(Image.open(out / "wide.png"))
    crop = np.asarray(Image.open(wide))[:, 14:42]
    assert np.array_equal(restored[:, :14], crop[:, :14])  # the kept half exactly as given
    denoise = _pix2pix(tmp_path / "n", "noise")
    with pytest.raises(ConfigError, match="restores every pixel"):
        api.restore(denoise, wide, tmp_path / "o2", tmp_path / "m.png")


def test_ds_prior_is_read_only_from_a_probability(tmp_path):
    run = _train(tmp_path, "model.arch=dcgan", "model.width=8", "loss.kind=hinge", "train.max_steps=1")
    _, critic, why = api._load(run, critic=True)
    assert critic is None and "loss.kind=hinge" in why


def test_gain_nets_follow_the_variant_of_the_authors_code():
    from ganforge.nets.gain import GAINGenerator

    tabular, mnist = GAINGenerator((1, 28, 28), 64), GAINGenerator((1, 28, 28), 64, "mnist")
    assert tabular.net[0][2].out_features == 64 and tabular.noise == 0.01  # gain.py, and runs saved before the key
    assert mnist.net[0][2].out_features == 32 and mnist.noise == 1.0  # MNST_Code_Example.py
