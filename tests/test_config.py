from pathlib import Path

import pytest

from ganforge import config, validate
from ganforge.core.errors import ConfigError

from conftest import preset_overrides

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_preset_loads(path, tmp_path):
    cfg = validate.load(path, preset_overrides(path, tmp_path))
    assert cfg.run.name == path.stem


def test_textbook_preset_is_the_textbook_model():
    cfg = validate.load(Path(__file__).resolve().parents[1] / "configs/mnist_mlp.yaml")
    assert (cfg.model.arch, cfg.model.z_dim, cfg.model.width, cfg.model.d_dropout) == ("mlp", 128, 256, 0.3)
    assert (cfg.optim.kind, cfg.optim.lr_G, cfg.optim.lr_D) == ("adam", 2e-4, 2e-4)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.n_dis) == (512, 200, 1)


def test_overrides_are_typed():
    cfg = validate.load(None, ["train.batch_size=128", "optim.lr_G=1e-3", "optim.betas=[0.5, 0.99]",
                             "log.progress=false", "data.toy_std=0.2"])
    assert cfg.train.batch_size == 128 and isinstance(cfg.train.batch_size, int)
    assert cfg.optim.lr_G == 1e-3 and isinstance(cfg.optim.lr_G, float)
    assert cfg.optim.betas == [0.5, 0.99]
    assert cfg.log.progress is False
    assert cfg.data.toy_std == 0.2


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert validate.load(None, ["optim.lr_G=1"]).optim.lr_G == 1.0
    with pytest.raises(ConfigError, match="train.batch_size must be an integer"):
        validate.load(None, ["train.batch_size=12.5"])


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match=r"unknown key 'train.batch_szie'.*did you mean 'train.batch_size'"):
        validate.load(None, ["train.batch_szie=3"])
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*did you mean 'train'"):
        validate.from_dict({"trian": {"epochs": 3}})


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  arc: mlp\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'model.arc'.*did you mean 'model.arch'"):
        validate.load(p)


@pytest.mark.parametrize("override, message", [
    ("train.batch_size=0", "train.batch_size=0 must be positive"),
    ("train.batch_size=abc", "must be an integer"),
    ("model.arch=vgg", "model.arch='vgg' is not one of"),
    ("loss.kind=nss", "did you mean 'ns'"),
    ("model.d_dropout=1.0", r"model.d_dropout=1.0 must be in \[0, 1\)"),
    ("optim.betas=[0.5]", "two numbers"),
    ("log.progress=maybe", "must be true or false"),
    ("train.n_dis=0", "train.n_dis=0 must be at least 1"),
    ("data.resolution=32", "mnist images are 28x28"),
    ("batch_size=3", "unknown key 'batch_size'"),
    ("train.epochs", "must look like section.key=value"),
])
def test_bad_values_are_refused_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, [override])


def test_invalid_combinations_say_how_to_fix():
    with pytest.raises(ConfigError, match="data.range=unit"):
        validate.load(None, ["model.arch=goodfellow2014", "model.width=1200"])
    with pytest.raises(ConfigError, match="use 28, 32, 64"):
        validate.load(None, ["data.name=folder", "data.root=x", "data.resolution=48", "model.arch=dcgan"])
    with pytest.raises(ConfigError, match="model.arch=mlp"):
        validate.load(None, ["data.name=ring", "model.arch=dcgan"])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        validate.load(tmp_path / "nope.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        validate.load(p)


def test_dump_round_trips():
    cfg = validate.load(None, ["train.epochs=7", "optim.betas=[0.5, 0.9]"])
    import yaml

    again = validate.from_dict(yaml.safe_load(config.dump(cfg)))
    assert again == cfg


def test_architecture_diff_names_the_keys():
    a = config.to_dict(validate.load(None))
    b = config.to_dict(validate.load(None, ["model.width=64", "train.epochs=3"]))
    diff = config.architecture_diff(a, b)
    assert diff == ["model.width: 256 -> 64"]
    assert config.architecture_diff(a, a) == []
    # the latent distribution is part of the model: a resumed run may not switch it
    c = config.to_dict(validate.load(None, ["model.z_dist=uniform"]))
    assert config.architecture_diff(a, c) == ["model.z_dist: 'normal' -> 'uniform'"]


@pytest.mark.parametrize("recipe, overrides, message", [
    ("gan", ["loss.l1_weight=50"], r"loss.l1_weight: not part of the gan recipe \(read by pix2pix\)"),
    ("gan", ["train.pool_size=50", "loss.cycle_weight=5"],
     r"loss.cycle_weight, train.pool_size: not part of the gan recipe \(read by cyclegan\); drop them"),
])
def test_a_key_only_another_recipe_reads_is_refused_by_name(recipe, overrides, message):
    """Recipes declare the keys they read; a key set for another recipe is not silently ignored."""
    with pytest.raises(ConfigError, match=message):
        validate.load(None, [f"train.recipe={recipe}", *overrides])


def _float_keys() -> list[str]:
    import dataclasses
    import typing

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                yield from walk(tp, prefix + f.name + ".")
            elif "float" in str(tp) and "list" not in str(tp):
                yield prefix + f.name

    return list(walk(config.Config))


@pytest.mark.parametrize("key", _float_keys())
def test_every_float_key_is_finite_and_in_its_range(key):
    assert len(_float_keys()) > 30
    for value in ("inf", "-inf", "nan", ".inf", "1e400"):
        with pytest.raises(ConfigError, match=rf"{key}=(inf|-inf|nan) must be a finite number"):
            config.load(None, [f"{key}={value}"])
    with pytest.raises(ConfigError, match=key.split(".")[-1]):  # every float key has a lower bound
        config.load(None, [f"{key}=-1e30"])
