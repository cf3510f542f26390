"""data.storage: a folder's images decoded into memory, into a cache file later runs map, or read
from the files as training goes; the same images and batches whichever holds them."""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import api, checkpoint, validate
from ganforge.core.errors import ConfigError, DataError
from ganforge.data import build_dataset
from ganforge.data.dataset import LazyImages
from ganforge.data.folder import DataWarning

from conftest import tiny_overrides


def make_folder(root: Path, n: int = 40, size: int = 20, seed: int = 0) -> Path:
    """n small RGB PNGs in two sub-folders, each image different."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(sub / f"{i:03d}.png")
    return root


def folder_cfg(root: Path, tmp_path: Path, *extra: str):
    return validate.load(None, tiny_overrides(tmp_path, "data.name=folder", f"data.root={root}", "data.resolution=16",
                                              "data.channels=3", "model.arch=dcgan", "model.width=4", "train.batch_size=8",
                                              *extra))


def load(root: Path, tmp_path: Path, *extra: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        cfg = folder_cfg(root, tmp_path, *extra)
        return build_dataset(cfg.data, cfg.train.seed)


def cache_files(folder_cache: Path) -> set[str]:
    return {p.name for p in folder_cache.iterdir() if p.suffix in (".npy", ".json")}


def test_the_cache_is_written_once_and_mapped_after(tmp_path, folder_cache):
    root = make_folder(tmp_path / "img")
    (root / "a" / "broken.png").write_bytes(b"not a png")
    before = cache_files(folder_cache)
    in_memory = load(root, tmp_path, "data.storage=memory")
    assert cache_files(folder_cache) == before  # memory writes nothing
    with pytest.warns(DataWarning, match="broken.png"):
        first = build_dataset(folder_cfg(root, tmp_path, "data.storage=cache").data)
    made = cache_files(folder_cache) - before
    assert len(made) == 2 and "decoded into the cache" in first.extra["storage"]
    with pytest.warns(DataWarning, match="broken.png"):  # the skipped file is named again from the cache
        second = build_dataset(folder_cfg(root, tmp_path, "data.storage=cache").data)
    assert "mapped the cached decode" in second.extra["storage"]
    assert cache_files(folder_cache) - before == made
    assert len(in_memory) == len(first) == len(second) == 40
    assert torch.equal(in_memory.x, first.x) and torch.equal(in_memory.x, second.x)
    assert first.classes == second.classes


def test_a_changed_added_or_removed_file_makes_a_new_cache(tmp_path, folder_cache):
    root = make_folder(tmp_path / "img", n=10)
    old = load(root, tmp_path, "data.storage=cache")
    target = root / "a" / "001.png"
    Image.fromarray(np.zeros((20, 20, 3), dtype=np.uint8)).save(target)
    os.utime(target, ns=(1, 1))  # a different time as well as different pixels
    changed = load(root, tmp_path, "data.storage=cache")
    assert "decoded into the cache" in changed.extra["storage"]
    i = 0  # 001.png sorts first under a/
    assert not torch.equal(old.x[i], changed.x[i]) and int(changed.x[i].max()) == 0
    Image.fromarray(np.full((20, 20, 3), 255, dtype=np.uint8)).save(root / "a" / "999.png")
    assert len(load(root, tmp_path, "data.storage=cache")) == 11
    (root / "a" / "999.png").unlink()
    again = load(root, tmp_path, "data.storage=cache")
    assert "mapped the cached decode" in again.extra["storage"] and torch.equal(again.x, changed.x)


def test_a_decode_that_fails_half_way_leaves_no_cache(tmp_path, folder_cache, monkeypatch):
    from ganforge.data import folder

    root = make_folder(tmp_path / "img", n=10)
    before = set(folder_cache.iterdir())
    calls = {"n": 0}
    real = folder.load_image

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # Ctrl-C half way through the decode
        return real(*args, **kwargs)

    monkeypatch.setattr(folder, "load_image", dies)
    with pytest.raises(KeyboardInterrupt):
        load(root, tmp_path, "data.storage=cache")
    assert {p for p in folder_cache.iterdir() if p.suffix != ".lock"} == {p for p in before if p.suffix != ".lock"}
    monkeypatch.setattr(folder, "load_image", real)
    assert "decoded into the cache" in load(root, tmp_path, "data.storage=cache").extra["storage"]


def test_auto_streams_what_does_not_fit_the_memory_budget(tmp_path):
    root = make_folder(tmp_path / "img", n=10)
    assert "cache" in load(root, tmp_path).extra["storage"]
    small = load(root, tmp_path, "data.memory_budget_gb=0.000001")
    assert isinstance(small.x, LazyImages) and "more than the memory budget" in small.extra["storage"]
    assert torch.equal(small.x[torch.arange(10)], load(root, tmp_path, "data.storage=memory").x)


def test_streamed_batches_are_the_cached_batches(tmp_path):
    root = make_folder(tmp_path / "img")
    streamed, cached = load(root, tmp_path, "data.storage=stream"), load(root, tmp_path, "data.storage=cache")
    plan = [(s, torch.randperm(40, generator=torch.Generator().manual_seed(s))[:8]) for s in range(6)]
    got = list(streamed.feed(iter(plan), workers=2))
    want = list(cached.feed(iter(plan)))
    assert [s for s, _ in got] == list(range(6))
    for (_, a), (_, b) in zip(got, want):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # read a chunk at a time when streamed, all at once otherwise
    torch.testing.assert_close(streamed.pixel_mean(), cached.pixel_mean(), atol=1e-6, rtol=0)


def test_a_streamed_run_trains_as_a_cached_one_and_resumes_exactly(tmp_path):
    root = make_folder(tmp_path / "img")
    runs = {}
    for name, extra in (("cached", ("data.storage=cache",)), ("streamed", ("data.storage=stream", "data.workers=1")),
                        ("resumed", ("data.storage=stream", "data.workers=1", "train.max_steps=7"))):
        cfg = folder_cfg(root, tmp_path, *extra, "train.epochs=2", f"run.name={name}")
        runs[name], _ = api.train(cfg, log=lambda s: None)
    cfg = folder_cfg(root, tmp_path, "data.storage=stream", "data.workers=1", "train.epochs=2", "run.name=resumed")
    api.train(cfg, resume="auto", log=lambda s: None)
    last = {n: checkpoint.load(p / "ckpt" / "last.pt") for n, p in runs.items()}
    assert last["cached"]["step"] == last["streamed"]["step"] == last["resumed"]["step"] == 10
    for n in ("streamed", "resumed"):
        for player in ("G", "D"):
            a, b = last["cached"]["recipe"]["players"][player]["net"], last[n]["recipe"]["players"][player]["net"]
            assert all(torch.equal(a[k], b[k]) for k in a), (n, player)
    assert "streamed from the files" in (runs["streamed"] / "log.txt").read_text()


def test_a_file_broken_after_the_start_of_a_streamed_run_is_named(tmp_path):
    root = make_folder(tmp_path / "img", n=10)
    data = load(root, tmp_path, "data.storage=stream")
    victim = root / "a" / "001.png"
    victim.write_bytes(victim.read_bytes()[:60])  # the header still opens; the pixels are gone
    with pytest.raises(DataError, match="001.png: could not be read while streaming"):
        data.x[torch.arange(10)]


def test_storage_is_for_folders(tmp_path):
    with pytest.raises(ConfigError, match="data.storage=stream is for image folders"):
        validate.load(None, tiny_overrides(tmp_path, "data.storage=stream"))
    with pytest.raises(ConfigError, match="data.workers"):
        validate.load(None, tiny_overrides(tmp_path, "data.workers=-1"))


def test_the_cache_is_listed_and_cleared_by_the_cli(tmp_path, folder_cache, capsys):
    from ganforge import cli

    root = make_folder(tmp_path / "img", n=6)
    load(root, tmp_path, "data.storage=cache")
    assert cli.main(["data", "cache"]) == 0
    listed = capsys.readouterr().out
    assert str(root.resolve()) in listed and "6 images" in listed
    assert cli.main(["data", "cache", "--clear"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not any(folder_cache.glob("*.npy")) and all(p.is_file() for p in root.rglob("*.png"))
    assert "decoded into the cache" in load(root, tmp_path, "data.storage=cache").extra["storage"]


def test_auto_decodes_into_memory_where_the_cache_cannot_be_written(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "img", n=6)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("GANFORGE_FOLDER_CACHE", str(blocker / "cache"))  # below a file: cannot be made
    data = load(root, tmp_path)
    assert "decoded into memory" in data.extra["storage"] and "not cached" in data.extra["storage"]
    with pytest.raises(DataError, match="cannot make the folder cache"):
        load(root, tmp_path, "data.storage=cache")


def test_a_damaged_or_half_written_cache_is_decoded_again(tmp_path, folder_cache):
    root = make_folder(tmp_path / "img", n=6)
    first = load(root, tmp_path, "data.storage=cache")
    key = Path(first.extra["storage"].split("cache ", 1)[1].split(" ")[0]).stem
    (folder_cache / f"{key}.json").write_text("")  # as a crash between create and write would leave it
    (folder_cache / f"{key}.4242.tmp.npy").write_bytes(b"left by a killed decode")
    again = load(root, tmp_path, "data.storage=cache")
    assert "decoded into the cache" in again.extra["storage"] and torch.equal(first.x, again.x)
    assert not list(folder_cache.glob(f"{key}.*.tmp*"))
