"""`ganforge data fetch` against a real HTTP server on 127.0.0.1 (never the network)."""

import dataclasses
import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ganforge.cli import main
from ganforge.data import DATASETS, sources
from ganforge.data.fetch import fetch
from ganforge.core.errors import DataError

FILES = {name: bytes([0, 0, 8, 1]) + (16).to_bytes(4, "big") + bytes(range(i, i + 16))
         for i, name in enumerate(sources.MNIST_FILES.files.values())}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        mode, _, filename = self.path.strip("/").partition("/")
        name = filename.removesuffix(".gz")
        if mode == "missing" or name not in FILES:
            self.send_error(404, "Not Found")
            return
        body = gzip.compress(FILES[name] if mode != "corrupt" else FILES[name][::-1])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + (100 if mode == "trunc" else 0)))
        self.end_headers()
        self.wfile.write(body if mode != "trunc" else body[: len(body) // 2])


@pytest.fixture
def server(monkeypatch):
    spec = DATASETS["mnist"]
    fake = dataclasses.replace(spec.files, md5={n: hashlib.md5(b).hexdigest() for n, b in FILES.items()})
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(spec, files=fake))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_good_download_is_verified_and_put_in_place(server, tmp_path):
    out = fetch("mnist", tmp_path, [f"{server}/good/"], timeout_s=5, log=lambda s: None)
    assert sorted(p.name for p in out.iterdir()) == sorted(n + ".gz" for n in FILES)
    for name, raw in FILES.items():
        assert gzip.decompress((out / (name + ".gz")).read_bytes()) == raw
    # a second fetch finds the verified files and downloads nothing (the server would 404)
    fetch("mnist", tmp_path, [f"{server}/missing/"], timeout_s=5, log=lambda s: None)


@pytest.mark.parametrize("mode, message", [("corrupt", "checksum mismatch"), ("missing", "HTTP 404"),
                                           ("trunc", "truncated|IncompleteRead")])
def test_bad_downloads_leave_nothing_behind(server, tmp_path, mode, message):
    with pytest.raises(DataError, match=message):
        fetch("mnist", tmp_path, [f"{server}/{mode}/"], timeout_s=5, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []  # not even the empty mnist/ folder it made


def test_a_failed_fetch_removes_only_the_folders_it_made(server, tmp_path):
    dest = tmp_path / "new" / "deeper"
    with pytest.raises(DataError, match="Nothing was written"):
        fetch("mnist", dest, [f"{server}/missing/"], timeout_s=5, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []  # new/, deeper/ and mnist/ were all its own
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("a user's file")
    with pytest.raises(DataError):
        fetch("mnist", tmp_path / "mine", [f"{server}/missing/"], timeout_s=5, log=lambda s: None)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep.txt"]


def test_files_verified_before_a_failure_stay_and_are_said_to(server, tmp_path, monkeypatch):
    import ganforge.data.fetch as fetch_mod

    real, calls = fetch_mod.fetch_file, []

    def second_fails(ds, filename, dest_dir, mirrors, timeout_s):
        calls.append(filename)
        return real(ds, filename, dest_dir, mirrors if len(calls) == 1 else [f"{server}/missing/"], timeout_s)

    monkeypatch.setattr(fetch_mod, "fetch_file", second_fails)
    with pytest.raises(DataError, match=r"The 1 file\(s\) fetched and verified before it stay"):
        fetch("mnist", tmp_path, [f"{server}/good/"], timeout_s=5, log=lambda s: None)
    assert len(list((tmp_path / "mnist").glob("*.gz"))) == 1


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_timeout_must_be_a_positive_number_of_seconds(tmp_path, capsys, timeout):
    rc = main(["data", "fetch", "mnist", "--dest", str(tmp_path), "--timeout", timeout])
    err = capsys.readouterr().err
    assert rc == 3 and err.startswith(f"error: --timeout {float(timeout)}") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_falls_back_to_the_next_mirror(server, tmp_path):
    fetch("mnist", tmp_path, [f"{server}/missing/", f"{server}/good/"], timeout_s=5, log=lambda s: None)
    assert len(list((tmp_path / "mnist").glob("*.gz"))) == 4


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="download failed"):
        fetch("mnist", tmp_path, ["http://127.0.0.1:9/"], timeout_s=2, log=lambda s: None)


def test_cli_reports_failure_with_exit_code(server, tmp_path, capsys):
    rc = main(["data", "fetch", "mnist", "--dest", str(tmp_path), "--mirror", f"{server}/corrupt/", "--timeout", "5"])
    err = capsys.readouterr().err
    assert rc == 3 and err.startswith("error: could not fetch mnist/") and "Traceback" not in err
    rc = main(["data", "fetch", "cifar", "--dest", str(tmp_path)])
    assert rc == 3 and "unknown dataset 'cifar'" in capsys.readouterr().err
