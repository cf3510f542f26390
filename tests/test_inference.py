"""From an image back to its latent: the latent regressor (train.recipe=encoder), the projector,
latent files and `ganforge project` / `sample --latent`, on tiny real runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api, config
from ganforge.core.errors import ConfigError, GanforgeError
from ganforge.explore import project

from ganforge.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY_DCGAN = ["data.name=mnist-embedded", "model.arch=dcgan", "model.width=8", "model.z_dim=8", "train.batch_size=32",
              "eval.every_steps=0", "log.report=false", "log.progress=false", "health.every_steps=0",
              "health.watch_every=0"]
TINY_STYLEGAN = ["data.name=mnist-embedded", "model.arch=stylegan", "model.width=4", "model.d_norm=none",
                 "model.z_dim=16", "train.batch_size=8", "eval.every_steps=0", "log.report=false",
                 "log.progress=false", "health.every_steps=0", "health.watch_every=0"]


class Result:
    def __init__(self, capsys, argv):
        self.returncode = main([str(a) for a in argv])
        captured = capsys.readouterr()
        self.stdout, self.stderr = captured.out, captured.err


def train(tmp: Path, overrides: list[str], config_file: str | None = None, name: str = "g") -> Path:
    cfg = api.validate.load(config_file, [*overrides, f"run.dir={tmp}", f"run.name={name}"])
    run_dir, _ = api.train(cfg, log=lambda s: None)
    return run_dir


@pytest.fixture(scope="module")
def tiny_g(tmp_path_factory) -> Path:
    """A DCGAN after 60 steps: far from good, but its samples differ (after 5 they are all one image)."""
    return train(tmp_path_factory.mktemp("g"), [*TINY_DCGAN, "train.max_steps=60"])


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory, tiny_g) -> Path:
    return train(tmp_path_factory.mktemp("e"), [f"model.G_from={tiny_g}", "train.max_steps=150", "train.batch_size=64",
                                                "log.progress=false", "log.report=false"],
                 str(ROOT / "configs/mnist_encoder.yaml"), name="e")


def stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def test_encoder_learns_to_invert_g(tiny_encoder, tiny_g):
    rows = [r for r in stats(tiny_encoder) if "loss_E" in r]
    assert rows[-1]["loss_E"] < 0.7 * rows[0]["loss_E"]
    # The run describes G and E together: G's settings came from model.G_from.
    cfg = config.load(tiny_encoder / "config.yaml")
    assert (cfg.train.recipe, cfg.model.arch, cfg.model.z_dim, cfg.model.width) == ("encoder", "dcgan", 8, 8)
    G = api.load_generator(tiny_encoder)
    assert G.E is not None
    z = G.inputs(256, seed=5)["z"]
    z_hat = G.encode(G.generate({"z": z}))["z"]
    err = (z_hat - z).pow(2).mean()
    chance = (z - z.roll(1, 0)).pow(2).mean()  # another latent's distance: 2 per coordinate
    assert err < 0.5 and err < 0.3 * chance
    # G itself is the source's, unchanged (its EMA when it has one)
    x = api.load_generator(tiny_g).sample(4, seed=1)
    assert torch.equal(G.sample(4, seed=1), x)


def test_encoder_export_round_trip(tiny_encoder, tmp_path):
    G = api.load_generator(tiny_encoder)
    out = api.export(tiny_encoder, tmp_path / "export")
    assert (out / "encoder.safetensors").is_file()
    H = api.load_generator(out)
    x = G.sample(8, seed=2)
    assert torch.equal(H.encode(x)["z"], G.encode(x)["z"])
    # without its encoder file the export still samples; the encoder is simply absent
    meta = json.loads((out / "generator.json").read_text())
    del meta["encoder"]
    (out / "generator.json").write_text(json.dumps(meta))
    assert api.load_generator(out).E is None


def test_encoder_onnx_export_matches_torch(tiny_encoder, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = api.export(tiny_encoder, tmp_path / "G.onnx", fmt="onnx")
    session = ort.InferenceSession(str(tmp_path / "G.encoder.onnx"))
    G = api.load_generator(tiny_encoder)
    x = G.sample(5, seed=9)
    (latent,) = session.run(None, {"x": x.numpy()})
    assert np.allclose(latent, G.encode(x)["z"].numpy(), atol=1e-4)
    meta = {p.key: p.value for p in __import__("onnx").load(str(tmp_path / "G.encoder.onnx")).metadata_props}
    assert meta["space"] == "z" and meta["size"] == "8" and out.is_file()


def test_encoder_config_errors(tmp_path, tiny_g):
    with pytest.raises(ConfigError, match="model.G_from"):
        api.validate.load(str(ROOT / "configs/mnist_encoder.yaml"), [])
    with pytest.raises(ConfigError, match="not found"):
        api.validate.load(str(ROOT / "configs/mnist_encoder.yaml"), [f"model.G_from={tmp_path}/nothing"])
    with pytest.raises(ConfigError, match="only a style-based generator"):
        api.validate.load(str(ROOT / "configs/mnist_encoder.yaml"), [f"model.G_from={tiny_g}",
                                                                     "model.encoder_space=w"])
    with pytest.raises(ConfigError, match="model.E="):
        api.validate.load(str(ROOT / "configs/mnist_encoder.yaml"), [f"model.G_from={tiny_g}", "model.E=cnv"])


def test_encoder_w_plus_for_a_stylegan(tmp_path):
    g = train(tmp_path, [*TINY_STYLEGAN, "train.max_steps=2"])
    e = train(tmp_path, [f"model.G_from={g}", "model.encoder_space=w+", "train.max_steps=3", "train.batch_size=8"],
              str(ROOT / "configs/mnist_encoder.yaml"), name="e")
    G = api.load_generator(e)
    inputs = G.encode(G.sample(3, seed=0))
    assert inputs["ws"].shape == (3, G.num_ws, G.G.w_avg.numel())


def test_projector_recovers_a_known_latent(tiny_g):
    G = api.load_generator(tiny_g)
    z_true = G.inputs(4, seed=11)["z"]
    z_true = z_true * (z_true.shape[1] ** 0.5 / z_true.norm(dim=1, keepdim=True))  # on the sphere it searches
    x = G.generate({"z": z_true})
    start = (G.generate({"z": torch.zeros(4, 8)}) - x).pow(2).flatten(1).mean(1)
    result = project(G, x, "z", steps=300, lr=0.1)
    assert (result.pixel < 0.02 * start).all(), (result.pixel, start)
    cos = torch.nn.functional.cosine_similarity(result.latent, z_true)
    assert (cos > 0.95).all(), cos
    # the handle's net was not touched by the search
    assert torch.equal(G.generate({"z": z_true}), x)


def test_encoder_start_beats_the_mean_start(tiny_encoder):
    G = api.load_generator(tiny_encoder)
    x = G.sample(8, seed=21)
    from_mean = project(G, x, "z", steps=20, init="mean")
    from_encoder = project(G, x, "z", steps=20, init="encoder")
    assert from_encoder.pixel.mean() < from_mean.pixel.mean()


def save_digits(folder: Path, n: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    from ganforge.data import build_dataset

    data = build_dataset(config.load(None, ["data.name=mnist-embedded"]).data, 0)
    files = []
    for i in range(n):
        f = folder / f"digit{i}.png"
        Image.fromarray(data.x[i, 0].numpy()).save(f)
        files.append(f)
    return files


def test_project_cli_round_trips_through_sample(tiny_encoder, tmp_path, capsys):
    save_digits(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    r = Result(capsys, ["project", str(tiny_encoder), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                "--steps", "15"])
    assert r.returncode == 0, r.stderr
    assert "3 image(s) projected" in r.stdout and "from the encoder" in r.stdout
    assert "broken.png" in r.stderr and "Traceback" not in r.stderr
    records = json.loads((tmp_path / "out" / "projections.json").read_text())
    assert len(records) == 3 and records[0]["distance"] == "pixels + mnist-cnn features"
    for name in ("digit0.latent.safetensors", "digit0.png", "digit0.strip.png"):
        assert (tmp_path / "out" / name).is_file()
    with Image.open(tmp_path / "out" / "digit0.strip.png") as strip:
        assert strip.size == (56, 28)
    r = Result(capsys, ["sample", str(tiny_encoder), "--latent", str(tmp_path / "out" / "digit0.latent.safetensors"),
                "--out", str(tmp_path / "again.png")])
    assert r.returncode == 0, r.stderr
    again = np.asarray(Image.open(tmp_path / "again.png").convert("L"))
    rec = np.asarray(Image.open(tmp_path / "out" / "digit0.png").convert("L"))
    assert again.shape == rec.shape == (28, 28)
    assert np.abs(again.astype(int) - rec.astype(int)).max() <= 1


def test_projection_round_trips_noise_maps_of_a_stylegan(tmp_path):
    g = train(tmp_path, [*TINY_STYLEGAN, "train.max_steps=2"])
    G = api.load_generator(g)
    save_digits(tmp_path / "in", 1)
    out, records = api.project(G, tmp_path / "in", tmp_path / "out", steps=5, space="w+")
    assert records[0]["space"] == "w+"
    inputs = api.latent_inputs(G, out / "digit0.latent.safetensors")
    assert any(k.startswith("noise") for k in inputs)
    x = G.generate(inputs)
    rec = np.asarray(Image.open(out / "digit0.png").convert("L")).astype(int)
    from ganforge.core.images import to_uint8

    assert np.abs(to_uint8(x, G.value_range)[0, ..., 0].astype(int) - rec).max() <= 1


@pytest.mark.parametrize("args, message", [
    (["--space", "w"], "only a style-based generator"),
    (["--init", "encoder"], "no encoder"),
    (["--class", "3"], "unconditional"),
    (["--steps", "0"], "--steps 0"),
    (["--feature-net", "nowhere/net.json"], "nowhere/net"),
])
def test_project_refuses_bad_input_in_one_line(tiny_g, tmp_path, args, message, capsys):
    save_digits(tmp_path / "in", 1)
    r = Result(capsys, ["project", str(tiny_g), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), *args])
    assert r.returncode != 0
    assert message in r.stderr and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_project_refuses_overlap_and_missing_input(tiny_g, tmp_path, capsys):
    save_digits(tmp_path / "in", 1)
    r = Result(capsys, ["project", str(tiny_g), "--input", str(tmp_path / "in"), "--out", str(tmp_path / "in" / "out")])
    assert r.returncode != 0 and "overlap" in r.stderr
    r = Result(capsys, ["project", str(tiny_g), "--input", str(tmp_path / "none"), "--out", str(tmp_path / "out")])
    assert r.returncode != 0 and "no such file" in r.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not an image")
    r = Result(capsys, ["project", str(tiny_g), "--input", str(tmp_path / "bad"), "--out", str(tmp_path / "out")])
    assert r.returncode == 2 and "no image could be read" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_latent_files_are_checked(tiny_g, tiny_encoder, tmp_path, capsys):
    bad = tmp_path / "bad.latent.safetensors"
    bad.write_bytes(b"\x00" * 40)
    r = Result(capsys, ["sample", str(tiny_g), "--latent", str(bad), "--out", str(tmp_path / "x.png")])
    assert r.returncode != 0 and "not a latent file" in r.stderr and "Traceback" not in r.stderr
    # a latent of another model (another z size) is refused by name
    save_digits(tmp_path / "in", 1)
    api.project(tiny_g, tmp_path / "in", tmp_path / "out", steps=2)
    other = train(tmp_path, [*TINY_DCGAN, "model.z_dim=12", "train.max_steps=1"], name="other")
    with pytest.raises(GanforgeError, match="12"):
        api.latent_inputs(other, tmp_path / "out" / "digit0.latent.safetensors")


def test_encoder_run_resumes_bit_identical(tiny_g, tmp_path):
    overrides = [f"model.G_from={tiny_g}", "train.batch_size=32", "log.progress=false", "log.report=false",
                 "log.ckpt_every_steps=3"]
    full = train(tmp_path, [*overrides, "train.max_steps=6"], str(ROOT / "configs/mnist_encoder.yaml"), name="full")
    part = train(tmp_path, [*overrides, "train.max_steps=3"], str(ROOT / "configs/mnist_encoder.yaml"), name="part")
    cfg = api.validate.load(str(ROOT / "configs/mnist_encoder.yaml"),
                            [*overrides, "train.max_steps=6", f"run.dir={tmp_path}", "run.name=part"])
    api.train(cfg, resume="auto", log=lambda s: None)
    a, b = api.load_generator(full), api.load_generator(part)
    assert all(torch.equal(p, q) for p, q in zip(a.E.state_dict().values(), b.E.state_dict().values()))


# --- BiGAN -------------------------------------------------------------------------------------------

TINY_BIGAN = ["train.recipe=bigan", "model.arch=bigan", "model.width=64", "model.z_dim=8", "model.z_dist=uniform1",
              "data.name=mnist-embedded", "data.range=unit", "train.batch_size=32", "eval.every_steps=0",
              "log.report=false", "log.progress=false", "health.every_steps=0", "health.watch_every=0"]


def test_bigan_trains_g_e_and_a_joint_d(tmp_path):
    run = train(tmp_path, [*TINY_BIGAN, "train.max_steps=40", "optim.weight_decay=2.5e-5"])
    rows = stats(run)
    assert rows[0]["loss_D"] == pytest.approx(0.6931, abs=2e-3)  # D's output layer starts at zero: log 2
    assert all(np.isfinite(r["loss_D"]) and np.isfinite(r["loss_G"]) for r in rows)
    G = api.load_generator(run)
    assert G.E is not None and (run / "export" / "encoder.safetensors").is_file()
    z = G.encode(G.sample(16, seed=3))["z"]
    assert z.shape == (16, 8) and z.abs().max() <= 1.0  # E's outputs land in z's box, U[-1, 1]
    x = G.sample(16, seed=4)
    assert x.min() >= 0 and x.max() <= 1  # sigmoid output for pixels in [0, 1]


def test_bigan_refuses_an_image_d_and_gan_refuses_a_joint_d():
    with pytest.raises(ConfigError, match="model.D=bigan"):
        api.validate.load(None, [*TINY_BIGAN, "model.D=mlp"])
    with pytest.raises(ConfigError, match="train.recipe=bigan"):
        api.validate.load(None, [t for t in TINY_BIGAN if not t.startswith("train.recipe")])


def test_exponential_decay_and_weight_decay_reach_the_optimizers(tmp_path):
    from ganforge import training

    cfg = api.validate.load(None, [*TINY_BIGAN, "train.epochs=400", "optim.exp_decay_start=0.5",
                                   "optim.exp_decay_final=0.01", "optim.weight_decay=2.5e-5"])
    _, recipe, _ = training.prepare(cfg, torch.device("cpu"))
    lr = lambda: recipe.players["G"].opt.param_groups[0]["lr"]  # noqa: E731
    recipe.set_epoch(199)
    assert lr() == pytest.approx(2e-4)  # constant for the first 200 epochs
    recipe.set_epoch(200)
    assert lr() == pytest.approx(2e-4 * 0.01 ** (1 / 200))
    recipe.set_epoch(399)
    assert lr() == pytest.approx(2e-6)  # 1 % in the last epoch, as the reference
    assert all(p.opt.param_groups[0]["weight_decay"] == 2.5e-5 for p in recipe.players.values())
