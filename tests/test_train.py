import json
import os
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import api, checkpoint, config, validate
from ganforge.core.io import default_file_mode
from ganforge.cli import main
from ganforge.core.errors import CheckpointError, TrainingDiverged

from conftest import tiny_overrides


def _flat_state(ckpt: dict) -> dict[str, torch.Tensor]:
    """Every tensor of nets and optimizers in a checkpoint, by a flat name."""
    out = {}

    def walk(prefix, obj):
        if isinstance(obj, torch.Tensor):
            out[prefix] = obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(obj, (list, tuple)):
            for i, v in enumerate(obj):
                walk(f"{prefix}.{i}", v)

    walk("recipe", ckpt["recipe"])
    return out


def assert_same_state(a: dict, b: dict):
    fa, fb = _flat_state(a), _flat_state(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        assert torch.equal(fa[k], fb[k]), f"{k} differs"


def test_a_run_leaves_every_artefact(tiny_run):
    run_dir = tiny_run
    assert checkpoint.load(run_dir / "ckpt/last.pt")["step"] == 2 * (512 // 32)
    summary = json.loads((run_dir / "report" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["G parameters"] > 0 and summary["D parameters"] > 0
    for rel in ("config.yaml", "stats.jsonl", "log.txt", "samples/reals.png", "samples/step_0000000.png",
                "samples/step_0000016.png", "samples/step_0000032.png", "ckpt/last.pt", "ckpt/step_0000032.pt",
                "report/report.html", "report/progress.gif", "report/losses.png", "report/d_outputs.png",
                "export/generator.safetensors", "export/generator.json"):
        assert (run_dir / rel).is_file(), rel
    stats = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert [s["step"] for s in stats] == list(range(4, 33, 4))
    assert all(0 < s["D_x"] < 1 and 0 < s["D_G_z"] < 1 for s in stats)
    html = (run_dir / "report" / "report.html").read_text()
    assert "progress.gif" in html and "losses.png" in html and "mnist-embedded" in html
    from PIL import Image

    with Image.open(run_dir / "report" / "progress.gif") as gif:
        assert gif.n_frames == 4  # the final grid, then the three grids in order
        first = np.asarray(gif.convert("RGB"))
        gif.seek(3)
        assert np.array_equal(first, np.asarray(gif.convert("RGB")))  # a static view shows the trained G
    for needle in ("step 32", "Finished after 32 steps", "walk.gif", "truncation toward the mean latent"):
        assert needle in html, needle
    assert validate.load(run_dir / "config.yaml").train.epochs == 2


def test_checkpoint_is_complete_and_safe_to_load(tiny_run):
    ckpt = torch.load(tiny_run / "ckpt" / "last.pt", weights_only=True)  # no pickled code inside
    assert ckpt["format"] == checkpoint.FORMAT and ckpt["step"] == 32 and ckpt["version"]
    assert set(ckpt["recipe"]) == {"kind", "players", "z_rng", "pl_mean", "aug_p", "ada_signs"}
    assert ckpt["recipe"]["kind"] == "gan"
    for name in ("G", "D"):
        assert set(ckpt["recipe"]["players"][name]) == {"net", "opt", "scaler", "updates"}
    assert ckpt["hooks"]["samples"]["fixed_inputs"]["z"].shape == (16, 8)
    assert {"torch", "numpy", "python"} <= set(ckpt["rng"])
    assert ckpt["config"]["model"]["width"] == 16


def test_same_seed_same_result(tiny_cfg):
    run_a, _ = api.train(tiny_cfg(), log=lambda s: None)
    run_b, _ = api.train(tiny_cfg(), log=lambda s: None)
    assert_same_state(checkpoint.load(run_a / "ckpt/last.pt"), checkpoint.load(run_b / "ckpt/last.pt"))
    run_c, _ = api.train(tiny_cfg("train.seed=1"), log=lambda s: None)
    with pytest.raises(AssertionError):
        assert_same_state(checkpoint.load(run_a / "ckpt/last.pt"), checkpoint.load(run_c / "ckpt/last.pt"))


@pytest.mark.parametrize("extra", [
    (),  # textbook MLP with dropout in D (uses the global RNG) and Adam
    ("model.arch=dcgan", "model.width=4", "train.n_dis=2", "train.reuse_fake=false",
     "optim.betas=[0.5, 0.999]"),  # batch norm, k = 2
    ("model.arch=goodfellow2014", "model.width=20", "data.range=unit", "model.z_dist=uniform", "optim.kind=sgd",
     "optim.lr_G=0.1", "optim.lr_D=0.1", "optim.momentum_final=0.7", "optim.momentum_saturate_epoch=3",
     "optim.lr_decay=1.001", "loss.d_scale=0.5", "train.epochs=3",
     "train.update=simultaneous"),  # the paper's schedules and update
    pytest.param(("train.precision=bf16",), marks=pytest.mark.slow),  # autocast (slow where no AMX)
    ("model.arch=dcgan", "model.width=4", "train.precision=fp16"),  # autocast + gradient scalers
    ("train.recipe=bigan", "model.arch=bigan", "model.width=16", "model.z_dist=uniform1", "data.range=unit",
     "optim.weight_decay=2.5e-5", "optim.exp_decay_start=0.5", "train.epochs=3",
     "train.ema_halflife_kimg=1"),  # three players, simultaneous, coupled L2, the exponential decay, EMAs
    pytest.param(("model.arch=stylegan", "model.width=4", "model.d_norm=none", "loss.r1_gamma=0.1", "loss.r1_every=4",
                  "loss.pl_weight=2", "loss.pl_every=3", "train.augment=translation,cutout", "train.ada_target=0.6",
                  "train.ada_every=2", "train.ada_kimg=1", "train.ema_halflife_kimg=1", "optim.betas=[0.0, 0.99]"),
                 marks=pytest.mark.slow),  # style mixing and noise draw from the global RNG; over a second
])
def test_interrupted_and_resumed_run_is_bit_identical(tiny_cfg, extra):
    """Stop mid-epoch (step 21 of 32 or 48), resume, and end exactly where an uninterrupted run ends."""
    full_dir, full = api.train(tiny_cfg(*extra, "run.name=full"), log=lambda s: None)
    part_dir, part = api.train(tiny_cfg(*extra, "run.name=part", "train.max_steps=21"), log=lambda s: None)
    assert part.step == 21
    resumed_dir, resumed = api.train(tiny_cfg(*extra, "run.name=part"), resume="auto", log=lambda s: None)
    assert resumed_dir == part_dir and resumed.step == full.step
    assert_same_state(checkpoint.load(full_dir / "ckpt/last.pt"), checkpoint.load(part_dir / "ckpt/last.pt"))
    steps = [json.loads(line)["step"] for line in (part_dir / "stats.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # no duplicated stats lines after resume

    # Resuming from an earlier checkpoint (as after a kill -9) drops the stats logged after it and logs them again.
    earliest = sorted((part_dir / "ckpt").glob("step_*.pt"))[0]  # a step before the last stats line
    _, again = api.train(tiny_cfg(*extra, "run.name=part"), resume=str(earliest), log=lambda s: None)
    assert_same_state(checkpoint.load(full_dir / "ckpt/last.pt"), checkpoint.load(part_dir / "ckpt/last.pt"))
    rows = [json.loads(line) for line in (part_dir / "stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows}) and rows[-1]["step"] == full.step


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_matches(tmp_path, tiny_cfg):
    """A real process, a real signal: it stops cleanly, and resuming ends where a clean run ends."""
    extra = ("train.epochs=400", "data.max_images=256", "log.ckpt_every_steps=100000", "log.report=true", "run.name=sig")
    args = tiny_overrides(tmp_path, *extra)
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", str(_write_cfg(tmp_path)), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stats = tmp_path / "runs" / "00000-sig" / "stats.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (stats.is_file() and stats.stat().st_size > 0):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "stopped by SIGTERM" in out and "--resume auto" in out
    stopped_at = checkpoint.load(stats.parent / "ckpt/last.pt")["step"]
    summary = json.loads((stats.parent / "report" / "summary.json").read_text())  # the report says so
    assert summary["status"] == "interrupted (SIGTERM)" and summary["step"] == stopped_at
    assert 0 < stopped_at < 400 * 8
    # finish it: resume with fewer epochs than planned is fine (only the architecture is checked)
    resumed_dir, resumed = api.train(validate.load(None, tiny_overrides(tmp_path, *extra[:-1], "run.name=sig",
                                                                      "train.epochs=" + str(stopped_at // 8 + 2))),
                                     resume="auto", log=lambda s: None)
    clean_dir, clean = api.train(validate.load(None, tiny_overrides(tmp_path, *extra[:-1], "run.name=clean",
                                                                  "train.epochs=" + str(stopped_at // 8 + 2))),
                                 log=lambda s: None)
    assert resumed.step == clean.step
    assert_same_state(checkpoint.load(resumed_dir / "ckpt/last.pt"), checkpoint.load(clean_dir / "ckpt/last.pt"))


def _write_cfg(tmp_path: Path) -> Path:
    p = tmp_path / "sig.yaml"
    p.write_text("train:\n  epochs: 1\n")
    return p


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_cfg, monkeypatch):
    from ganforge.recipes.gan import GANRecipe

    real_step = GANRecipe.train_step

    def poisoned(self, x_real):
        stats = real_step(self, x_real)
        if self.pD.updates == 20:
            stats["loss_D"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr(GANRecipe, "train_step", poisoned)
    with pytest.raises(TrainingDiverged, match=r"step 20: loss_D=nan.*last good checkpoint is .*step_0000016.pt"):
        api.train(tiny_cfg(), log=lambda s: None)
    run_dir = next((Path(tiny_cfg().run.dir)).iterdir())
    assert checkpoint.load(run_dir / "ckpt/last.pt")["step"] == 16


def test_resume_refuses_an_architecture_change(tiny_cfg):
    api.train(tiny_cfg("train.max_steps=3"), log=lambda s: None)
    with pytest.raises(CheckpointError, match=r"changes the model \(shapes or latent distribution\):\s+model.width: 16 -> 32"):
        api.train(tiny_cfg("model.width=32"), resume="auto", log=lambda s: None)


def test_resume_auto_without_a_previous_run_starts_fresh_and_says_so(tiny_cfg, capsys):
    run_dir, result = api.train(tiny_cfg("train.max_steps=2"), resume="auto", log=lambda s: None)
    assert result.step == 2
    assert f"has a checkpoint; starting a new run in {run_dir}" in capsys.readouterr().err


def test_checkpoints_rotate(tiny_cfg):
    run_dir, _ = api.train(tiny_cfg("log.ckpt_every_steps=4", "log.ckpt_keep=2"), log=lambda s: None)
    assert sorted(p.name for p in (run_dir / "ckpt").glob("*.pt")) == ["last.pt", "step_0000028.pt",
                                                                        "step_0000032.pt"]


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path, tiny_cfg):
    run_dir, _ = api.train(tiny_cfg("train.max_steps=2"), log=lambda s: None)
    good = (run_dir / "ckpt" / "last.pt").read_bytes()
    (tmp_path / "trunc.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        checkpoint.load(tmp_path / "trunc.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")


def test_atomic_save_never_leaves_half_a_file(tmp_path):
    target = tmp_path / "c.pt"
    checkpoint.save(target, {"x": torch.ones(3)})

    class Boom(Exception):
        pass

    def exploding_save(obj, f):
        f.write(b"partial")
        raise Boom

    import ganforge.checkpoint as ck

    original = ck.torch.save
    ck.torch.save = exploding_save
    try:
        with pytest.raises(Boom):
            checkpoint.save(target, {"x": torch.zeros(3)})
    finally:
        ck.torch.save = original
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_sample_and_export(tmp_path, tiny_run):
    run_dir = tiny_run
    from PIL import Image

    a = api.sample(run_dir / "ckpt/last.pt", 9, tmp_path / "a.png", seed=3)
    out = api.export(run_dir / "ckpt/last.pt", tmp_path / "exp")
    b = api.sample(out, 9, tmp_path / "b.png", seed=3)
    c = api.sample(run_dir, 9, tmp_path / "c.png", seed=4)
    with Image.open(a) as ia, Image.open(b) as ib, Image.open(c) as ic:
        assert ia.size == ib.size and ia.tobytes() == ib.tobytes()  # export = checkpoint's generator
        assert ia.tobytes() != ic.tobytes()  # another seed, other samples
    meta = json.loads((tmp_path / "exp" / "generator.json").read_text())
    assert meta["format"] == checkpoint.EXPORT_FORMAT and meta["step"] == 32


def test_toy_run_draws_scatter_plots(tiny_cfg):
    run_dir, result = api.train(tiny_cfg("data.name=ring", "data.toy_num_samples=512", "model.z_dim=2",
                                         "model.d_dropout=0.0", "log.report=true"), log=lambda s: None)
    assert (run_dir / "samples" / "step_0000032.png").is_file() and (run_dir / "report/progress.gif").is_file()


def test_dry_run_keeps_nothing(tmp_path, tiny_cfg, capsys):
    rc = main(["train", str(_write_cfg(tmp_path)), "--dry-run", *tiny_overrides(tmp_path)])  # overrides after a flag
    assert rc == 0 and "dry run ok" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, code, message", [
    (["train", "configs/nope.yaml"], 2, "config file not found"),
    (["train", "CFG", "train.bacth_size=3"], 2, "did you mean 'train.batch_size'"),
    (["train", "CFG", "model.width=-1"], 2, "model.width=-1 must be positive"),
    (["train", "CFG", "data.name=mnist", "data.root=/nonexistent"], 3, "ganforge data fetch mnist"),
    (["sample", "missing.pt"], 4, "checkpoint not found"),
    (["export", "missing.pt", "--out", "x"], 4, "checkpoint not found"),
    (["train", "CFG", "data.name=mnist-embedded", "data.max_images=10", "train.batch_size=32"], 3, "fewer than train.batch_size"),
])
def test_cli_bad_input_gets_a_message_and_exit_code(tmp_path, isolated_data, capsys, argv, code, message):
    argv = [str(_write_cfg(tmp_path)) if a == "CFG" else a for a in argv]
    if argv[0] == "train" and argv[1] != "configs/nope.yaml":
        argv += [f"run.dir={tmp_path / 'runs'}", "log.progress=false"]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing left behind


def test_cli_resume_with_changed_architecture(tmp_path, capsys):
    cfg = _write_cfg(tmp_path)
    assert main(["train", str(cfg), *tiny_overrides(tmp_path, "train.max_steps=2")]) == 0
    rc = main(["train", str(cfg), *tiny_overrides(tmp_path, "model.z_dim=4"), "--resume", "auto"])
    assert rc == 4 and "model.z_dim: 8 -> 4" in capsys.readouterr().err


def test_cli_sample_refuses_a_foreign_file(tmp_path, capsys):
    (tmp_path / "x.pt").write_bytes(b"this is not a checkpoint")
    assert main(["sample", str(tmp_path / "x.pt")]) == 4
    assert "x.pt: not a ganforge checkpoint" in capsys.readouterr().err


def test_written_files_have_ordinary_permissions(tiny_cfg):
    run_dir, _ = api.train(tiny_cfg("train.max_steps=2"), log=lambda s: None)
    expected = default_file_mode()
    for p in (run_dir / "ckpt/last.pt", run_dir / "export/generator.json", run_dir / "export/generator.safetensors"):
        assert (p.stat().st_mode & 0o777) == expected, p


def test_an_export_removes_what_an_interrupted_export_left_and_nothing_else(tmp_path, tiny_run):
    out = tmp_path / "exp"
    out.mkdir()
    stale = [".generator.json.k2j4h1x0.tmp", ".generator.safetensors.tmp", ".generator.safetensors.a8f3kq9z.tmp",
             ".encoder.safetensors.tmp"]
    for name in stale:
        (out / name).write_bytes(b"half a file")
    (out / ".tmp8ry4af").write_bytes((2).to_bytes(8, "little") + b'{"a": 1}')  # safetensors' own temp name
    kept = {".tmpnotes": b"a user's file", ".tmpab12cd": b"not safetensors", "notes.tmp": b"mine",
            ".other.json.x.tmp": b"another program's"}
    for name, data in kept.items():
        (out / name).write_bytes(data)
    (out / ".generator.json.inprogr.tmp").write_bytes(b"another export, writing now")  # young: left alone
    old = __import__("time").time() - 3600
    for name in [*stale, ".tmp8ry4af", *kept]:
        os.utime(out / name, (old, old))  # an hour ago: left by a killed writer
    api.export(tiny_run, out)
    names = {p.name for p in out.iterdir()}
    assert names == {"generator.json", "generator.safetensors", ".generator.json.inprogr.tmp", *kept}
    assert all((out / n).read_bytes() == d for n, d in kept.items())


def test_precision_modes_train_and_keep_float32_weights(tiny_cfg):
    for precision in ("bf16", "fp16"):
        run_dir, result = api.train(tiny_cfg(f"train.precision={precision}", f"run.name={precision}"), log=lambda s: None)
        ckpt = checkpoint.load(run_dir / "ckpt/last.pt")
        G = ckpt["recipe"]["players"]["G"]
        assert all(v.dtype == torch.float32 for v in G["net"].values() if v.is_floating_point())
        assert all(math.isfinite(v) for v in result.last_stats.values())
        assert G["scaler"] if precision == "fp16" else True


@pytest.mark.slow
def test_kill_9_never_leaves_a_broken_checkpoint(tmp_path):
    """SIGKILL while checkpoints are written every step: the newest checkpoint still loads, no
    temporary file is mistaken for one, and --resume auto continues from it."""
    args = tiny_overrides(tmp_path, "train.epochs=400", "data.max_images=256", "log.ckpt_every_steps=1",
                          "log.ckpt_keep=2", "run.name=k9")
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", str(_write_cfg(tmp_path)), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt_dir = tmp_path / "runs" / "00000-k9" / "ckpt"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(ckpt_dir.glob("step_*.pt"))) < 2:
        time.sleep(0.02)
    time.sleep(0.5)
    proc.kill()
    proc.wait(timeout=30)
    ckpt = checkpoint.load(ckpt_dir / "last.pt")
    assert ckpt["step"] >= 2
    for p in ckpt_dir.glob("step_*.pt"):
        checkpoint.load(p)  # every complete-looking checkpoint is complete
    cfg = validate.load(None, tiny_overrides(tmp_path, "train.epochs=400", "data.max_images=256", "run.name=k9",
                                           f"train.max_steps={ckpt['step'] + 3}"))
    _, result = api.train(cfg, resume="auto", log=lambda s: None)
    assert result.step == ckpt["step"] + 3
    assert not list(ckpt_dir.glob(".*.tmp"))  # a killed write's temporary file is cleaned up


def test_channels_last_computes_the_same_step(tiny_cfg):
    """NHWC layout changes the strides, not the maths: the first step's losses and D outputs agree
    with the default layout, the conv weights really are NHWC, and the export still writes."""
    from ganforge.data import build_dataset
    from ganforge.recipes import build_recipe

    stats = {}
    for layout in ("false", "true"):
        cfg = tiny_cfg("model.arch=dcgan", "model.width=8", f"train.channels_last={layout}")
        torch.manual_seed(0)
        data = build_dataset(cfg.data)
        recipe = build_recipe(cfg, data, torch.device("cpu"))
        conv = next(m for m in recipe.D.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
        assert conv.weight.is_contiguous(memory_format=torch.channels_last) == (layout == "true")
        stats[layout] = {k: float(v) for k, v in recipe.train_step(data.batch(torch.arange(32))).items()}
    for key, value in stats["false"].items():
        assert stats["true"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    run_dir, _ = api.train(tiny_cfg("model.arch=dcgan", "model.width=8", "train.channels_last=true",
                                    "train.max_steps=3", "run.name=nhwc"), log=lambda s: None)
    assert (run_dir / "export/generator.safetensors").is_file()


@pytest.mark.slow
def test_compiled_nets_compute_the_same_step(tiny_cfg):
    """train.compile=true (TorchInductor) fuses kernels but keeps the maths: first-step losses
    agree with eager mode, and a short run with dropout trains, checkpoints and exports."""
    from ganforge.data import build_dataset
    from ganforge.recipes import build_recipe

    stats = {}
    for compiled in ("false", "true"):
        cfg = tiny_cfg("model.d_dropout=0.0", f"train.compile={compiled}")
        torch.manual_seed(0)
        data = build_dataset(cfg.data)
        recipe = build_recipe(cfg, data, torch.device("cpu"))
        stats[compiled] = {k: float(v) for k, v in recipe.train_step(data.batch(torch.arange(32))).items()}
    for key, value in stats["false"].items():
        assert stats["true"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    run_dir, result = api.train(tiny_cfg("train.compile=true", "train.max_steps=3", "run.name=compiled"),
                                log=lambda s: None)
    assert result.step == 3 and (run_dir / "export/generator.safetensors").is_file()


def test_precision_auto_picks_what_the_device_computes_natively(tiny_cfg):
    """The expectation comes from lscpu, not from the code under test: bf16 on a CPU with AMX."""
    import shutil
    import subprocess

    if shutil.which("lscpu") is None:
        pytest.skip("lscpu (util-linux) is not installed")
    flags = subprocess.run(["lscpu"], capture_output=True, text=True, env={"LC_ALL": "C"}).stdout
    run_dir, _ = api.train(tiny_cfg("train.precision=auto", "train.max_steps=2"), log=lambda s: None)
    expected = "bf16" if " amx_bf16" in flags else "fp32"
    assert f"precision {expected}," in (run_dir / "log.txt").read_text()


def test_simultaneous_update_applies_each_players_own_gradient(tiny_cfg):
    """train.update=simultaneous (the paper's code): D moves along -grad of loss_D and G along
    -grad of loss_G, both taken at the same parameters from one forward pass."""
    import copy

    from ganforge.core import latent
    from ganforge import losses
    from ganforge.data import build_dataset
    from ganforge.recipes import build_recipe

    cfg = tiny_cfg("model.d_dropout=0.0", "train.update=simultaneous", "optim.kind=sgd", "optim.momentum=0.0",
                   "optim.momentum_final=0.0", "optim.lr_G=0.1", "optim.lr_D=0.1")
    data = build_dataset(cfg.data)
    recipe = build_recipe(cfg, data, torch.device("cpu"))
    G0, D0 = copy.deepcopy(recipe.G), copy.deepcopy(recipe.D)
    z = latent.sample_z(32, 8, "normal", torch.Generator().set_state(recipe.z_rng.get_state()))
    x_real = data.samples(32)
    logits = D0(torch.cat([x_real, G0(z)]))
    loss_D = losses.d_loss(logits[:32], logits[32:])
    loss_G = losses.g_loss("ns", logits[32:])
    grads_D = torch.autograd.grad(loss_D, list(D0.parameters()), retain_graph=True)
    grads_G = torch.autograd.grad(loss_G, list(G0.parameters()))
    stats = recipe.train_step({"x": x_real})
    assert float(stats["loss_D"]) == pytest.approx(float(loss_D.detach()), rel=1e-5)
    for net, net0, grads in ((recipe.D, D0, grads_D), (recipe.G, G0, grads_G)):
        for p, p0, g in zip(net.parameters(), net0.parameters(), grads):
            torch.testing.assert_close(p.detach(), p0.detach() - 0.1 * g, rtol=1e-5, atol=1e-6)
    assert recipe.players["G"].updates == recipe.players["D"].updates == 1


def test_simultaneous_update_needs_k_1():
    with pytest.raises(config.ConfigError, match="train.n_dis=1"):
        validate.load(None, ["train.update=simultaneous", "train.n_dis=2"])


def test_max_minutes_stops_on_training_time_and_counts_it_over_a_resume(tiny_cfg, monkeypatch):
    # A clock that advances 0.5 s per reading, so training time is known exactly.
    from ganforge.engine import trainer as trainer_mod

    ticks = iter(range(10**6))
    monkeypatch.setattr(trainer_mod.time, "perf_counter", lambda: next(ticks) * 0.5)
    said = []
    run_dir, result = api.train(tiny_cfg("train.max_minutes=0.1", "run.name=budget"), log=said.append)
    # 6 s of budget: each step adds at least 0.5 s; the check is made before a step, so it stops
    # on the first step that starts at or past 6 s, and well before the schedule's 32 steps.
    assert 6 <= result.train_time_s < 6 + 3 and 4 <= result.step < 32
    assert any("train.max_minutes=0.1 of training time reached" in s for s in said)
    assert "max_minutes" in (run_dir / "log.txt").read_text()
    # Resumed with a larger budget: the clock goes on from the checkpoint's 6 s, not from 0.
    _, more = api.train(tiny_cfg("train.max_minutes=0.2", "run.name=budget"), resume=str(run_dir), log=lambda s: None)
    assert 12 <= more.train_time_s < 12 + 3 and result.step < more.step < 32
    assert api.train(tiny_cfg("run.name=budget2"), log=lambda s: None)[1].step == 32  # 0 = no limit
    with pytest.raises(Exception, match="train.max_minutes=-1"):
        tiny_cfg("train.max_minutes=-1")


def test_the_result_tells_training_time_from_wall_time(tiny_cfg):
    """train_time_s counts training steps only; wall_s is the whole fit (grids and checkpoints too)."""
    _, result = api.train(tiny_cfg("train.max_steps=6", "log.sample_every_steps=2"), log=lambda s: None)
    assert 0 < result.train_time_s < result.wall_s
