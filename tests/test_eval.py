import json

import pytest

from ganforge.core.errors import ConfigError
import torch

from ganforge import api, validate
from ganforge.cli import main
from ganforge.data import load_embedded_mnist, load_idx_split
from ganforge.metrics.features import load_extractor

from conftest import full_mnist_available, needs_mnist


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from conftest import train_tiny

    return train_tiny(tmp_path_factory.mktemp("toy"), "data.name=ring", "data.toy_num_samples=512",
                      "model.z_dim=2", "model.d_dropout=0.0")


@pytest.fixture(scope="module")
def mnist_run(tiny_run):
    return tiny_run


def test_eval_toy_checkpoint_records_its_protocol(toy_run, tmp_path, capsys):
    out = tmp_path / "m.json"
    rc = main(["eval", str(toy_run / "ckpt/last.pt"), "--metrics", "fid,prdc,modes", "--num-samples", "300",
               "--seed", "3", "--out", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "modes_captured=" in table and "precision=" in table
    records = json.loads(out.read_text())
    assert [r["metric"] for r in records] == ["fid", "prdc", "modes"]
    for r in records:
        assert r["num_fake"] == 300 and r["seed"] == 3 and r["step"] == 32 and r["ganforge_version"]
        assert "refused" not in r
    assert records[0]["feature_extractor"].startswith("identity") and records[0]["value"] >= 0
    assert records[2]["num_modes"] == 8 and 0 <= records[2]["modes_captured"] <= 8


def test_metric_that_does_not_apply_is_refused_with_a_reason(toy_run, capsys):
    rc = main(["eval", str(toy_run), "--metrics", "parzen,modes", "--num-samples", "100"])
    captured = capsys.readouterr()
    assert rc == 2 and "refused: parzen (the Goodfellow et al. 2014 Parzen protocol is defined for MNIST" in captured.err
    assert "defined for MNIST" in captured.out  # the table says it too


def test_eval_bad_input(toy_run, tmp_path, capsys):
    assert main(["eval", str(toy_run), "--metrics", "fdi"]) == 2
    assert "unknown metric 'fdi' (did you mean 'fid'?)" in capsys.readouterr().err
    (tmp_path / "x.pt").write_bytes(b"nope")
    assert main(["eval", str(tmp_path / "x.pt")]) == 4
    assert "x.pt: not a ganforge checkpoint" in capsys.readouterr().err


def test_shipped_feature_nets_have_recorded_accuracy():
    for name, floor in (("mnist-cnn", 0.993), ("fashion-mnist-cnn", 0.92)):
        ex = load_extractor(name)
        assert ex.test_accuracy >= floor, (name, ex.test_accuracy)
        assert len(ex.sha256) == 64


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_the_mnist_classifier_classifies_as_recorded():
    """Measured, not read back: on the MNIST test split when it is on the search path, else on the
    embedded training images (which it was trained on, so at least as accurate)."""
    ex = load_extractor("mnist-cnn")
    if full_mnist_available():
        x, y, _ = load_idx_split("mnist", "test")
    else:
        x, y = load_embedded_mnist()
    _, pred = ex.run(torch.from_numpy(x)[:, None])
    accuracy = (pred == torch.from_numpy(y).long()).float().mean().item()
    assert accuracy >= 0.993, accuracy
    if full_mnist_available():  # the same split the recorded number was measured on
        assert abs(accuracy - ex.test_accuracy) < 2e-4, (accuracy, ex.test_accuracy)


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_eval_export_on_mnist_features(mnist_run, tmp_path):
    """Runs offline too: without the full files, the embedded subset is the (recorded) reference."""
    api.export(mnist_run / "ckpt/last.pt", tmp_path / "exp")
    records = api.evaluate(tmp_path / "exp", ["fid", "modes"], num_samples=200, seed=0)
    fid, modes = records
    assert fid["feature_extractor"] == "mnist-cnn" and len(fid["feature_extractor_sha256"]) == 64
    assert fid["value"] > 0 and fid["num_real"] == 10_000
    # with full MNIST the reference is the test split; offline, the embedded subset (and it says so)
    if full_mnist_available():
        assert fid["split"].startswith("mnist test (10000 images") and "not found" not in fid["split"]
    else:
        assert fid["split"].startswith("embedded MNIST train[0:10000]") and "test split was not found" in fid["split"]
    assert 1 <= modes["modes_hit"] <= 10 and sum(modes["histogram"]) == 200


@needs_mnist
def test_parzen_and_memorization_on_real_splits(mnist_run):
    parzen, memo = api.evaluate(mnist_run, ["parzen", "memorization"], num_samples=200, seed=0)
    assert "validation" in parzen["split"] and parzen["num_real"] == 10_000
    assert parzen["sigma"] in [float(s) for s in __import__("numpy").logspace(-1, 0, 10)]
    assert parzen["value"] < 225  # a 32-step, width-16 generator is far from the paper's model
    assert 0 <= memo["suspicious_fraction"] <= 1 and memo["expected_fraction"] == 0.01
    # the tiny run trained on the first 512 embedded images: those are its training set, and as many
    # test images are the reference, so that d_train / d_test compares like with like
    assert "the first 512 of mnist train[0:10000]" in memo["split"] and "test: the first 512 of" in memo["split"]


def test_folder_data_without_inception_weights_is_refused_naming_the_setting(tmp_path, monkeypatch):
    from PIL import Image

    from conftest import tiny_overrides

    for i in range(40):
        Image.new("L", (8, 8), i * 5).save(tmp_path / f"{i}.png")
    cfg = validate.load(None, tiny_overrides(tmp_path, "data.name=folder", f"data.root={tmp_path}",
                                           "data.resolution=8", "data.max_images=0", "train.max_steps=1"))
    run_dir, _ = api.train(cfg, log=lambda s: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no cached weights; downloads fail in tests
    (fid,) = api.evaluate(run_dir, ["fid"], num_samples=50)
    assert "Inception-v3 weights not in" in fid["refused"] and "eval.inception_weights=PATH" in fid["refused"]


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_metrics_during_training_go_to_metrics_jsonl_and_the_report(tiny_cfg):
    run_dir, _ = api.train(tiny_cfg("data.name=ring", "data.toy_num_samples=512", "model.z_dim=2",
                                    "model.d_dropout=0.0", "eval.every_steps=16", "eval.metrics=[fid, modes]",
                                    "eval.num_samples=200", "log.report=true"), log=lambda s: None)
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [16, 32]
    assert all(r["fid"] >= 0 and 0 <= r["modes_captured"] <= 8 for r in rows)
    assert (run_dir / "report" / "metrics.png").is_file()
    assert "metrics.png" in (run_dir / "report" / "report.html").read_text()


@needs_mnist
def test_stacked_mnist_modes_read_each_channel():
    """A 'generator' that returns real Stacked MNIST images: the modes it hits are the digit triples
    in those images, up to the classifier's errors (0.5 % per digit)."""
    from ganforge.metrics import evaluate_generator

    cfg = validate.load(None, ["data.name=stacked-mnist", "data.channels=3", "data.max_images=3000"])
    from ganforge.data import build_dataset

    from ganforge.generator import GeneratorHandle

    data = build_dataset(cfg.data)
    served = iter(range(0, 3000, 1000))
    G = GeneratorHandle(lambda z: data.samples()[next(served):][:len(z)], cfg)  # serves the dataset in order
    (modes, fid) = evaluate_generator(G, ["modes", "fid"], num_samples=3000)
    true_modes = len(set(data.y.tolist()))
    assert abs(modes["modes_hit"] - true_modes) <= 0.02 * true_modes, (modes["modes_hit"], true_modes)
    assert modes["num_modes"] == 1000 and modes["feature_extractor"] == "mnist-cnn"
    assert "no feature network" in fid["refused"]


def test_evaluating_a_live_generator_leaves_its_config_alone(tiny_run, tmp_path):
    """Overrides of the feature space apply to that evaluation only, not to the run's config."""
    G = api.load_generator(tiny_run)
    before = (G.cfg.eval.inception_weights, G.cfg.eval.feature_net)
    api.evaluate(G, ["modes"], num_samples=20, feature_net=str(tmp_path / "net.json"))
    assert (G.cfg.eval.inception_weights, G.cfg.eval.feature_net) == before
    with pytest.raises(ConfigError, match="not in Inception-v3's: drop --inception-weights"):  # MNIST: never Inception
        api.evaluate(G, ["fid"], num_samples=20, inception_weights=str(tmp_path / "w.pth"))
    assert (G.cfg.eval.inception_weights, G.cfg.eval.feature_net) == before
