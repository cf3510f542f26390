"""The user's files and folders as they come: loose checkpoints, orphan runs, image folders with
transparency, 16-bit PNGs, animated GIFs, broken links and EXIF orientation."""

import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_overrides, tiny_yaml
from ganforge import api, cli, validate
from ganforge.data import build_dataset
from ganforge.data.folder import load_folder
from ganforge.core.paths import RUN_MARKER as MARKER
from ganforge.engine.run import runs_of


def _tree(root):
    """{relative path: bytes} of every file under root."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- 1. nothing written outside a run folder ganforge made ---------------------------------------

def test_resuming_a_loose_checkpoint_starts_a_new_run_and_touches_nothing_beside_it(tmp_path, capsys, monkeypatch):
    run_dir, _ = api.train(validate.load(None, tiny_overrides(tmp_path, "train.epochs=1")), log=lambda s: None)
    home = tmp_path / "home"
    (home / "Downloads").mkdir(parents=True)
    shutil.copy(run_dir / "ckpt" / "last.pt", home / "Downloads" / "model.pt")
    (home / "config.yaml").write_text("sentinel: the user's own file\n")
    before = _tree(home)
    monkeypatch.chdir(home / "Downloads")
    for resume in (str(home / "Downloads" / "model.pt"), "model.pt"):  # absolute and relative
        code = cli.main(["train", str(tiny_yaml(tmp_path)), "--resume", resume,
                         "train.epochs=2"])
        assert code == 0
        assert _tree(home) == before  # the sentinel and everything else beside the checkpoint untouched
        assert "is not inside a ganforge run folder" in capsys.readouterr().err
    runs = runs_of(tmp_path / "runs", "tiny")
    assert len(runs) == 3  # the original and one new run per resume
    new = runs[-1][1]
    assert (new / MARKER).is_file() and (new / "ckpt" / "last.pt").is_file()
    assert "seeded from the loose checkpoint" in (new / "log.txt").read_text()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_resume_auto_restarts_in_a_run_folder_killed_before_its_first_checkpoint(tmp_path, capsys):
    """A real process, killed with SIGKILL before its first checkpoint: its lock dies with it, and
    `--resume auto` starts over in its folder instead of leaving an orphan."""
    import signal
    import subprocess
    import sys
    import time

    overrides = tiny_overrides(tmp_path, "train.epochs=1000", "log.ckpt_every_steps=1000000")
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", str(tiny_yaml(tmp_path)), *overrides],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            runs = runs_of(tmp_path / "runs")
            if runs and "start at step 0" in ((runs[0][1] / "log.txt").read_text()
                                               if (runs[0][1] / "log.txt").is_file() else ""):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training process did not start")
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (run_dir,) = [p for _, p in runs_of(tmp_path / "runs")]
    assert not (run_dir / "ckpt").exists() or not any((run_dir / "ckpt").iterdir())
    (run_dir / "stray.txt").write_text("left by the dead run")
    again, _ = api.train(validate.load(None, tiny_overrides(tmp_path, "train.max_steps=4")), resume="auto",
                         log=lambda s: None)
    assert again == run_dir and len(runs_of(tmp_path / "runs")) == 1  # no orphans piling up
    assert not (run_dir / "stray.txt").exists()
    assert "stopped before its first checkpoint; starting over in that folder" in capsys.readouterr().err


def test_resume_auto_leaves_a_checkpoint_less_run_alone_while_a_process_holds_it(tmp_path):
    from ganforge.engine.run import RunDir

    cfg = lambda: validate.load(None, tiny_overrides(tmp_path, "train.max_steps=4"))  # noqa: E731
    run_dir, _ = api.train(cfg(), log=lambda s: None)
    shutil.rmtree(run_dir / "ckpt")
    live = RunDir.resume(run_dir)  # as a run still in its first steps holds its folder
    try:
        again, _ = api.train(cfg(), resume="auto", log=lambda s: None)
        assert again != run_dir and (run_dir / "log.txt").is_file()  # untouched
        from ganforge.core.errors import CheckpointError

        with pytest.raises(CheckpointError, match="in use by another ganforge process"):
            RunDir.resume(run_dir)
    finally:
        live.release()


def test_a_second_resume_auto_says_nothing_until_it_holds_the_lock(tmp_path, capsys):
    from ganforge.core.errors import CheckpointError
    from ganforge.engine.run import RunDir

    cfg = lambda: validate.load(None, tiny_overrides(tmp_path, "train.max_steps=4"))  # noqa: E731
    run_dir, _ = api.train(cfg(), log=lambda s: None)
    said = []
    live = RunDir.resume(run_dir)  # the first `--resume auto`, still training
    try:
        with pytest.raises(CheckpointError, match="in use by another ganforge process"):
            api.train(cfg(), resume="auto", log=said.append)
    finally:
        live.release()
    assert not any("resuming" in line for line in said) and "resuming" not in capsys.readouterr().err


def test_a_checkpoint_replaced_while_resuming_is_not_resumed_from_its_old_version(tmp_path, monkeypatch):
    from ganforge import training
    from ganforge.core.errors import CheckpointError

    cfg = lambda *extra: validate.load(None, tiny_overrides(tmp_path, "log.ckpt_every_steps=2", *extra))  # noqa: E731
    run_dir, _ = api.train(cfg("train.max_steps=4"), log=lambda s: None)
    real = training._run_folder

    def another_process_finishes_first(*args, **kwargs):  # between loading last.pt and taking the lock
        shutil.copy(run_dir / "ckpt" / "step_0000002.pt", run_dir / "ckpt" / ".new")
        os.replace(run_dir / "ckpt" / ".new", run_dir / "ckpt" / "last.pt")
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "_run_folder", another_process_finishes_first)
    with pytest.raises(CheckpointError, match="changed while this process was resuming it"):
        api.train(cfg("train.max_steps=8"), resume="auto", log=lambda s: None)


def test_runs_of_one_name_never_share_a_folder_however_many_collide(tmp_path, monkeypatch):
    from ganforge.engine import run as run_mod

    cfg = validate.load(None, tiny_overrides(tmp_path, "run.name=same"))
    made = [run_mod.RunDir.new(cfg) for _ in range(101)]  # 101 runs of the same name
    assert len({r.path for r in made}) == 101 and all(r.path.parent == tmp_path / "runs" for r in made)
    (made[50].path / "ckpt").mkdir()
    (made[50].path / "ckpt" / "last.pt").write_bytes(b"a run's checkpoint")
    for r in made:
        r.release()
    # a listing that never sees the existing folders (as when other processes race this one): still new folders
    monkeypatch.setattr(run_mod, "_next_index", lambda root: 0)
    fresh = [run_mod.RunDir.new(cfg) for _ in range(3)]
    assert not {r.path for r in fresh} & {r.path for r in made}
    assert (made[50].path / "ckpt" / "last.pt").read_bytes() == b"a run's checkpoint"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [f"{i:05d}-same" for i in range(104)]


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", ".", "x\\y", "tab\there", "n" * 201])
def test_a_run_name_that_is_not_one_folder_name_is_refused_and_nothing_is_made(tmp_path, capsys, name):
    code = cli.main(["train", str(tiny_yaml(tmp_path)), f"run.name={name}"])
    assert code == 2 and "must be one plain folder name" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_finished_run_without_checkpoints_but_with_an_export_is_not_an_orphan(tmp_path):
    cfg = lambda: validate.load(None, tiny_overrides(tmp_path, "train.max_steps=4"))  # noqa: E731
    run_dir, _ = api.train(cfg(), log=lambda s: None)
    shutil.rmtree(run_dir / "ckpt")  # a user saving space keeps the export
    again, _ = api.train(cfg(), resume="auto", log=lambda s: None)
    assert again != run_dir and (run_dir / "export" / "generator.safetensors").is_file()


def test_a_folder_without_the_marker_is_never_treated_as_a_run(tmp_path):
    from ganforge.engine.run import run_of_checkpoint

    (tmp_path / "00001-x" / "ckpt").mkdir(parents=True)
    (tmp_path / "00001-x" / "ckpt" / "a.pt").write_bytes(b"")
    assert run_of_checkpoint(tmp_path / "00001-x" / "ckpt" / "a.pt") is None  # no config.yaml / log.txt
    (tmp_path / "00001-x" / MARKER).write_text("ganforge\n")
    assert run_of_checkpoint(tmp_path / "00001-x" / "ckpt" / "a.pt") == (tmp_path / "00001-x").resolve()


# --- 2. image folders as users have them ---------------------------------------------------------

def _apple(size=32):
    """An RGBA icon: an opaque red disc; the transparent pixels store pure green (as exporters
    often leave them), which must never show."""
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 1] = 255
    rgba[disc] = (220, 0, 0, 255)
    return Image.fromarray(rgba, "RGBA"), disc


@pytest.mark.parametrize("background,rgb", [("white", (255, 255, 255)), ("black", (0, 0, 0)), ("#336699", (51, 102, 153))])
def test_transparent_pixels_are_composited_onto_the_background(tmp_path, background, rgb):
    icon, disc = _apple()
    icon.save(tmp_path / "apple.png")
    x, _, _, _ = load_folder(tmp_path, 32, 3, labels=False, background=background)
    img = x[0].transpose(1, 2, 0).astype(int)
    corner = img[:4, :4].reshape(-1, 3)
    assert (np.abs(corner - rgb) <= 1).all()  # the stored green is gone
    centre = img[14:18, 14:18].reshape(-1, 3)
    assert (np.abs(centre - (220, 0, 0)) <= 2).all()


def test_la_and_palette_transparency_are_composited(tmp_path):
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0] = 30  # dark grey stored under transparency
    la[4:12, 4:12] = (0, 255)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.paste(0, (4, 4, 12, 12))
    pal.save(tmp_path / "pal.png", transparency=1)  # index 1 (green) is transparent
    x, _, _, _ = load_folder(tmp_path, 16, 1, labels=False, background="white")
    for img in x[:, 0]:  # la.png, pal.png: white outside, black inside
        assert img[0, 0] >= 254 and img[8, 8] <= 1


def test_16_bit_pngs_are_rescaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert Image.open(tmp_path / "ramp16.png").mode.startswith("I;16")
    x, _, _, _ = load_folder(tmp_path, 64, 1, labels=False)
    assert abs(x.mean() - ramp.mean() / 257) < 1.0  # ~127.5; Pillow's own convert("L") gives ~254.5


def test_every_skipped_file_is_named_and_gifs_give_their_first_frame(tmp_path):
    Image.new("RGB", (8, 8), (10, 20, 30)).save(tmp_path / "ok.png")
    frames = [Image.new("L", (8, 8), v) for v in (200, 50)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    with pytest.warns(UserWarning) as caught:
        x, _, _, scan = load_folder(tmp_path, 8, 1, labels=False)
    message = str(caught[0].message)
    for name in ("anim.gif", "dangling.png", "notes.txt", "broken.jpg"):
        assert name in message
    assert "first frame" in message and "broken link" in message
    assert len(x) == 2 and scan.num_skipped == 3
    assert abs(int(x[0, 0, 0, 0]) - 200) <= 1  # anim.gif sorts first: its first frame


def test_exif_orientation_is_respected(tmp_path):
    stored = np.zeros((8, 16), np.uint8)
    stored[:, :8] = 255  # stored: white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the white half ends up on top
    Image.fromarray(stored).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    x, _, _, _ = load_folder(tmp_path, 8, 1, labels=False)
    img = x[0, 0]
    assert img[:2].mean() > 200 and img[-2:].mean() < 50


def test_a_folder_smaller_than_the_batch_says_what_was_found_and_skipped(tmp_path):
    root = tmp_path / "few"
    root.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i, i, i)).save(root / f"{i}.png")
    (root / "bad.png").write_bytes(b"")
    cfg = validate.load(None, tiny_overrides(tmp_path, "data.name=folder", f"data.root={root}", "data.resolution=8",
                                           "data.channels=3", "model.arch=dcgan", "train.batch_size=16"))
    from ganforge.core.errors import DataError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"3 image\(s\) read from .*few, 1 file\(s\) skipped \(1 unreadable.*"
                                            r"fewer than train.batch_size=16; lower the batch size"):
            api.train(cfg, log=lambda s: None)


def test_cli_warnings_are_one_line_without_source(tmp_path, capsys):
    root = tmp_path / "imgs"
    root.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i, i, i)).save(root / f"{i}.png")
    (root / "junk.png").write_bytes(b"junk")
    code = cli.main(["train", str(tiny_yaml(tmp_path)), "data.name=folder", f"data.root={root}",
                     "data.resolution=8", "data.channels=1", "train.batch_size=2", "train.max_steps=1",
                     "eval.every_steps=0", "health.every_steps=0"])
    err = capsys.readouterr().err
    assert code == 0
    lines = [line for line in err.splitlines() if "junk.png" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "warnings.warn" not in err


def test_folder_data_flows_through_build_dataset_with_the_background(tmp_path):
    _apple()[0].save(tmp_path / "a.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean folder warns about nothing
        data = build_dataset(validate.load(None, ["data.name=folder", f"data.root={tmp_path}", "data.resolution=32",
                                                "data.channels=3", "data.background=black"]).data)
    assert data.x[0, :, 0, 0].tolist() == [0, 0, 0]
    with pytest.raises(Exception, match=r"data.background='pink': use white, black or a colour as #rrggbb"):
        validate.load(None, ["data.name=folder", f"data.root={tmp_path}", "data.background=pink"])


def test_run_folders_inside_the_image_folder_are_not_data(tmp_path):
    for i in range(4):
        Image.new("RGB", (8, 8), (i, i, i)).save(tmp_path / f"{i}.png")
    cfg = validate.load(None, tiny_overrides(tmp_path, "data.name=folder", f"data.root={tmp_path}", "data.resolution=8",
                                           "data.channels=1", "train.batch_size=2", "train.max_steps=1"))
    api.train(cfg, log=lambda s: None)  # run.dir is tmp_path/runs: inside the images' folder
    with pytest.warns(UserWarning, match="inside ganforge run folders"):
        x, _, _, scan = load_folder(tmp_path, 8, 1, labels=False)
    assert len(x) == 4


# --- 3. a full disk ----------------------------------------------------------------------------------

def _fill_disk_then_resume(tmp_path, run_dir: Path, capsys, fill) -> str:
    """Train to step 4 (checkpoints every 2 steps), make the next checkpoint write fail with
    `fill`, resume to step 8: the error line, after checking that nothing good was lost."""
    yaml_path = tiny_yaml(tmp_path)
    args = ["train", str(yaml_path), f"run.dir={run_dir}", "log.ckpt_every_steps=2"]
    assert cli.main([*args, "train.max_steps=4"]) == 0
    run = runs_of(run_dir)[0][1]
    good = (run / "ckpt" / "last.pt").read_bytes()
    capsys.readouterr()
    with fill():
        code = cli.main([*args, "train.max_steps=8", "--resume", "auto"])
    err = capsys.readouterr().err
    assert code == 4 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert (run / "ckpt" / "last.pt").read_bytes() == good  # the last good checkpoint is untouched
    assert not [p.name for p in (run / "ckpt").iterdir() if p.name.startswith(".")]  # no partial file left
    assert cli.main([*args, "train.max_steps=8", "--resume", "auto"]) == 0  # space back: it goes on
    assert torch.load(run / "ckpt" / "last.pt", weights_only=True)["step"] == 8
    return lines[0]


def test_a_checkpoint_write_failing_as_torch_fails_on_a_full_disk_is_one_clear_line(tmp_path, capsys, monkeypatch):
    import contextlib

    def short_write(obj, f):  # what torch's zip writer does when the disk fills mid-file
        f.write(b"PK\x03\x04 the first bytes")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    @contextlib.contextmanager
    def fill():
        with monkeypatch.context() as m:
            m.setattr(torch, "save", short_write)
            yield

    line = _fill_disk_then_resume(tmp_path, tmp_path / "runs", capsys, fill)
    assert "could not write the checkpoint step_0000006.pt" in line and "--resume auto" in line, line


def test_a_real_full_disk_during_a_checkpoint_is_one_clear_line(tmp_path, capsys):
    import contextlib
    import subprocess

    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root (the monkeypatched test above covers the same path)")

    @contextlib.contextmanager
    def fill():
        filler = disk / "filler"
        free = shutil.disk_usage(disk).free
        ckpt = next((disk / "runs").rglob("last.pt")).stat().st_size
        with open(filler, "wb") as f:  # leave room for the logs' next lines, not for a checkpoint
            f.write(b"\0" * (free - ckpt // 3))
        try:
            yield
        finally:
            filler.unlink()

    try:
        line = _fill_disk_then_resume(tmp_path, disk / "runs", capsys, fill)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    assert "could not write the checkpoint" in line and "the disk is full" in line and "--resume auto" in line, line
