import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import validate
from ganforge.data import build_dataset, load_embedded_mnist, load_idx_split
from ganforge.data.idx import read_idx
from ganforge.data.folder import load_folder
from ganforge.data.toy import grid_centres, ring_centres
from ganforge.core.errors import ConfigError, DataError

from conftest import needs_mnist


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, a.ndim]) + b"".join(d.to_bytes(4, "big") for d in a.shape) + a.tobytes()


def write_fake_mnist(folder: Path, n_train=20, n_test=10, gz=True):
    """Tiny but well-formed IDX files with the official names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return images


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / ("a.idx.gz" if gz else "a.idx")
    p.write_bytes(gzip.compress(idx_bytes(a)) if gz else idx_bytes(a))
    np.testing.assert_array_equal(read_idx(p), a)


def test_idx_truncated_and_foreign_files_are_refused(tmp_path):
    a = np.zeros((4, 28, 28), dtype=np.uint8)
    (tmp_path / "short").write_bytes(idx_bytes(a)[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(tmp_path / "short")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "png")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(idx_bytes(a))[:40])
    with pytest.raises(DataError, match="cannot read"):
        read_idx(tmp_path / "bad.gz")


def test_search_path_finds_env_folder_and_root(tmp_path, isolated_data, monkeypatch):
    write_fake_mnist(tmp_path / "via_env" / "mnist")
    with pytest.raises(DataError) as e:
        load_idx_split("mnist", "train")
    msg = str(e.value)
    assert "ganforge data fetch mnist" in msg and str(tmp_path / "cache") in msg and "GANFORGE_DATA" in msg
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "via_env"))
    images, labels, source = load_idx_split("mnist", "train")
    assert images.shape == (20, 28, 28) and source == str(tmp_path / "via_env" / "mnist")
    # data.root is searched first, raw (uncompressed) files work too
    write_fake_mnist(tmp_path / "explicit" / "mnist", n_train=30, gz=False)
    images, _, source = load_idx_split("mnist", "train", root=str(tmp_path / "explicit"))
    assert images.shape == (30, 28, 28) and source.startswith(str(tmp_path / "explicit"))


def test_dataset_tensor_ranges(tmp_path, isolated_data, monkeypatch):
    write_fake_mnist(tmp_path / "d" / "mnist")
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "d"))
    signed = build_dataset(validate.load(None, ["data.range=signed"]).data)
    unit = build_dataset(validate.load(None, ["data.range=unit"]).data)
    assert signed.x.shape == (20, 1, 28, 28) and signed.x.dtype == torch.uint8  # stored as the files hold them
    s, u = signed.samples(), unit.samples()
    assert s.dtype == torch.float32 and s.min() == -1 and s.max() == 1
    assert u.min() == 0 and u.max() == 1
    torch.testing.assert_close(s, u * 2 - 1)
    assert signed.y.tolist() == [i % 10 for i in range(20)]
    # a batch is a dict: float samples converted where they are used, labels beside them
    batch = signed.batch(torch.tensor([3, 0]))
    assert set(batch) == {"x", "c"} and batch["c"].tolist() == [3, 0]
    torch.testing.assert_close(batch["x"], s[[3, 0]])


def test_embedded_mnist_is_the_first_10000_training_images():
    images, labels = load_embedded_mnist()
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert images.dtype == np.uint8 and set(np.unique(labels)) == set(range(10))
    assert labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the famous first MNIST labels


def test_embedded_needs_no_search_path(isolated_data):
    data = build_dataset(validate.load(None, ["data.name=mnist-embedded", "data.max_images=100"]).data)
    assert len(data) == 100 and data.x.shape[1:] == (1, 28, 28)


@needs_mnist
def test_goodfellow_splits_on_real_mnist():
    train, ytr, _ = load_idx_split("mnist", "train")
    t50, _, _ = load_idx_split("mnist", "train50k")
    val, _, _ = load_idx_split("mnist", "validation")
    test, yte, _ = load_idx_split("mnist", "test")
    assert (len(train), len(t50), len(val), len(test)) == (60_000, 50_000, 10_000, 10_000)
    np.testing.assert_array_equal(np.concatenate([t50, val]), train)
    emb, _ = load_embedded_mnist()
    np.testing.assert_array_equal(emb, train[:10_000])


def _save(im, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path)


def test_image_folder_formats_labels_and_broken_files(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    _save(Image.new("RGB", (40, 20), (255, 0, 0)), root / "cats" / "a.png")
    _save(Image.new("RGB", (20, 40), (0, 255, 0)), root / "cats" / "b.jpg")
    _save(Image.new("L", (16, 16), 128), root / "dogs" / "c.webp")
    _save(Image.new("RGB", (33, 33), (0, 0, 255)), root / "dogs" / "d.bmp")
    (root / "dogs" / "empty.png").write_bytes(b"")
    (root / "dogs" / "text.jpg").write_text("not an image")
    good = root / "cats" / "a.png"
    (root / "cats" / "trunc.png").write_bytes(good.read_bytes()[:30])
    with pytest.warns(UserWarning, match=r"unreadable file\(s\).*") as caught:
        x, y, classes, scan = load_folder(root, 8, 3, labels=True)
    assert scan.num_skipped == 3 and all(name in str(caught[0].message) for name in ("empty.png", "text.jpg", "trunc.png"))
    assert x.shape == (4, 3, 8, 8) and x.dtype == np.uint8
    assert classes == ["cats", "dogs"] and y.tolist() == [0, 0, 1, 1]
    assert x[0, 0].min() == 255 and x[0, 1].max() == 0  # red stays red through resize and crop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grey = build_dataset(validate.load(None, ["data.name=folder", f"data.root={root}", "data.resolution=8",
                                                "data.channels=1"]).data)
    assert grey.x.shape == (4, 1, 8, 8) and grey.y is None
    assert -1 <= grey.samples().min() and grey.samples().max() <= 1
    assert set(grey.batch(torch.arange(2))) == {"x"}  # no labels asked for: no "c" in the batch


def test_image_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no usable image"):
        load_folder(tmp_path / "empty", 8, 1, labels=False)
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "missing", 8, 1, labels=False)


def test_toy_mixtures_match_their_definitions():
    ring = build_dataset(validate.load(None, ["data.name=ring"]).data, seed=1)
    assert ring.x.shape == (100_000, 2) and ring.kind == "points"
    torch.testing.assert_close(ring.centres.norm(dim=1), torch.ones(8))
    err = ring.x - ring.centres[ring.y]
    assert abs(err.std().item() - 0.01) < 0.0005
    counts = torch.bincount(ring.y, minlength=8).float() / len(ring.y)
    assert (counts - 1 / 8).abs().max() < 0.01
    grid = build_dataset(validate.load(None, ["data.name=grid"]).data, seed=1)
    assert sorted(set(grid_centres()[:, 0].tolist())) == [-4, -2, 0, 2, 4]
    assert abs((grid.x - grid.centres[grid.y]).std().item() - 0.05) < 0.002
    assert len(ring_centres(5, 2.0)) == 5


def test_fake_dataset_for_dry_runs():
    data = build_dataset(validate.load(None, ["data.name=fake", "data.resolution=32", "data.channels=3"]).data)
    x = data.samples()
    assert x.shape[1:] == (3, 32, 32) and -1 <= x.min() and x.max() <= 1


def test_cli_data_list_and_info(tmp_path, isolated_data, monkeypatch, capsys):
    from ganforge.cli import main

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "not found (ganforge data fetch mnist)" in out and "mnist-embedded" in out
    write_fake_mnist(tmp_path / "d" / "mnist")
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "d"))
    assert main(["data", "info", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "CORRUPT (MD5 mismatch)" in out  # random bytes are not the official files
    assert main(["data", "info", "svhn"]) == 3
    assert "unknown dataset 'svhn'" in capsys.readouterr().err


def test_stacked_mnist_channels_are_digits_and_modes_are_triples(tmp_path, isolated_data, monkeypatch):
    write_fake_mnist(tmp_path / "d" / "mnist")
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path / "d"))
    cfg = validate.load(None, ["data.name=stacked-mnist", "data.channels=3", "data.range=unit",
                             "data.max_images=50"]).data
    data = build_dataset(cfg)
    train, labels, _ = load_idx_split("mnist", "train")
    assert data.x.shape == (50, 3, 28, 28) and len(data.classes) == 1000
    for x, mode in zip(data.samples(), data.y.tolist()):
        digits = []
        for channel in x:  # every channel is one of the training images, and the mode spells its labels
            match = np.flatnonzero((torch.from_numpy(train).float() / 255 == channel).all(-1).all(-1).numpy())
            assert len(match) >= 1
            digits.append(int(labels[match[0]]))
        assert mode == digits[0] * 100 + digits[1] * 10 + digits[2]
    again = build_dataset(cfg)  # the same images whatever the run
    assert torch.equal(again.x, data.x)


def test_stacked_mnist_needs_three_channels():
    with pytest.raises(ConfigError, match="data.channels=3"):
        validate.load(None, ["data.name=stacked-mnist"])
