"""The restoration page of `ganforge serve` for a completion model: its API on a real socket and
the mask brush in a real headless Chromium."""

import base64
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_overrides
from ganforge import api, validate
from ganforge.serve.app import ExplorerServer
from ganforge.serve.explorer import RequestError
from ganforge.serve.restorer import Restorer
from test_serve import CHROMIUM, CHROMEDRIVER, browser, get  # noqa: F401  (the browser fixture)


@pytest.fixture(scope="module")
def inpaint_run(tmp_path_factory):
    """A tiny pix2pix trained to fill boxes in 28 px digits (its U-Net is given the mask)."""
    tmp = tmp_path_factory.mktemp("inpaint")
    cfg = validate.load(None, tiny_overrides(tmp, "train.recipe=pix2pix", "model.G=unet", "model.D=patchgan",
                                             "model.width=4", "data.resolution=28", "data.degrade=box", "model.mask_input=true",
                                             "train.batch_size=8", "train.max_steps=3"))
    return api.train(cfg, log=lambda s: None)[0]


@pytest.fixture(scope="module")
def restore_server(inpaint_run):
    s = ExplorerServer(inpaint_run, port=0).start()
    yield s
    s.stop()


def digit_png(seed: int = 0) -> bytes:
    g = np.random.default_rng(seed)
    x = np.zeros((28, 28), np.uint8)
    x[6:22, 10:18] = g.integers(120, 255, (16, 8))
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG")
    return buf.getvalue()


def box_mask_png() -> bytes:
    m = np.zeros((28, 28), np.uint8)
    m[8:16, 8:20] = 255
    buf = io.BytesIO()
    Image.fromarray(m).save(buf, format="PNG")
    return buf.getvalue()


def post(url: str, body: bytes, ctype: str = "application/json") -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_api_restores_an_image_under_a_mask_keeping_the_rest(restore_server):
    status, _, body = get(restore_server.url + "api/info")
    info = json.loads(body)
    assert status == 200 and info["page"] == "restore" and info["needs_mask"] and info["output_size"] == [28, 28]
    status, _, page = get(restore_server.url)
    assert b"ganforge restore" in page
    status, ctype, body = post(restore_server.url + "api/restore",
                               json.dumps({"image": "data:image/png;base64," + b64(digit_png()),
                                           "mask": b64(box_mask_png())}).encode())
    assert status == 200 and ctype == "image/png"
    out = np.asarray(Image.open(io.BytesIO(body)))
    given = np.asarray(Image.open(io.BytesIO(digit_png())))
    hole = np.asarray(Image.open(io.BytesIO(box_mask_png()))) > 127
    assert out.shape == (28, 28) and np.array_equal(out[~hole], given[~hole])


@pytest.mark.parametrize("body, ctype, status, message", [
    ({"image": "IMG"}, "application/json", 400, "'mask': this model fills missing pixels"),
    ({"image": "***", "mask": "MASK"}, "application/json", 400, "'image': not valid base64"),
    ({"image": b64(b"not a png"), "mask": "MASK"}, "application/json", 400, "'image': not an image"),
    ({"image": "IMG", "mask": 3}, "application/json", 400, "'mask': a base64 string"),
    ({"mask": "MASK"}, "application/json", 400, "'image': missing"),
    ("IMG", "application/octet-stream", 415, "Content-Type: application/json"),
])
def test_bad_restore_requests_get_a_4xx_naming_the_key(restore_server, body, ctype, status, message):
    names = {"IMG": b64(digit_png()), "MASK": b64(box_mask_png())}
    if isinstance(body, dict):
        data = json.dumps({k: names.get(v, v) if isinstance(v, str) else v for k, v in body.items()}).encode()
    else:
        data = names[body].encode()
    code, ctype_out, answer = post(restore_server.url + "api/restore", data, ctype)
    assert code == status and ctype_out == "application/json" and message in json.loads(answer)["error"]


def test_the_explorer_routes_are_not_there_for_a_completion_model(restore_server):
    status, _, body = get(restore_server.url + "api/image?seed=1")
    assert status == 404 and "/api/restore" in json.loads(body)["error"]
    status, _, body = get(restore_server.url + "api/restore")
    assert status == 405 and "POST only to /api/restore" in json.loads(body)["error"]


def test_a_gan_or_a_cyclegan_is_no_completion_model(tiny_run):
    with pytest.raises(RequestError, match="completion model"):
        Restorer(api.load_generator(tiny_run))


@pytest.mark.slow
def test_the_page_in_chromium_paints_a_mask_and_restores(browser, restore_server, tmp_path):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    upload = tmp_path / "my digit.png"
    upload.write_bytes(digit_png(1))
    browser.get(restore_server.url)
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.state") == "ready")
    assert browser.find_element("id", "restore").get_attribute("disabled")  # nothing to restore yet
    browser.find_element("id", "upload").send_keys(str(upload))
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.state") == "loaded")
    assert browser.find_element("id", "restore").get_attribute("disabled")  # a mask is needed first
    canvas = browser.find_element("id", "canvas")
    ActionChains(browser).move_to_element_with_offset(canvas, -60, -40).click_and_hold() \
        .move_by_offset(80, 0).move_by_offset(0, 40).release().perform()
    masked = int(browser.execute_script("return document.body.dataset.masked"))
    assert 10 < masked < 28 * 28
    browser.find_element("id", "restore").click()
    WebDriverWait(browser, 60).until(
        lambda d: d.execute_script("return document.body.dataset.state") in ("restored", "error"))
    assert browser.execute_script("return document.body.dataset.state") == "restored", \
        browser.find_element("id", "error").text
    # outside the painted mask the restored image is the uploaded one, pixel for pixel
    changed_outside, changed_inside = browser.execute_script("""
        const img = document.getElementById('result'), W = 28, H = 28;
        const c = document.createElement('canvas'); c.width = W; c.height = H;
        const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const out = g.getImageData(0, 0, W, H).data;
        const given = picture.getContext('2d').getImageData(0, 0, W, H).data;
        const m = mask.getContext('2d').getImageData(0, 0, W, H).data;
        let outside = 0, inside = 0;
        for (let i = 0; i < W * H; i++) {
          const d = Math.abs(out[4 * i] - given[4 * i]);
          if (m[4 * i] > 127) { if (d > 1) inside++; } else if (d > 1) outside++;
        }
        return [outside, inside];""")
    assert changed_outside == 0 and changed_inside > 0
    assert browser.find_element("id", "download").is_displayed()
