"""Exploring a trained generator: latent interpolation and `ganforge interp`."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api, validate
from ganforge.core import latent
from ganforge.cli import main
from ganforge.core.errors import ConfigError


def test_slerp_keeps_the_endpoints_and_walks_the_great_circle():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=g), torch.randn(64, generator=g)
    t = torch.linspace(0, 1, 11)
    z = latent.interpolate(a, b, t, "normal")
    torch.testing.assert_close(z[0], a)
    torch.testing.assert_close(z[-1], b)
    # equal angular steps between endpoints of equal norm: consecutive points the same angle apart
    z = latent.interpolate(a, b * a.norm() / b.norm(), t, "normal")
    cos = torch.nn.functional.cosine_similarity(z[:-1], z[1:])
    assert (cos.max() - cos.min()) < 1e-5
    # for two orthogonal unit vectors the midpoint has unit norm (a straight line would give 0.707)
    e1, e2 = torch.eye(2)
    assert latent.interpolate(e1, e2, torch.tensor([0.5]), "normal")[0].norm().item() == pytest.approx(1.0)
    mid_line = latent.interpolate(e1, e2, torch.tensor([0.5]), "uniform")[0]
    assert mid_line.norm().item() == pytest.approx(math.sqrt(0.5))


def test_interp_gif_frames_and_the_same_image_as_sample(tiny_run, tmp_path):
    out = api.interp(tiny_run, tmp_path / "walk.gif", seeds=[3, 5, 7], steps=4, fps=10)
    with Image.open(out) as gif:
        assert gif.n_frames == 12  # 3 legs of 4 (looping back to seed 3)
        assert gif.info["duration"] == 100
        gif.seek(0)
        first = np.asarray(gif.convert("L"))
    # the walk's first frame is the image `ganforge sample --n 1 --seed 3` draws
    api.sample(tiny_run, 1, tmp_path / "one.png", seed=3)
    one = np.asarray(Image.open(tmp_path / "one.png").convert("L"))[4:-4, 4:-4]  # the grid's padding, 2x
    # GIF frames are upscaled 4x, the grid 2x; the GIF's palette may move a grey level by a little
    assert first[::4, ::4].shape == one[::2, ::2].shape
    assert np.abs(first[::4, ::4].astype(int) - one[::2, ::2].astype(int)).max() <= 2


def test_interp_png_strip_holds_the_open_path(tiny_run, tmp_path):
    out = api.interp(tiny_run, tmp_path / "walk.png", seeds=[0, 1], steps=5)
    w, h = Image.open(out).size
    assert (w - 4) // (h - 4) == 6  # 5 steps and the last seed, in one row


@pytest.mark.parametrize("kwargs,message", [
    (dict(seeds=[1]), "at least two seeds"), (dict(seeds=[1, 2], steps=1), "--steps 1"),
    (dict(seeds=[1, 2], fps=0), "--fps 0"), (dict(seeds=[1, 2], out="walk.txt"), r"\.gif / \.png"),
])
def test_interp_refuses_bad_arguments(tiny_run, tmp_path, kwargs, message):
    out = tmp_path / kwargs.pop("out", "walk.gif")
    with pytest.raises(ConfigError, match=message):
        api.interp(tiny_run, out, **kwargs)
    assert not out.exists()


def test_interp_cli(tiny_run, tmp_path, capsys):
    assert main(["interp", str(tiny_run), "--out", str(tmp_path / "w.gif"), "--seeds", "1", "2", "--steps", "3"]) == 0
    assert (tmp_path / "w.gif").is_file()
    assert main(["interp", str(tiny_run), "--class", "2", "--out", str(tmp_path / "c.gif")]) == 2
    assert "unconditional" in capsys.readouterr().err


def test_every_report_has_a_truncation_sweep(tiny_run):
    path = tiny_run / "report" / "truncation.png"
    w, h = Image.open(path).size
    assert (w, h) == (2 * (8 * 30 + 2), 2 * (6 * 30 + 2))  # 8 latents x 6 psi values, 28 px + 2 px padding, 2x
    assert "truncation.png" in (tiny_run / "report" / "report.html").read_text()
    grid = np.asarray(Image.open(path).convert("L")).astype(int)
    row = lambda r: grid[2 * (r * 30 + 2): 2 * (r * 30 + 30)]  # noqa: E731
    cell = lambda r, k: row(r)[:, 2 * (k * 30 + 2): 2 * (k * 30 + 30)]  # noqa: E731
    assert np.abs(row(0) - row(5)).mean() > 0  # truncation changes the samples
    assert np.abs(cell(0, 0) - cell(0, 1)).mean() > 0  # psi = 1: eight different samples
    assert all(np.array_equal(cell(5, 0), cell(5, k)) for k in range(8))  # psi = 0: the mean latent's, eight times


def test_sample_and_interp_take_psi(tiny_run, tmp_path):
    G = api.load_generator(tiny_run)
    assert main(["sample", str(tiny_run), "--n", "4", "--psi", "0", "--out", str(tmp_path / "p.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "p.png"))  # 2 x 2 cells of 28 px, 2 px padding, enlarged 2 x
    cells = [grid[4 + 60 * r: 60 + 60 * r, 4 + 60 * k: 60 + 60 * k] for r in (0, 1) for k in (0, 1)]
    assert all(np.array_equal(cells[0], c) for c in cells[1:])  # every cell is the mean image
    assert main(["sample", str(tiny_run), "--psi", "1.5", "--out", str(tmp_path / "q.png")]) == 2
    assert not (tmp_path / "q.png").exists()
    assert main(["interp", str(tiny_run), "--psi", "0.5", "--seeds", "1", "2", "--steps", "2",
                 "--out", str(tmp_path / "w.png")]) == 0
    assert torch.equal(G.inputs(2, seed=1, psi=0.5)["z"], 0.5 * G.inputs(2, seed=1)["z"])


def test_truncation_sweep_rows_keep_the_latents_within_the_threshold(tiny_run):
    G = api.load_generator(tiny_run)
    for t in (2.0, 0.5, 0.25):
        assert G.inputs(64, seed=0, truncation=t)["z"].abs().max() <= t
    z_none, z_half = G.inputs(64, seed=0)["z"], G.inputs(64, seed=0, truncation=0.5)["z"]
    inside = z_none.abs() <= 0.5
    assert torch.equal(z_none[inside], z_half[inside])  # entries already inside are kept: same columns


def test_the_notebook_api(tiny_run):
    import ganforge

    G = ganforge.load_generator(tiny_run)
    x = G.sample(4, seed=1)
    assert x.shape == (4, 1, 28, 28) and -1 <= x.min() and x.max() <= 1
    images = G.images(4, seed=1)
    assert len(images) == 4 and images[0].mode == "L" and images[0].size == (28, 28)
    expected = ((x[0, 0] + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
    assert np.array_equal(np.asarray(images[0]), expected)


@pytest.fixture(scope="module")
def dcgan_cond_run(tmp_path_factory):
    """A tiny conditional DCGAN (the demo's architecture, narrower), two steps."""
    from conftest import train_tiny

    return train_tiny(tmp_path_factory.mktemp("onnx"), "model.arch=dcgan", "model.width=8",
                      "model.conditional=cgan", "train.max_steps=2")


@pytest.fixture(scope="module")
def stylegan_run(tmp_path_factory):
    from conftest import train_tiny

    return train_tiny(tmp_path_factory.mktemp("onnx_sg"), "model.arch=stylegan", "model.width=4", "model.d_norm=none",
                      "train.max_steps=3")


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
@pytest.mark.parametrize("which", ["mlp", "dcgan_conditional", "stylegan"])
def test_onnx_export_runs_in_onnxruntime_and_matches_torch(which, tiny_run, request, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    run = {"mlp": tiny_run, "dcgan_conditional": request.getfixturevalue("dcgan_cond_run"),
           "stylegan": request.getfixturevalue("stylegan_run")}[which]
    out = api.export(run, tmp_path / "G.onnx", fmt="onnx")
    G = api.load_generator(run)
    inputs = G.inputs(7, seed=4)  # a batch size the export never saw
    expected = G(inputs).numpy()
    session = ort.InferenceSession(str(out))
    feed = {"z": inputs["z"].numpy(), **({"c": inputs["c"].numpy()} if "c" in inputs else {})}
    assert {i.name for i in session.get_inputs()} == set(feed)
    got = session.run(None, feed)[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["value_range"] == "[-1, 1]" and meta["z_dist"] == "normal"
    from ganforge.core.io import default_file_mode
    assert (out.stat().st_mode & 0o777) == default_file_mode()  # not mkstemp's 0600


@pytest.mark.parametrize("argv, message", [
    (["stylemix", "--psi", "-3"], "psi=-3.0: truncation toward the mean latent takes psi between 0 and 1"),
    (["stylemix", "--rows", str(2**70)], f"seed {2**70} is out of range"),
    (["stylemix", "--cols", "-1"], "seed -1 is out of range"),
    (["interp", "--space", "w", "--psi", "2"], "psi=2.0"),
    (["interp", "--space", "w", "--seeds", "1", str(2**64)], f"seed {2**64} is out of range"),
])
def test_a_style_generator_checks_seeds_and_psi_on_every_path(stylegan_run, tmp_path, capsys, argv, message):
    out = tmp_path / ("mix.png" if argv[0] == "stylemix" else "walk.gif")
    assert main([argv[0], str(stylegan_run), *argv[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_export_format_refusals(tiny_run, tmp_path, capsys):
    assert main(["export", str(tiny_run), "--format", "onnx", "--out", str(tmp_path / "G.pt")]) == 2
    assert ".onnx" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # argparse's own one-line refusal of an unknown choice
        main(["export", str(tiny_run), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert exit_.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_tensorboard_mirror_holds_the_runs_numbers_and_grids(tmp_path):
    pytest.importorskip("tensorboard")
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from conftest import tiny_overrides
    cfg = validate.load(None, tiny_overrides(tmp_path, "log.tensorboard=true", "eval.every_steps=16",
                                           "eval.metrics=[modes]", "eval.num_samples=200"))
    run_dir, _ = api.train(cfg, log=lambda s: None)
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    rows = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    loss_d = events.Scalars("stats/loss_D")
    assert [e.step for e in loss_d] == [r["step"] for r in rows]
    assert [e.value for e in loss_d] == pytest.approx([r["loss_D"] for r in rows], rel=1e-6)
    assert [e.step for e in events.Scalars("metrics/modes_hit")] == [16, 32]
    grids = events.Images("samples (fixed inputs)")
    assert [g.step for g in grids] == [0, 16, 32] and grids[0].width > 0


def test_tensorboard_off_by_default_writes_nothing(tiny_run):
    assert not (tiny_run / "tensorboard").exists()


def test_the_explorer_walks_the_same_z_path_as_interp(tiny_run):
    """One z walk: the explorer's there-and-back walk is the closed path interp draws through the same seeds."""
    from ganforge.explore import z_path
    from ganforge.serve.explorer import Explorer, View

    G = api.load_generator(tiny_run)
    keys = [G.inputs(1, seed=s) for s in (3, 5)]
    path = z_path(G, keys, steps=4, closed=True)["z"]
    assert path.shape[0] == 8 and torch.equal(path[0], keys[0]["z"][0]) and torch.equal(path[4], keys[1]["z"][0])
    explorer = Explorer(G, num_directions=0)
    gif = explorer.walk_gif(View(seed=3), seed_b=5, steps=4)
    frames = Image.open(__import__("io").BytesIO(gif))
    assert frames.n_frames == 8
