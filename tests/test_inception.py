"""Inception-v3 FID features for image folders: the network's shapes, its FID-specific pools, the
weights download against a real HTTP server on 127.0.0.1 (good file, wrong checksum, 404,
truncated), and `ganforge eval` on a folder run with and without weights. The published weights
cannot be fetched here; the tests use a file of the same architecture with random weights."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import train_tiny
from ganforge.cli import main
from ganforge.core.errors import GanforgeError
from ganforge.metrics.inception import FEATURE_DIM, FIDInceptionV3, _avg3, download_weights, find_weights, load_inception


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A state dict of the FID network's architecture with random weights, as a .pth file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(FIDInceptionV3().state_dict(), path)
    return path


def test_network_shapes_and_feature_size():
    net = FIDInceptionV3().eval()
    seen = {}
    for name in ("Conv2d_4a_3x3", "Mixed_5b", "Mixed_5d", "Mixed_6a", "Mixed_6e", "Mixed_7a", "Mixed_7c"):
        getattr(net, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
    with torch.no_grad():
        rgb = net(torch.rand(2, 3, 32, 48))  # any size: resized to 299 x 299
        grey = net(torch.rand(2, 1, 28, 28))  # grey: repeated over three channels
    assert rgb.shape == grey.shape == (2, FEATURE_DIM)
    assert seen == {"Conv2d_4a_3x3": (192, 71, 71), "Mixed_5b": (256, 35, 35), "Mixed_5d": (288, 35, 35),
                    "Mixed_6a": (768, 17, 17), "Mixed_6e": (768, 17, 17), "Mixed_7a": (1280, 8, 8),
                    "Mixed_7c": (2048, 8, 8)}
    state = net.state_dict()
    assert state["fc.weight"].shape == (1008, 2048)  # the published file's layout
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in state and "Conv2d_1a_3x3.conv.weight" in state
    # torchvision lists inception_v3 at 27,161,264 parameters; less its aux head (3,326,696) and
    # with the 1008-class fc of the 2015 graph (+8 x 2048 + 8) that is 23,850,960.
    assert sum(p.numel() for p in net.parameters()) == 27_161_264 - 3_326_696 + 8 * 2048 + 8


def test_fid_pools_ignore_padding_and_the_last_block_takes_the_max():
    import torch.nn.functional as F

    ones = torch.ones(1, 1, 5, 5)
    assert torch.equal(_avg3(ones), ones)  # TensorFlow's pool: borders are not diluted by zero padding
    net = FIDInceptionV3().eval()
    x = torch.randn(1, 2048, 8, 8)
    with torch.no_grad():
        pool_branch = net.Mixed_7c(x)[:, -192:]  # the last 192 channels: the pool branch
        assert torch.allclose(pool_branch, net.Mixed_7c.branch_pool(F.max_pool2d(x, 3, stride=1, padding=1)))
        x = torch.randn(1, 1280, 8, 8)
        assert torch.allclose(net.Mixed_7b(x)[:, -192:], net.Mixed_7b.branch_pool(
            F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)))


def test_factorised_kernels_have_the_published_layout():
    """Shapes of the published state dict (torchvision's Inception3): a swapped 1x7 / 7x1 would load
    random weights without complaint, so the distinctive ones are pinned here."""
    state = FIDInceptionV3().state_dict()
    expected = {
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3), "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5), "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7), "Mixed_6b.branch7x7_3.conv.weight": (192, 128, 7, 1),
        "Mixed_6b.branch7x7dbl_2.conv.weight": (128, 128, 7, 1), "Mixed_6b.branch7x7dbl_3.conv.weight": (128, 128, 1, 7),
        "Mixed_6b.branch7x7dbl_5.conv.weight": (192, 128, 1, 7),
        "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3), "Mixed_7a.branch7x7x3_2.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_3.conv.weight": (192, 192, 7, 1),
        "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3), "Mixed_7b.branch3x3_2b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1), "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1), "fc.weight": (1008, 2048),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert state["Mixed_6e.branch1x1.bn.running_mean"].shape == (192,)
    assert FIDInceptionV3().Mixed_5b.branch1x1.bn.eps == 0.001


class _Server(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/missing.pth":
            self.send_error(404, "Not Found")
            return
        body = self.body if self.path != "/other.pth" else self.body[::-1]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (1000 if self.path == "/trunc.pth" else 0)))
        self.end_headers()
        self.wfile.write(body if self.path != "/trunc.pth" else body[: len(body) // 2])


@pytest.fixture(scope="module")
def server(random_weights):
    _Server.body = random_weights.read_bytes()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_is_verified_then_cached(server, random_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sha = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    got = find_weights(url=f"{server}/good.pth", sha256=sha, timeout_s=10)
    assert got == tmp_path / "cache" / "ganforge" / "weights" / "pt_inception-2015-12-05-6726825d.pth"
    assert hashlib.sha256(got.read_bytes()).hexdigest() == sha
    assert find_weights(url=f"{server}/missing.pth", sha256=sha) == got  # cached: no second download
    net, file_sha = load_inception(got)
    assert file_sha == sha and isinstance(net, FIDInceptionV3)


@pytest.mark.parametrize("path,message", [("/other.pth", "checksum mismatch"), ("/missing.pth", "HTTP 404"),
                                          ("/trunc.pth", "truncated|IncompleteRead")])
def test_bad_downloads_leave_nothing_behind(server, random_weights, tmp_path, path, message):
    sha = hashlib.sha256(random_weights.read_bytes()).hexdigest()
    dest = tmp_path / "w" / "weights.pth"
    with pytest.raises(GanforgeError, match=message):
        download_weights(f"{server}{path}", dest, sha, timeout_s=10)
    assert list(dest.parent.iterdir()) == []


def test_no_weights_and_no_network_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(GanforgeError, match=r"eval.inception_weights=PATH"):
        find_weights()
    with pytest.raises(GanforgeError, match=r"eval.inception_weights=.*nope.pth: no such file"):
        find_weights(str(tmp_path / "nope.pth"))


def test_a_file_of_another_architecture_is_refused(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(GanforgeError, match="not the FID Inception-v3 architecture"):
        load_inception(tmp_path / "other.pth")


@pytest.fixture(scope="module")
def icon_run(tmp_path_factory):
    """A folder of RGBA icons and two training steps of a small model on it."""
    root = tmp_path_factory.mktemp("icons")
    runs = tmp_path_factory.mktemp("icon_runs")
    rng = np.random.default_rng(0)
    for i in range(24):
        rgba = np.zeros((16, 16, 4), np.uint8)
        rgba[..., :3] = rng.integers(0, 256, 3)
        rgba[4:12, 4:12, 3] = 255
        Image.fromarray(rgba, "RGBA").save(root / f"icon{i:02d}.png")
    return train_tiny(runs, "data.name=folder", f"data.root={root}", "data.resolution=16", "data.channels=3",
                      "train.batch_size=8", "train.max_steps=2")


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_eval_on_a_folder_run_uses_inception_and_names_it(icon_run, random_weights, tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["eval", str(icon_run), "--metrics", "fid,prdc", "--num-samples", "16",
                 "--inception-weights", str(random_weights), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    import json

    records = json.loads(out.read_text())
    fid = records[0]
    assert np.isfinite(fid["value"]) and fid["num_real"] == 24
    assert fid["feature_extractor"].startswith("inception-v3-fid (UNPUBLISHED weights")
    assert fid["feature_extractor_sha256"] == hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert "a folder has no test split" in fid["split"]


def test_eval_on_a_folder_run_without_weights_refuses_before_sampling(icon_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import ganforge.metrics as metrics

    def no_sampling(*args, **kwargs):
        raise AssertionError("samples were generated although every metric is refused")

    monkeypatch.setattr(metrics, "generate", no_sampling)
    assert main(["eval", str(icon_run)]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "eval.inception_weights" in err and "refused: fid, kid, prdc (" in err


def _shapes_folder(root, n=40, size=16):
    """Two classes of RGBA icons: discs and squares in random colours on transparency."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    for cls in ("disc", "square"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            r = rng.integers(3, 7)
            cy, cx = rng.integers(r, size - r, 2)
            mask = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if cls == "disc" else \
                ((abs(yy - cy) <= r) & (abs(xx - cx) <= r))
            rgba = np.zeros((size, size, 4), np.uint8)
            rgba[mask] = (*rng.integers(0, 200, 3), 255)
            Image.fromarray(rgba, "RGBA").save(root / cls / f"{i:03d}.png")
    return root


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_featurenet_train_on_a_labelled_folder_and_use_it_in_eval(icon_run, tmp_path, capsys):
    import json

    data = _shapes_folder(tmp_path / "shapes")
    assert main(["featurenet", "train", str(data), "--out", str(tmp_path / "nets"), "--resolution", "16",
                 "--epochs", "20"]) == 0
    meta = tmp_path / "nets" / "shapes-cnn.json"
    info = json.loads(meta.read_text())
    assert info["classes"] == ["disc", "square"] and info["resolution"] == 16 and info["channels"] == 3
    assert info["test_accuracy"] >= 0.85, info  # discs vs squares: an easy domain
    assert "8 images" in info["test_split"]  # 10 % of 40 per class
    assert hashlib.sha256((tmp_path / "nets" / "shapes-cnn.safetensors").read_bytes()).hexdigest() == info["sha256"]
    capsys.readouterr()
    out = tmp_path / "r.json"
    assert main(["eval", str(icon_run), "--metrics", "fid", "--num-samples", "16", "--feature-net", str(meta),
                 "--out", str(out)]) == 0
    record = json.loads(out.read_text())[0]
    assert record["feature_extractor"] == "shapes-cnn" and record["feature_extractor_sha256"] == info["sha256"]
    assert record["feature_extractor_test_accuracy"] == info["test_accuracy"] and record["value"] > 0


def test_featurenet_refuses_unlabelled_folders_and_other_shapes(icon_run, tmp_path, capsys):
    assert main(["featurenet", "train", str(tmp_path / "nothing")]) == 3
    data = _shapes_folder(tmp_path / "shapes", n=6)
    assert main(["featurenet", "train", str(data), "--out", str(tmp_path / "nets"), "--resolution", "24",
                 "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["eval", str(icon_run), "--metrics", "fid", "--feature-net", str(tmp_path / "nets/shapes-cnn.json")]) == 2
    assert "trained on 3-channel 24 px images; these samples are 3-channel 16 px" in capsys.readouterr().err
