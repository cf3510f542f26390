"""Image-to-image translation: the nets' shapes (square and not), each loss on known inputs, the
image pool, resume equivalence of the CycleGAN recipe, the paired / unpaired loaders and their
messages, and `ganforge translate` on a folder with a bad file in it."""

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api, checkpoint, validate
from ganforge.cli import main
from ganforge.data import build_dataset
from ganforge.data.translation import edge_map
from ganforge.core.errors import ConfigError, DataError
from ganforge.api import load_generator
from ganforge.nets.translation import PatchDiscriminator, ResnetGenerator, UNetGenerator
from ganforge.recipes.cyclegan import ImagePool
from ganforge.recipes.translation import unet_depth
from test_train import assert_same_state


# --- nets ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(32, 32), (32, 48), (16, 24)])
def test_generators_keep_the_size_and_patch_d_gives_a_map(size):
    H, W = size
    a = torch.randn(2, 1, H, W)
    unet = UNetGenerator(1, 3, width=8, depth=unet_depth(H, W))
    assert unet(a).shape == (2, 3, H, W) and unet(a).abs().max() <= 1  # tanh
    resnet = ResnetGenerator(1, 1, width=8, n_blocks=2)
    assert resnet(a).shape == (2, 1, H, W)
    D = PatchDiscriminator(2, width=8, n_layers=2)
    assert D(torch.randn(2, 2, H, W)).shape == (2, 1, H // 4 - 2, W // 4 - 2)


def test_unet_depth_follows_both_sides_and_its_skips_carry_the_input():
    assert unet_depth(32, 32) == 5 and unet_depth(32, 48) == 4 and unet_depth(256, 256) == 8 and unet_depth(30, 30) == 1
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, width=4, depth=3, dropout=0).eval()
    a = torch.randn(1, 1, 16, 16, requires_grad=True)
    G(a)[0, 0, 3, 3].backward()
    # the output pixel sees its own input neighbourhood through the outermost skip
    assert a.grad[0, 0, 2:5, 2:5].abs().sum() > 0


# --- data --------------------------------------------------------------------------------------------

def write_images(folder, names, size=(16, 16), seed=0, mode="L"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        shape = (size[0], size[1]) if mode == "L" else (size[0], size[1], 3)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / name)


def paired_root(tmp_path, n=12, size=(16, 16)):
    root = tmp_path / "pairs"
    names = [f"{i:02d}.png" for i in range(n)]
    write_images(root / "A", names, size, seed=1)
    write_images(root / "B", names, size, seed=2)
    return root


def unpaired_root(tmp_path, n_a=10, n_b=7):
    root = tmp_path / "horse2zebra"
    write_images(root / "trainA", [f"a{i}.png" for i in range(n_a)], seed=3)
    write_images(root / "trainB", [f"b{i}.png" for i in range(n_b)], seed=4)
    return root


def data_cfg(*overrides):
    """The data config of a translation config (the recipe follows the data's pairing)."""
    recipe = ["train.recipe=cyclegan", "model.arch=resnet"] if "data.name=unpaired-folder" in overrides else \
        ["train.recipe=pix2pix", "model.arch=unet"]
    return validate.load(None, [*recipe, "model.D=patchgan", *overrides]).data


def test_paired_folder_matches_files_by_name_and_warns_about_the_rest(tmp_path):
    root = paired_root(tmp_path)
    (root / "A" / "lonely.png").write_bytes((root / "A" / "00.png").read_bytes())
    (root / "B" / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning) as seen:
        data = build_dataset(data_cfg("data.name=paired-folder", f"data.root={root}", "data.resolution=16"))
    text = " ".join(str(w.message) for w in seen)
    assert "without a partner of the same name in B/: lonely" in text and "broken.png" in text
    assert len(data) == 12 and data.a.shape == data.x.shape == (12, 1, 16, 16)
    first_a = np.asarray(Image.open(root / "A" / "00.png"))
    assert np.array_equal(data.a[0, 0].numpy(), first_a)  # a[i] is A/<name>, x[i] is B/<name>
    assert np.array_equal(data.x[0, 0].numpy(), np.asarray(Image.open(root / "B" / "00.png")))
    batch = data.batch(torch.tensor([0, 1]))
    assert set(batch) == {"a", "x"} and batch["a"].min() >= -1 and batch["a"].max() <= 1


def test_unpaired_folder_repeats_the_smaller_domain(tmp_path):
    data = build_dataset(data_cfg("data.name=unpaired-folder", f"data.root={unpaired_root(tmp_path)}",
                                  "data.resolution=16"))
    assert len(data) == 10 and len(data.a) == len(data.x) == 10
    assert len({bytes(x.numpy()) for x in data.x}) == 7  # all 7 B images, 3 of them twice


@pytest.mark.parametrize("make, overrides, message", [
    (lambda t: t / "missing", ["data.name=paired-folder"], "no such folder"),
    (lambda t: (t / "p" / "A").mkdir(parents=True) or t / "p", ["data.name=paired-folder"], "no B/ folder"),
    (lambda t: unpaired_root(t), ["data.name=paired-folder"], "no A/ folder"),
    (lambda t: paired_root(t), ["data.name=unpaired-folder"], "no trainA/ folder"),
])
def test_loader_errors_name_the_folder_and_the_layout(tmp_path, make, overrides, message):
    root = make(tmp_path)
    with pytest.raises(DataError, match=message) as e:
        build_dataset(data_cfg(*overrides, f"data.root={root}", "data.resolution=16"))
    assert str(root) in str(e.value)


def test_no_pairs_at_all_is_an_error(tmp_path):
    root = tmp_path / "p"
    write_images(root / "A", ["x.png"])
    write_images(root / "B", ["y.png"])
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no pair of images found"):
        build_dataset(data_cfg("data.name=paired-folder", f"data.root={root}", "data.resolution=16"))


@pytest.mark.parametrize("overrides, message", [
    (["data.name=mnist", "data.resolution=28", "data.image_width=48"], "non-square images are for the translation"),
    (["data.name=paired-folder", "data.resolution=32"], "needs data.root=PATH"),
    (["data.name=unpaired-folder", "data.root=x", "data.resolution=32"], "train.recipe=pix2pix learns from paired images"),
    (["data.name=fashion-edges", "data.resolution=30"], "unet needs image sides divisible by 4"),
    (["data.name=fashion-edges", "data.resolution=32", "model.D=dcgan"], "model.D=patchgan"),
    (["data.name=fashion-edges", "data.resolution=32", "loss.kind=wasserstein"], "translation recipes use ns, minimax, lsgan or hinge"),
    (["data.name=fashion-edges", "data.resolution=32", "train.augment=color"], "train.augment: not part of the pix2pix recipe"),
])
def test_translation_configs_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, ["train.recipe=pix2pix", "model.arch=unet", "model.D=patchgan", *overrides])


def test_a_gan_net_with_a_translation_recipe_and_back_are_refused():
    with pytest.raises(ConfigError, match="unet nets translate images: use them with train.recipe=pix2pix"):
        validate.load(None, ["model.G=unet"])
    with pytest.raises(ConfigError, match="needs an image-to-image G and a patch D"):
        validate.load(None, ["train.recipe=pix2pix", "data.name=fashion-edges", "data.resolution=32", "model.arch=dcgan"])


def test_edge_maps_are_black_lines_on_white():
    x = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    x[..., 4:12, 4:12] = 255  # a white square on black
    e = edge_map(x)[0, 0]
    assert e[0, 0] == 255 and e[8, 8] == 255  # flat regions: white
    assert (e[4, 4:12] == 0).all() and (e[3, 4:12] == 0).all()  # the square's border: black lines


# --- losses on known inputs ------------------------------------------------------------------------

def tiny_translation(tmp_path, recipe, *extra):
    root = paired_root(tmp_path) if recipe == "pix2pix" else unpaired_root(tmp_path)
    data = "paired-folder" if recipe == "pix2pix" else "unpaired-folder"
    arch = "unet" if recipe == "pix2pix" else "resnet"
    return ["train.precision=fp32", f"data.name={data}", f"data.root={root}", "data.resolution=16",
            f"model.arch={arch}", "model.D=patchgan", "model.width=4", f"train.recipe={recipe}", "train.batch_size=4",
            "train.epochs=2", "log.progress=false", "log.report=false", "log.stats_every_steps=1",
            f"run.dir={tmp_path / 'runs'}", "run.name=t", *extra]


def built(tmp_path, recipe, *extra):
    from ganforge.recipes import build_recipe

    cfg = validate.load(None, tiny_translation(tmp_path, recipe, *extra))
    data = build_dataset(cfg.data)
    torch.manual_seed(0)
    return cfg, data, build_recipe(cfg, data, torch.device("cpu"))


def test_pix2pix_losses_are_the_papers(tmp_path):
    cfg, data, r = built(tmp_path, "pix2pix", "loss.d_scale=0.5", "loss.l1_weight=100")
    batch = data.batch(torch.arange(4))
    a, b = batch["a"], batch["x"]
    G, D = copy.deepcopy(r.players["G"].net), copy.deepcopy(r.players["D"].net)
    torch.manual_seed(1)
    stats = r.train_step(batch)
    torch.manual_seed(1)  # the same dropout masks in G
    fake = G(a)
    real_logits, fake_logits = D(torch.cat([a, b], 1)), D(torch.cat([a, fake], 1))
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    loss_D = 0.5 * (bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits)))
    assert torch.allclose(stats["loss_D"], loss_D, atol=1e-5)
    # G's loss is taken against D after D's update: recompute with the updated D
    D_after = r.players["D"].net
    adv_logits = D_after(torch.cat([a, fake], 1))
    l1 = (fake - b).abs().mean()
    assert torch.allclose(stats["L1"], l1, atol=1e-6)
    assert torch.allclose(stats["loss_G"], bce(adv_logits, torch.ones_like(adv_logits)) + 100 * l1, atol=1e-4)


def test_cyclegan_losses_are_the_papers(tmp_path):
    cfg, data, r = built(tmp_path, "cyclegan", "loss.kind=lsgan", "loss.cycle_weight=10", "loss.identity_weight=0.5",
                         "train.pool_size=0")
    batch = data.batch(torch.arange(4))
    a, b = batch["a"], batch["x"]
    G, D = copy.deepcopy(r.players["G"].net), copy.deepcopy(r.players["D"].net)
    stats = r.train_step(batch)
    fake_b, fake_a = G["AB"](a), G["BA"](b)
    mse = torch.nn.functional.mse_loss
    dB, dA = D["B"](fake_b), D["A"](fake_a)
    adv = mse(dB, torch.ones_like(dB)) + mse(dA, torch.ones_like(dA))
    cycle = (G["BA"](fake_b) - a).abs().mean() + (G["AB"](fake_a) - b).abs().mean()
    identity = (G["BA"](a) - a).abs().mean() + (G["AB"](b) - b).abs().mean()
    assert torch.allclose(stats["G_adv"], adv, atol=1e-5) and torch.allclose(stats["cycle"], cycle, atol=1e-6)
    assert torch.allclose(stats["identity"], identity, atol=1e-6)
    assert torch.allclose(stats["loss_G"], adv + 10 * cycle + 0.5 * 10 * identity, atol=1e-4)
    # D learns after G (the reference's order), from the freshly generated images (pool off)
    D_upd = r.players["D"].net
    G_upd = r.players["G"].net
    with torch.no_grad():
        fb, fa = G["AB"](a), G["BA"](b)
    rb, fkb, ra, fka = D["B"](b), D["B"](fb), D["A"](a), D["A"](fa)
    loss_D = (mse(rb, torch.ones_like(rb)) + mse(fkb, torch.zeros_like(fkb)) + mse(ra, torch.ones_like(ra))
              + mse(fka, torch.zeros_like(fka)))
    # LSGAN's D loss is half the squared errors (Mao et al.; the reference halves the sum of its two terms)
    assert torch.allclose(stats["loss_D"], cfg.loss.d_scale * 0.5 * loss_D, atol=1e-5)
    assert D_upd is not D and G_upd is not G


def test_the_image_pool_fills_then_swaps_half_and_resumes_exactly():
    pool = ImagePool(4, seed=0)
    first = torch.arange(4.0).reshape(4, 1, 1, 1)
    assert torch.equal(pool(first), first) and len(pool.images) == 4  # filling: returned as they are
    state = copy.deepcopy(pool.state_dict())
    new = 100 + torch.arange(64.0).reshape(64, 1, 1, 1)
    out = pool(new)
    from_pool = (out != new).sum().item()
    assert 16 <= from_pool <= 48  # about half come from the history
    again = ImagePool(4, seed=123)
    again.load_state_dict(state, torch.device("cpu"))
    assert torch.equal(again(new), out)  # the same stream and contents after a resume
    assert torch.equal(ImagePool(0, seed=0)(new), new)  # size 0: off


# --- training, resume, translate -------------------------------------------------------------------

@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("p2p")
    run_dir, _ = api.train(validate.load(None, tiny_translation(tmp, "pix2pix", "log.report=true", "log.num_samples=8")),
                           log=lambda s: None)
    return run_dir


def test_a_pix2pix_run_leaves_grids_of_input_output_and_target(pix2pix_run):
    grid = Image.open(pix2pix_run / "samples" / "step_0000006.png")
    assert grid.size == (2 * (8 * 18 + 2), 2 * (3 * 18 + 2))  # 8 held-out pairs x 3 rows, 16 px + 2 px padding, 2x
    html = (pix2pix_run / "report" / "report.html").read_text()
    assert "l1.png" in html and "truncation" not in html  # no latent pictures for a translation model
    rows = [json.loads(line) for line in (pix2pix_run / "stats.jsonl").read_text().splitlines()]
    assert all({"loss_D", "loss_G", "L1", "D_acc"} <= set(r) for r in rows)


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_cyclegan_resume_is_bit_identical(tmp_path):
    extra = ("loss.kind=lsgan", "train.pool_size=3", "optim.linear_decay_start=0.5", "train.epochs=3")
    full_dir, full = api.train(validate.load(None, tiny_translation(tmp_path, "cyclegan", *extra, "run.name=full")),
                               log=lambda s: None)
    part = validate.load(None, tiny_translation(tmp_path, "cyclegan", *extra, "run.name=part", "train.max_steps=3"))
    part_dir, stopped = api.train(part, log=lambda s: None)
    assert stopped.step == 3  # mid-epoch (2 batches of 4 from 10 pairs an epoch)
    resumed_dir, resumed = api.train(validate.load(None, tiny_translation(tmp_path, "cyclegan", *extra, "run.name=part")),
                                     resume="auto", log=lambda s: None)
    assert resumed_dir == part_dir and resumed.step == full.step == 6
    a, b = checkpoint.load(full_dir / "ckpt/last.pt"), checkpoint.load(part_dir / "ckpt/last.pt")
    assert_same_state(a, b)  # weights, optimizers and both image pools
    assert len(b["recipe"]["pool_A"]["images"]) == 3


def test_linear_decay_holds_then_falls_to_near_zero(tmp_path):
    cfg, data, r = built(tmp_path, "cyclegan", "optim.linear_decay_start=0.5", "train.epochs=10")
    lrs = []
    for epoch in range(10):
        r.set_epoch(epoch)
        lrs.append(r.players["G"].opt.param_groups[0]["lr"])
    lr0 = cfg.optim.lr_G
    # constant for the first 5 epochs, then down by lr0 / 6 each epoch, ending at lr0 / 6 (the reference's schedule)
    assert lrs[:5] == [lr0] * 5 and all(x > y for x, y in zip(lrs[4:], lrs[5:])) and lrs[-1] == pytest.approx(lr0 / 6)


def test_translate_a_folder_with_a_bad_file(pix2pix_run, tmp_path, capsys):
    inputs = tmp_path / "in"
    write_images(inputs, ["one.png", "two.jpg"], size=(20, 30))
    write_images(inputs / "deeper", ["three.png"])
    (inputs / "broken.png").write_bytes(b"\x89PNG not really")
    (inputs / "readme.txt").write_text("hi")
    out = tmp_path / "out"
    assert main(["translate", str(pix2pix_run), "--input", str(inputs), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "3 image(s) translated" in captured.out
    assert "broken.png" in captured.err and "readme.txt" in captured.err and "Traceback" not in captured.err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["deeper/three.png", "one.png", "two.png"]
    assert Image.open(out / "one.png").size == (16, 16)  # the training size
    G = load_generator(pix2pix_run)
    a = torch.tensor(np.asarray(Image.open(out / "one.png")))
    assert a.shape == (16, 16)
    # --keep-size: each image's own size (30 x 20), centre-cropped to the U-Net's stride (16), not resampled
    assert main(["translate", str(pix2pix_run), "--input", str(inputs / "one.png"), "--out", str(tmp_path / "k"),
                 "--keep-size"]) == 0
    assert Image.open(tmp_path / "k" / "one.png").size == (16, 16)
    from ganforge.api import _translation_input

    crop = _translation_input(inputs / "one.png", G.cfg.data, 16, keep_size=True)
    assert np.array_equal(crop[0], np.asarray(Image.open(inputs / "one.png"))[2:18, 7:23])
    assert G.directions == ("AtoB",)


def test_translate_keeps_inputs_safe(pix2pix_run, tmp_path, capsys):
    inputs = tmp_path / "in"
    write_images(inputs, ["a.png", "a.jpg"])
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    for out in (inputs, inputs / "sub", tmp_path):
        assert main(["translate", str(pix2pix_run), "--input", str(inputs), "--out", str(out)]) == 2
    assert "overlap" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before  # nothing written or changed
    single = inputs / "a.png"  # a single file with --out its own folder: refused, not overwritten
    assert main(["translate", str(pix2pix_run), "--input", str(single), "--out", str(inputs)]) == 2
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before
    assert main(["translate", str(pix2pix_run), "--input", str(inputs), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.jpg.png", "a.png.png"]
    from ganforge.api import _output_names
    from pathlib import Path

    names = _output_names([Path("a.jpg"), Path("a.png"), Path("a.jpg.png"), Path("B.jpg"), Path("b.png")])
    assert len({n.as_posix().lower() for n in names}) == 5  # no two outputs meet, whatever the case


def test_translate_refuses_what_it_cannot_do(pix2pix_run, tiny_run, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    assert main(["translate", str(pix2pix_run), "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["translate", str(pix2pix_run), "--input", str(bad), "--out", str(tmp_path / "o"),
                 "--direction", "BtoA"]) == 2
    assert main(["translate", str(tiny_run), "--input", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert main(["sample", str(pix2pix_run), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "no image could be translated" in err and "translates AtoB only" in err
    assert "draws images from seeds" in err and "use `ganforge translate" in err and "Traceback" not in err


def test_translation_dry_runs(tmp_path):
    for recipe in ("pix2pix", "cyclegan"):
        run_dir, result = api.train(validate.load(None, tiny_translation(tmp_path, recipe)), dry_run=True,
                                    log=lambda s: None)
        assert result.step == 2


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_translation_models_export_to_onnx(pix2pix_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    G = load_generator(pix2pix_run)
    assert main(["export", str(pix2pix_run), "--format", "onnx", "--out", str(tmp_path / "p.onnx")]) == 0
    a = torch.rand(3, 1, 16, 16) * 2 - 1
    session = ort.InferenceSession(str(tmp_path / "p.onnx"))
    (got,) = session.run(["AtoB"], {"a": a.numpy()})
    assert np.abs(got - G.translate(a).numpy()).max() <= 1e-4


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cyc")
    run_dir, _ = api.train(validate.load(None, tiny_translation(tmp, "cyclegan", "loss.kind=lsgan", "train.pool_size=2",
                                                              "log.report=true")), log=lambda s: None)
    return run_dir


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_cyclegan_translates_both_ways_and_exports_both(cyclegan_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    G = load_generator(cyclegan_run)
    assert G.directions == ("AtoB", "BtoA")
    a, b = torch.rand(2, 1, 16, 16) * 2 - 1, torch.rand(2, 1, 16, 16) * 2 - 1
    assert not torch.equal(G.translate(a, "AtoB"), G.translate(a, "BtoA"))  # two different nets
    inputs = tmp_path / "in"
    write_images(inputs, ["boot.png"])
    assert main(["translate", str(cyclegan_run), "--input", str(inputs), "--out", str(tmp_path / "o"),
                 "--direction", "BtoA"]) == 0
    assert (tmp_path / "o" / "boot.png").is_file()
    assert main(["export", str(cyclegan_run), "--format", "onnx", "--out", str(tmp_path / "c.onnx")]) == 0
    ab, ba = ort.InferenceSession(str(tmp_path / "c.onnx")).run(["AtoB", "BtoA"], {"a": a.numpy(), "b": b.numpy()})
    assert np.abs(ab - G.translate(a, "AtoB").numpy()).max() <= 1e-4
    assert np.abs(ba - G.translate(b, "BtoA").numpy()).max() <= 1e-4
    grid = Image.open(sorted((cyclegan_run / "samples").glob("step_*.png"))[-1])
    assert grid.size[1] == 2 * (3 * 18 + 2)  # input, translation, reconstruction


def test_non_square_images_train_and_translate(tmp_path):
    root = paired_root(tmp_path, n=8, size=(16, 24))  # H 16, W 24
    cfg = validate.load(None, [*tiny_translation(tmp_path, "pix2pix"), f"data.root={root}", "data.image_width=24",
                             "train.max_steps=2"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    G = load_generator(run_dir)
    assert G.translate(torch.zeros(1, 1, 16, 24)).shape == (1, 1, 16, 24)
    assert main(["translate", str(run_dir), "--input", str(root / "A" / "00.png"), "--out", str(tmp_path / "o")]) == 0
    assert Image.open(tmp_path / "o" / "00.png").size == (24, 16)


def test_cyclegan_without_identity_loss(tmp_path):
    cfg, data, r = built(tmp_path, "cyclegan", "loss.kind=lsgan", "loss.identity_weight=0", "train.pool_size=0")
    batch = data.batch(torch.arange(4))
    a, b = batch["a"], batch["x"]
    G, D = copy.deepcopy(r.players["G"].net), copy.deepcopy(r.players["D"].net)
    stats = r.train_step(batch)
    fake_b, fake_a = G["AB"](a), G["BA"](b)
    dB, dA = D["B"](fake_b), D["A"](fake_a)
    adv = ((dB - 1) ** 2).mean() + ((dA - 1) ** 2).mean()
    cycle = (G["BA"](fake_b) - a).abs().mean() + (G["AB"](fake_a) - b).abs().mean()
    assert "identity" not in stats and torch.allclose(stats["loss_G"], adv + 10 * cycle, atol=1e-4)
