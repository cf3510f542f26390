"""The semi-supervised GAN (Salimans et al. 2016): the K+1 losses, feature matching, the labelled
subset, the classifier's average, exact resume, the accuracy metric, export and `ganforge classify`."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import tiny_overrides
from ganforge import api, validate
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.core.errors import ConfigError, DataError
from ganforge.data import build_dataset
from ganforge.data.build import labelled_subset
from ganforge.nets.ssgan import SemiSupervisedD, SemiSupervisedG, WNLinear
from ganforge.recipes.ssgan import ReferenceAdam, corrected_average, feature_matching, ssgan_losses

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = ("train.recipe=ssgan", "model.arch=ssgan", "model.width=32", "model.z_dim=8", "data.range=unit",
        "data.labels_per_class=2", "train.batch_size=20", "optim.lr_G=0.003", "optim.lr_D=0.003",
        "optim.betas=[0.5,0.999]", "log.ckpt_every_steps=3")


def _cfg(tmp_path, *extra):
    return validate.load(None, tiny_overrides(tmp_path, *TINY, *extra))


def _train(tmp_path, *extra, resume=None):
    return api.train(_cfg(tmp_path, *extra), resume=resume, log=lambda s: None)[0]


# --- the losses, by hand ---------------------------------------------------------------------------

def test_the_k_plus_1_losses_match_a_hand_computation_on_known_logits():
    l_lab = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    y = torch.tensor([0, 2])
    l_unl = torch.tensor([[1.0, 1.0, 1.0], [-3.0, -2.0, -4.0]])
    l_fake = torch.tensor([[-1.0, -2.0, 0.0]])
    loss_lab, loss_unl = ssgan_losses(l_lab, y, l_unl, l_fake)

    def lse(row):
        return math.log(sum(math.exp(v) for v in row))

    ce = [-(2.0 - lse([2.0, 0.0, -1.0])), -(0.0 - lse([0.5, 1.5, 0.0]))]
    assert loss_lab.item() == pytest.approx(sum(ce) / 2, rel=1e-6)

    def d_real(row):  # D(x) = Z / (Z + 1), the fake class's logit being 0
        z = sum(math.exp(v) for v in row)
        return z / (z + 1)

    by_hand = 0.5 * (-sum(math.log(d_real(r)) for r in l_unl.tolist()) / 2
                     - sum(math.log(1 - d_real(r)) for r in l_fake.tolist()) / 1)
    assert loss_unl.item() == pytest.approx(by_hand, rel=1e-6)
    # the same as a (K+1)-way cross-entropy with a zero logit appended, real images of "any real class"
    logits = torch.cat([l_unl, torch.zeros(2, 1)], 1)
    real = -(torch.logsumexp(logits[:, :3], 1) - torch.logsumexp(logits, 1)).mean()
    fake = F.cross_entropy(torch.cat([l_fake, torch.zeros(1, 1)], 1), torch.tensor([3]))
    assert loss_unl.item() == pytest.approx(0.5 * (real + fake).item(), rel=1e-6)


def test_feature_matching_moves_g_only():
    torch.manual_seed(0)
    G, D = SemiSupervisedG(8, (1, 28, 28), 32), SemiSupervisedD((1, 28, 28), 32, 10)
    x_real = torch.rand(16, 1, 28, 28)
    D.requires_grad_(False)  # as the recipe's freeze("D")
    loss = feature_matching(D.features(G(torch.rand(16, 8) * 2 - 1)), D.features(x_real))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    assert all(p.grad is None for p in D.parameters())
    f = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert feature_matching(f, torch.zeros(5, 2)).item() == pytest.approx((2.0 ** 2 + 4.0 ** 2) / 2)


def test_weight_norm_init_standardises_and_the_scale_is_trained_only_in_the_last_layer():
    torch.manual_seed(0)
    layer = WNLinear(20, 7)
    x = torch.randn(500, 20) * 3 + 1
    layer.init(x)
    a = layer(x)
    assert torch.allclose(a.mean(0), torch.zeros(7), atol=1e-4) and torch.allclose(a.std(0, unbiased=False),
                                                                                   torch.ones(7), atol=1e-4)
    D = SemiSupervisedD((1, 28, 28), 40, 10)
    assert [n for n, _ in D.named_parameters() if n.endswith(".g")] == ["out.g"]
    D.eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(D(x), D(x))  # no noise in eval mode
    D.train()
    assert not torch.equal(D(x), D(x))


def test_reference_adam_puts_eps_inside_the_square_root():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = ReferenceAdam([p], lr=0.1, betas=(0.5, 0.999), eps=1e-2)
    m = v = torch.zeros(2)
    expected = p.detach().clone()
    for t, g in enumerate([torch.tensor([0.3, -0.01]), torch.tensor([0.1, 0.02])], 1):
        p.grad = g.clone()
        opt.step()
        m, v = 0.5 * m + 0.5 * g, 0.999 * v + 0.001 * g * g
        expected -= 0.1 * (m / (1 - 0.5 ** t)) / torch.sqrt(v / (1 - 0.999 ** t) + 1e-2)
    assert torch.allclose(p.detach(), expected, atol=1e-7)


def test_the_classifiers_average_is_the_zero_started_one_divided_by_its_bias():
    from torch.optim.swa_utils import AveragedModel

    net = torch.nn.Linear(2, 1, bias=False)
    avg = AveragedModel(net, multi_avg_fn=corrected_average(0.1))
    zero_started, beta = torch.zeros(1, 2), 0.9
    for t in range(1, 6):
        with torch.no_grad():
            net.weight.fill_(float(t))
        avg.update_parameters(net)
        zero_started = beta * zero_started + 0.1 * net.weight.detach()
        assert torch.allclose(avg.module.weight, zero_started / (1 - beta ** t), atol=1e-6)


# --- the labelled subset ---------------------------------------------------------------------------

def test_the_labelled_subset_is_class_balanced_seeded_and_hidden_from_batches():
    cfg = DataConfig(name="mnist-embedded", max_images=2000, labels_per_class=5, range="unit")
    a, b, c = build_dataset(cfg, seed=1), build_dataset(cfg, seed=1), build_dataset(cfg, seed=2)
    assert torch.equal(a.labelled, b.labelled) and not torch.equal(a.labelled, c.labelled)
    assert torch.bincount(a.y[a.labelled], minlength=10).tolist() == [5] * 10
    assert "c" not in a.batch(torch.arange(8))  # no other label reaches a recipe
    # the embedded set has no test split: a tenth of its labelled images is held out of training
    x_held, y_held = a.extra["held_out_labelled"]
    assert len(a) + len(y_held) == 2000 and len(y_held) == 200
    with pytest.raises(DataError, match="lower data.labels_per_class"):
        labelled_subset(torch.tensor([0, 0, 1]), 2, 0)
    every = labelled_subset(torch.tensor([0, -1, 1, 1]), 0, 0)
    assert every.tolist() == [0, 2, 3]




def test_the_subset_can_have_a_seed_of_its_own_and_the_reference_code_s_permutation():
    cfg = DataConfig(name="mnist-embedded", max_images=2000, labels_per_class=3, range="unit", labels_seed=7)
    # its own seed: the same images whatever train.seed, as the reference's --seed_data beside --seed
    assert torch.equal(build_dataset(cfg, seed=1).labelled, build_dataset(cfg, seed=2).labelled)
    assert torch.equal(build_dataset(cfg, seed=1).labelled,
                       build_dataset(dataclasses.replace(cfg, labels_seed=-1), seed=7).labelled)
    # numpy's permutation, the reference's selection written out: permute, then the first 3 of each class
    y = torch.tensor(np.random.default_rng(0).integers(0, 4, 60))
    inds = np.random.RandomState(1).permutation(60)
    y_perm = y.numpy()[inds]
    expected = np.concatenate([inds[y_perm == k][:3] for k in range(4)])
    assert labelled_subset(y, 3, 1, pick="numpy").tolist() == expected.tolist()
    assert labelled_subset(y, 3, 1, pick="numpy").tolist() != labelled_subset(y, 3, 1).tolist()
def test_labels_from_a_file_naming_some_images_of_a_folder(tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    g = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(g.integers(0, 255, (28, 28), dtype=np.uint8)).save(root / f"im{i:02d}.png")
    labels = tmp_path / "labels.csv"
    rows = ["file,label"] + [f"im{i:02d}.png,{'cat' if i % 2 else 'dog'}" for i in range(30)] + ["gone.png,cat"]
    labels.write_text("\n".join(rows) + "\n")
    cfg = DataConfig(name="folder", root=str(root), labels_file=str(labels), range="unit")
    with pytest.warns(UserWarning, match="labels naming no image read: gone.png"):
        data = build_dataset(cfg, seed=0)
    assert data.classes == ("cat", "dog")
    assert len(data) == 37 and len(data.extra["held_out_labelled"][1]) == 3  # a tenth of the 30 labelled
    assert len(data.labelled) == 27 and (data.y[data.labelled] >= 0).all()
    assert int((data.y < 0).sum()) == 10  # the images the file does not name stay unlabelled
    labels.write_text("im00.png,cat,extra\n")
    with pytest.raises(DataError, match=r"line 1: expected `file,label`"):
        build_dataset(cfg, seed=0)
    labels.write_text("other.png,cat\n")
    with pytest.raises(DataError, match="names none of the 40 images"), pytest.warns(UserWarning):
        build_dataset(cfg, seed=0)
    labels.write_text("im00.png,cat\nim01.png,cat\nnowhere.png,dog\n")  # no image of "dog" was read
    with pytest.raises(DataError, match="class 'dog' has no labelled training image"), pytest.warns(UserWarning):
        build_dataset(cfg, seed=0)
    with pytest.raises(DataError, match="is a folder: give the CSV file"):
        build_dataset(DataConfig(name="folder", root=str(root), labels_file=str(tmp_path), range="unit"), seed=0)


@pytest.mark.parametrize("extra, message", [
    (("data.name=folder", "data.root=x"), "needs labelled images"),
    (("data.labels_file=labels.csv",), "data.labels_file names labelled images of a folder"),
    (("model.arch=mlp",), "train.recipe=ssgan uses the semi-supervised GAN's nets"),
    (("data.range=signed",), "set data.range=unit"),
])
def test_configs_that_cannot_work_are_refused_by_name(tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, *extra)


def test_ssgan_nets_and_keys_are_refused_elsewhere(tmp_path):
    with pytest.raises(ConfigError, match="use them with train.recipe=ssgan"):
        validate.load(None, tiny_overrides(tmp_path, "model.arch=ssgan", "data.range=unit"))
    with pytest.raises(ConfigError, match="data.labels_per_class"):
        validate.load(None, tiny_overrides(tmp_path, "data.labels_per_class=3"))
    with pytest.raises(ConfigError, match="data.labels_pick"):
        validate.load(None, tiny_overrides(tmp_path, "data.labels_pick=numpy"))
    with pytest.raises(ConfigError, match="data.labels_seed=-2 is out of range"):
        _cfg(tmp_path, "data.labels_seed=-2")


# --- training, resume, the metric, export and classify --------------------------------------------

@pytest.fixture(scope="module")
def ssgan_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ssgan")
    return _train(tmp, "train.max_steps=6", "eval.every_steps=3", "eval.metrics=[accuracy]")


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_ssgan_trains_measures_its_accuracy_and_resumes_bit_identical(tmp_path, ssgan_run):
    rows = [json.loads(line) for line in (ssgan_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 6] and all(0 <= r["accuracy"] <= 1 for r in rows)
    assert rows[-1]["accuracy_misclassified"] == round((1 - rows[-1]["accuracy"]) * 51)  # 51 held-out images
    stats = [json.loads(line) for line in (ssgan_run / "stats.jsonl").read_text().splitlines()]
    assert {"loss_lab", "loss_unl", "loss_G", "train_err", "D_x", "D_G_z"} <= set(stats[-1])
    _train(tmp_path, "train.max_steps=3")
    resumed = _train(tmp_path, "train.max_steps=6", resume="auto")
    a = torch.load(ssgan_run / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]
    b = torch.load(resumed / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]
    for player in ("G", "D"):
        assert all(torch.equal(a[player]["net"][k], b[player]["net"][k]) for k in a[player]["net"])
    assert all(torch.equal(a["D"]["ema"]["net"][k], b["D"]["ema"]["net"][k]) for k in a["D"]["ema"]["net"])


def test_the_baseline_trains_d_on_the_labelled_images_alone(tmp_path):
    run = _train(tmp_path, "train.max_steps=2", "loss.unlabeled_weight=0")
    ckpt = torch.load(run / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]
    assert ckpt["G"]["updates"] == 0 and ckpt["D"]["updates"] == 2
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert "loss_G" not in stats[-1] and stats[-1]["loss_unl"] == 0


def _digits(folder: Path, n: int = 4) -> list[int]:
    data = build_dataset(DataConfig(name="mnist-embedded", max_images=n))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(data.x[i, 0].numpy()).save(folder / f"digit{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return data.y[:n].tolist()


def test_classify_prints_and_writes_predictions_with_probabilities(tmp_path, ssgan_run, capsys):
    _digits(tmp_path / "in")
    out = tmp_path / "pred.csv"
    assert main(["classify", str(ssgan_run), "--input", str(tmp_path / "in"), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "digit0.png" in printed.out and "4 prediction(s) written" in printed.out
    assert "skipped 1 unreadable file(s)" in printed.err and "broken.png" in printed.err
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == [f"digit{i}.png" for i in range(4)]
    for r in rows:
        probs = [float(r[f"p_{k}"]) for k in range(10)]
        assert sum(probs) == pytest.approx(1, abs=1e-4) and float(r["probability"]) == pytest.approx(max(probs))
        assert r["class"] == str(int(np.argmax(probs))) and 0 <= float(r["p_real"]) <= 1
    records = api.classify(ssgan_run, tmp_path / "in" / "digit1.png", tmp_path / "one.json")
    assert json.loads((tmp_path / "one.json").read_text()) == records and len(records) == 1


def test_classify_and_the_metric_refuse_a_model_without_a_classifier(tiny_run, tmp_path):
    _digits(tmp_path / "in", 1)
    with pytest.raises(ConfigError, match="has no classifier"):
        api.classify(tiny_run, tmp_path / "in")
    record = api.evaluate(tiny_run, ["accuracy"], num_samples=10)[0]
    assert "has none" in record["refused"]


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_the_classifier_is_exported_as_safetensors_and_onnx(tmp_path, ssgan_run):
    export = api.export(ssgan_run, tmp_path / "export")
    assert (export / "classifier.safetensors").is_file()
    x = torch.tensor(np.asarray(Image.open(_png(tmp_path)), dtype=np.float32))[None, None] / 255
    from_run, from_export = api.load_generator(ssgan_run), api.load_generator(export)
    with torch.no_grad():
        assert torch.equal(from_run.C(x), from_export.C(x))
    pytest.importorskip("onnxruntime")
    import onnxruntime

    api.export(ssgan_run, tmp_path / "g.onnx", fmt="onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "g.classifier.onnx"))
    probs, p_real = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        logits = from_run.C(x)
    assert np.allclose(probs, logits.softmax(1).numpy(), atol=1e-5)
    assert np.allclose(p_real, torch.sigmoid(logits.logsumexp(1)).numpy(), atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == [str(k) for k in range(10)]


def _png(tmp_path: Path) -> Path:
    _digits(tmp_path / "one", 1)
    return tmp_path / "one" / "digit0.png"


def test_the_preset_loads_as_the_reference_sets_it_up():
    cfg = validate.load(CONFIGS / "mnist_ssgan.yaml", [])
    assert (cfg.train.batch_size, cfg.optim.lr_D, cfg.optim.betas[0], cfg.data.labels_per_class) == (100, 0.003, 0.5, 10)
    assert (cfg.model.width, cfg.model.z_dim, cfg.train.epochs, cfg.eval.every_steps) == (1000, 100, 300, 600)


def test_reference_adam_loads_state_saved_without_weight_decay():
    """Optimizer state written before weight decay was supported has no such key: it loads as none."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = ReferenceAdam([w], lr=0.1, betas=(0.5, 0.999))
    w.grad = torch.ones(3)
    opt.step()
    state = opt.state_dict()
    del state["param_groups"][0]["weight_decay"]
    again = ReferenceAdam([w], lr=0.1, betas=(0.5, 0.999), weight_decay=0.5)
    again.load_state_dict(state)
    assert again.param_groups[0]["weight_decay"] == 0.0
    again.step()
    assert torch.isfinite(w).all()
