from pathlib import Path

import pytest

from ganforge import config, validate

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_overrides(tmp_path: Path, *extra: str) -> list[str]:
    """A config small enough to train in a second: 512 embedded MNIST images, width-16 MLP, float32
    (tolerances in the tests are float32's), no report/ (tests of the report ask for it with
    log.report=true; `extra` may override any of these)."""
    return ["train.precision=fp32", "data.name=mnist-embedded", "data.max_images=512", "model.arch=mlp", "model.width=16",
            "model.z_dim=8", "train.epochs=2", "train.batch_size=32", "log.progress=false", "log.report=false",
            "log.stats_every_steps=4", "log.num_samples=16", f"run.dir={tmp_path / 'runs'}", "run.name=tiny",
            *extra]


def preset_overrides(preset: Path, tmp_path: Path) -> list[str]:
    """What a preset needs beyond itself to load: an encoder preset learns from a trained generator,
    so it is given a tiny one (trained for a step here)."""
    if "recipe: encoder" not in preset.read_text():
        return []
    from ganforge import api

    run_dir, _ = api.train(validate.load(None, tiny_overrides(tmp_path / "G", "train.max_steps=1")), log=lambda s: None)
    return [f"model.G_from={run_dir}"]


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*extra: str) -> config.Config:
        return validate.load(None, tiny_overrides(tmp_path, *extra))

    return make


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished tiny run (with its report) shared by the tests that only read it; they must not
    write into it."""
    from ganforge import api

    tmp = tmp_path_factory.mktemp("shared")
    run_dir, result = api.train(validate.load(None, tiny_overrides(tmp, "log.report=true")), log=lambda s: None)
    return run_dir


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """An empty data search path: no $GANFORGE_DATA, an empty user cache."""
    monkeypatch.setenv("GANFORGE_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def full_mnist_available() -> bool:
    from ganforge.data.sources import MNIST_FILES, find_idx_file

    return find_idx_file(MNIST_FILES, "train-images-idx3-ubyte") is not None


needs_mnist = pytest.mark.skipif(not full_mnist_available(),
                                 reason="full MNIST not on the data search path (set GANFORGE_DATA)")


@pytest.fixture(scope="session")
def folder_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("folder-cache")


@pytest.fixture(autouse=True)
def isolated_folder_cache(monkeypatch, folder_cache):
    """Decoded folders are cached in the test session's own folder, never the user's cache."""
    monkeypatch.setenv("GANFORGE_FOLDER_CACHE", str(folder_cache))


@pytest.fixture(autouse=True)
def no_weight_downloads(monkeypatch):
    """Tests never reach the network: a first-use download of the Inception weights goes to a
    closed local port (and fails at once) unless a test serves them itself."""
    monkeypatch.setenv("GANFORGE_INCEPTION_URL", "http://127.0.0.1:9/no-network-in-tests.pth")
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS", raising=False)


def train_tiny(tmp_path: Path, *extra: str) -> Path:
    """Train the tiny config (with `extra` overrides) under tmp_path; the run folder."""
    from ganforge import api

    run_dir, _ = api.train(validate.load(None, tiny_overrides(tmp_path, *extra)), log=lambda s: None)
    return run_dir


def tiny_yaml(tmp_path: Path) -> Path:
    """The tiny config as a YAML file (tmp_path/tiny.yaml), for tests that go through the CLI."""
    import yaml

    path = tmp_path / "tiny.yaml"
    if not path.exists():
        d: dict = {}
        for item in tiny_overrides(tmp_path):
            key, value = item.split("=", 1)
            section, name = key.split(".")
            d.setdefault(section, {})[name] = yaml.safe_load(value)
        path.write_text(yaml.safe_dump(d))
    return path


def collapsing_train_step(after: int):
    """GANRecipe.train_step, except that after the `after`-th call G's last linear layer puts every
    sample on the first mode of the toy ring (weights zero, bias the mode's centre), as a generator
    stuck on one mode does: the forced collapse of test_health.py and, under torchrun, ddp_worker.py."""
    import torch

    from ganforge.data import toy_centres
    from ganforge.recipes.gan import GANRecipe

    calls, train_step = {"n": 0}, GANRecipe.train_step

    def sabotaged(self, batch):
        stats = train_step(self, batch)
        calls["n"] += 1
        if calls["n"] == after:
            last = [m for m in self.G.modules() if isinstance(m, torch.nn.Linear)][-1]
            with torch.no_grad():
                last.weight.zero_()
                last.bias.copy_(toy_centres(self.cfg.data)[0])
        return stats

    return sabotaged
