"""Degradations as data (data.degrade): every kind deterministic per index and per training step,
of the right shapes, with its mask respected; and a paired model training on the pairs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_overrides
from ganforge import api, validate
from ganforge.core.errors import ConfigError
from ganforge.data import build_dataset
from ganforge.data.degrade import DEGRADATIONS, Degrader, check, motion_kernel, parameter

SPECS = ["box", "box=0.5", "strokes", "strokes=2", "missing", "missing=0.2", "blur", "blur=3", "motion", "motion=12",
         "noise", "noise=0.05", "jpeg", "jpeg=50", "down", "down=2"]


def _images(n=6, size=32, channels=1) -> torch.Tensor:
    """Smooth images with some structure (gradients and a bright square), uint8 [n, C, size, size]."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    out = []
    for i in range(n):
        base = (xx * (3 + i) + yy * 5) % 200 + 20
        base[8 + i:16 + i, 8:16] = 250
        out.append(base[None].repeat(channels, 1, 1) + torch.randint(0, 5, (channels, size, size), generator=g))
    return out and torch.stack(out).clamp(0, 255).to(torch.uint8)


def _degrade(spec, images, idx=None, step=None, seed=0):
    d = Degrader(spec, parameter(spec), seed)
    return d(images, torch.arange(len(images)) if idx is None else idx, step)


def test_every_registered_degradation_is_covered_here():
    assert {s.split("=")[0] for s in SPECS} | {"masks"} == set(DEGRADATIONS)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("channels", [1, 3])
def test_a_degradation_is_the_same_for_the_same_index_and_step_and_respects_its_mask(spec, channels):
    x = _images(channels=channels)
    a, mask = _degrade(spec, x)
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert mask.shape == (len(x), 1, *x.shape[2:]) and set(mask.unique().tolist()) <= {0, 1}
    again, mask_again = _degrade(spec, x)
    assert torch.equal(a, again) and torch.equal(mask, mask_again)  # held out: the same every time
    assert not torch.equal(a, x)  # it degrades
    if DEGRADATIONS[spec.split("=")[0]].inpainting:
        observed = mask.expand_as(x) == 0
        assert torch.equal(a[observed], x[observed])  # observed pixels untouched
        assert (a[~observed] == 0).all() and 0 < mask.float().mean() < 1
    else:
        assert (mask == 1).all()
    # training draws: a function of (step, index), different from step to step
    s1, m1 = _degrade(spec, x, step=5)
    s1b, _ = _degrade(spec, x, step=5)
    s2, m2 = _degrade(spec, x, step=6)
    assert torch.equal(s1, s1b)
    if spec.split("=")[0] not in ("blur", "down", "jpeg"):  # the deterministic ones draw nothing
        assert not torch.equal(s1, s2)
    # another index, another draw; the same index in another batch, the same draw
    other, _ = _degrade(spec, x[[3, 0]], idx=torch.tensor([3, 0]))
    assert torch.equal(other[1], a[0])


def test_the_parameters_mean_what_they_say():
    x = torch.full((64, 1, 32, 32), 128, dtype=torch.uint8)
    _, mask = _degrade("box=0.25", x)
    assert mask.float().mean(dim=(1, 2, 3)).eq(0.25).all()  # 16 x 16 of 32 x 32
    _, mask = _degrade("missing=0.3", x)
    assert abs(mask.float().mean().item() - 0.3) < 0.01
    noisy, _ = _degrade("noise=0.1", x)
    assert abs(noisy.float().div(255).std().item() - 0.1) < 0.01
    small, _ = _degrade("down=4", _images())
    blocks = small.float().unfold(2, 4, 4).unfold(3, 4, 4)  # every 4 x 4 block one value
    assert (blocks.amax((-1, -2)) == blocks.amin((-1, -2))).all()
    flat, _ = _degrade("blur=2", x)
    assert torch.equal(flat, x)  # a blur of a flat image is the image
    for length in (4.0, 9.0, 20.0):
        k = motion_kernel(length, torch.Generator().manual_seed(1))
        assert k.min() >= 0 and abs(k.sum().item() - 1) < 1e-5
        assert k.shape[0] % 2 == 1 and length <= k.shape[0] <= length + 2
        assert (k > 0).sum() > 2  # a path, not a point


def test_a_users_masks_are_used_by_index_for_held_out_images(tmp_path):
    for i, (top, left) in enumerate([(0, 0), (8, 8)]):
        m = np.zeros((16, 16), dtype=np.uint8)
        m[top:top + 4, left:left + 4] = 255
        Image.fromarray(m).save(tmp_path / f"m{i}.png")
    x = _images(4, size=32)
    a, mask = _degrade(f"masks={tmp_path}", x)
    assert mask[0, 0, 0:8, 0:8].all() and mask[0].sum() == 64  # upscaled x2 to the images' size
    assert mask[1, 0, 16:24, 16:24].all() and torch.equal(mask[2], mask[0]) and torch.equal(mask[3], mask[1])


@pytest.mark.parametrize("spec, message", [
    ("boxx", "did you mean 'box'"), ("box=2", "between 0 and 1"), ("box=abc", "not a number"),
    ("jpeg=10.5", "whole number"), ("down=3", "2 or 4"), ("noise=inf", "noise's standard deviation"),
    ("masks", "give a folder of mask images"), ("masks=/nonexistent-folder", "give a folder"),
])
def test_bad_degradations_are_refused_by_name(spec, message):
    assert message in check(spec, 32)


def test_data_degrade_needs_a_paired_recipe_and_images_of_one_domain(tmp_path):
    with pytest.raises(ConfigError, match="data.degrade: not part of the gan recipe"):
        validate.load(None, tiny_overrides(tmp_path, "data.degrade=box"))
    with pytest.raises(ConfigError, match="two-domain translation data"):
        validate.load(None, ["train.recipe=pix2pix", "model.G=unet", "model.D=patchgan", "data.name=fashion-edges",
                             "data.resolution=32", "data.degrade=box"])
    with pytest.raises(ConfigError, match="or data.degrade="):
        validate.load(None, ["train.recipe=pix2pix", "model.G=unet", "model.D=patchgan", "data.name=mnist-embedded"])


def _pix2pix(tmp_path, *extra):
    return validate.load(None, tiny_overrides(
        tmp_path, "train.recipe=pix2pix", "model.G=unet", "model.D=patchgan", "model.width=4", "data.resolution=28",
        "data.degrade=missing=0.5", "train.batch_size=8", "log.ckpt_every_steps=3", *extra))


def test_held_out_pairs_and_training_batches_of_a_degraded_dataset(tmp_path):
    cfg = _pix2pix(tmp_path)
    data = build_dataset(cfg.data, seed=0)
    held = data.extra["held_out"]
    assert held["a"].shape == held["x"].shape and held["mask"].shape[1] == 1
    # the embedded subset has no test split: a tenth of it is set aside, left out of training
    assert len(held["x"]) == 51 and len(data.x) == 512 - 51 and "left out of training" in held["from"]
    trained = {bytes(x.numpy()) for x in data.x}
    assert not any(bytes(x.numpy()) in trained for x in held["x"])
    again = build_dataset(cfg.data, seed=0).extra["held_out"]
    assert torch.equal(again["a"], held["a"])
    batch = data.batch(torch.arange(8), step=3)
    assert {"x", "a", "mask"} <= set(batch) and batch["mask"].dtype == torch.float32
    restored = torch.where(batch["mask"].bool().expand_as(batch["x"]), batch["x"], batch["a"])
    assert torch.equal(restored, batch["x"])  # a differs from x only where the mask says
    other = build_dataset(dataclasses.replace(cfg.data, degrade="blur"), seed=0)
    assert other.batch(torch.arange(2))["mask"].eq(1).all()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_pix2pix_learns_to_fill_holes_and_resumes_exactly(tmp_path):
    straight, result = api.train(_pix2pix(tmp_path / "a", "train.max_steps=6"), log=lambda s: None)
    first, _ = api.train(_pix2pix(tmp_path / "b", "train.max_steps=3"), log=lambda s: None)
    resumed, _ = api.train(_pix2pix(tmp_path / "b", "train.max_steps=6"), resume="auto", log=lambda s: None)
    assert resumed == first
    a = torch.load(straight / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    b = torch.load(resumed / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)  # the degradations drawn per step, not per process
    assert result.step == 6


def _gain(tmp_path, *extra):
    return validate.load(None, tiny_overrides(
        tmp_path, "train.recipe=gain", "model.arch=gain", "model.width=64", "data.range=unit",
        "data.degrade=missing=0.5", "train.batch_size=32", "optim.lr_G=1e-3", "optim.lr_D=1e-3",
        "optim.betas=[0.9,0.999]", "log.ckpt_every_steps=20", "log.stats_every_steps=10", "train.epochs=10", *extra))


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_gain_learns_to_impute_and_resumes_exactly(tmp_path):
    import json

    run, result = api.train(_gain(tmp_path / "a", "train.max_steps=60"), log=lambda s: None)
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert rows[-1]["RMSE_missing"] < 0.9 * rows[0]["RMSE_missing"]  # the missing pixels come closer
    assert rows[-1]["MSE_observed"] < rows[0]["MSE_observed"]
    G = api.load_generator(run)
    held = build_dataset(_gain(tmp_path / "a").data).extra["held_out"]
    a, mask = held["a"][:16].float() / 255, held["mask"][:16].float()
    out = G({"a": a, "mask": mask})
    observed = mask.expand_as(a) == 0
    assert torch.equal(out[observed], a[observed])  # observed pixels pasted back unchanged
    assert torch.equal(out, G({"a": a, "mask": mask}))  # eval mode: the same completion every time
    first, _ = api.train(_gain(tmp_path / "b", "train.max_steps=20"), log=lambda s: None)
    resumed, _ = api.train(_gain(tmp_path / "b", "train.max_steps=60"), resume="auto", log=lambda s: None)
    a_net = torch.load(run / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    b_net = torch.load(resumed / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]["G"]["net"]
    assert all(torch.equal(a_net[k], b_net[k]) for k in a_net)


@pytest.mark.parametrize("extra, message", [
    (("data.degrade=",), "set data.degrade to one of box, strokes, missing, masks"),
    (("data.degrade=blur",), "(not blur)"),
    (("data.range=signed",), "set data.range=unit"),
    (("model.arch=mlp",), "model.arch=gain"),
    (("model.width=4",), "at least 8 units"),
])
def test_gain_refuses_what_it_cannot_do(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _gain(tmp_path, *extra)


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_a_gain_model_exports_to_onnx_with_its_mask(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run, _ = api.train(_gain(tmp_path, "train.max_steps=4"), log=lambda s: None)
    out = api.export(run, tmp_path / "gain.onnx", fmt="onnx")
    G = api.load_generator(run)
    held = build_dataset(_gain(tmp_path).data).extra["held_out"]
    a, mask = held["a"][:5].float() / 255, held["mask"][:5].float()  # a batch size the export never saw
    session = ort.InferenceSession(str(out))
    assert [i.name for i in session.get_inputs()] == ["a", "mask"]
    got = session.run(None, {"a": a.numpy(), "mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, G({"a": a, "mask": mask}).numpy(), atol=1e-5, rtol=0)


def test_per_image_holes_stay_with_their_image_for_the_whole_run():
    x = _images()
    d = Degrader("missing=0.5", 0.5, seed=0, per_image=True)
    a5, m5 = d(x, torch.arange(6), step=5)
    a9, m9 = d(x[[2, 0]], torch.tensor([2, 0]), step=9)
    assert torch.equal(m9[0], m5[2]) and torch.equal(m9[1], m5[0])  # the same holes at any step, in any batch
    held, _ = Degrader("missing=0.5", 0.5, seed=0)(x, torch.arange(6), None)
    assert not torch.equal(held, a5)  # the held-out images' holes are drawn apart from the training images'


def test_strokes_wider_than_the_image_are_refused():
    assert "wider than the image" in check("strokes=40", 32)
    assert "at least 1" in check("strokes=1e300", 32)


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_restoration_models_pass_health_checks_and_refuse_metrics_and_translate_without_a_mask(tmp_path):
    """An image-to-image model has no samples of its own: the health checks count no modes, the
    metrics are refused with the reason, and a GAIN model asked to translate without a mask says so."""
    run, _ = api.train(_pix2pix(tmp_path / "p", "data.degrade=box", "health.every_steps=2", "train.max_steps=4"),
                       log=lambda s: None)
    records = api.evaluate(run, ["fid"], num_samples=20)
    assert "draws no samples of its own" in records[0]["refused"]
    gain, _ = api.train(_gain(tmp_path / "g", "health.every_steps=2", "train.max_steps=4"), log=lambda s: None)
    with pytest.raises(ConfigError, match="needs their mask"):
        api.load_generator(gain).translate(torch.zeros(2, 1, 28, 28))


def test_a_saved_config_loads_where_its_mask_folder_is_not(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    Image.fromarray(np.full((8, 8), 255, dtype=np.uint8)).save(masks / "m.png")
    run, _ = api.train(_gain(tmp_path, f"data.degrade=masks={masks}", "train.max_steps=2"), log=lambda s: None)
    for p in masks.iterdir():
        p.unlink()
    masks.rmdir()  # the run moved to another machine
    assert api.load_generator(run).step == 2


def test_an_image_to_image_net_too_large_for_memory_is_refused_with_its_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model.width=1000000: G .*lower model.width"):
        api.train(_pix2pix(tmp_path, "model.width=1000000", "train.max_steps=1"), log=lambda s: None)
