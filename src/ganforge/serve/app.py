"""`ganforge serve`: the explorer page and its small JSON / PNG API, on Starlette + uvicorn.

Starlette rather than FastAPI: the API is four GET routes whose parameters the Explorer checks
itself (one place, one wording, shared with the tests), so FastAPI's pydantic validation and
OpenAPI schema would be a second validator and two more dependencies for nothing. uvicorn is the
ASGI server Starlette's own documentation runs it on.

Routes
    /                 the page (page.html: plain HTML + JS, no build step, nothing from a CDN)
    /api/info         JSON: the generator, its classes, how many directions, the report's address
    /api/image        PNG of one View (seed, c, psi, d0..dk, scale)
    /api/walk         looping GIF from `seed` to `to` and back (`steps` frames a leg)
    /api/project      POST an image: its projection (a job to poll with GET ?id=)
    /run/...          the run's report/ and samples/ files, when the source is in a run folder

A completion model (pix2pix, GAIN, SRGAN on data.degrade pairs) gets the restoration page instead
(restore.html: upload, a brush to paint the missing pixels, the restored image): / and /api/info
as above, and POST /api/restore with JSON {"image": PNG base64, "mask": PNG base64 or null} -> PNG.

Every error is JSON {"error": message} with a 4xx status (a 500 only for a bug, still as JSON).
Renders take one lock; at most MAX_WAITING wait for it and more get 503 "busy" at once, so a
client that floods the server gets told instead of queued without bound (the page itself keeps
one image request in flight and replaces, not queues, the next).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import socket
import threading
from pathlib import Path

from ganforge.core.errors import GanforgeError, bounded
from ganforge.serve.explorer import MAX_SEED, MAX_UPLOAD, MAX_WALK_STEPS, Explorer, RequestError, View, _int
from ganforge.serve.restorer import Restorer
from ganforge.engine.run import is_run_folder, run_of_checkpoint
from ganforge.api import load_generator

MAX_WAITING = 4
RUN_FILES = ("report", "samples")  # the run's sub-folders the page may show
FILE_TYPES = {".html": "text/html; charset=utf-8", ".png": "image/png", ".gif": "image/gif",
              ".json": "application/json", ".jpg": "image/jpeg"}


def _need_extra():
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise GanforgeError(f"ganforge serve needs the [serve] extra ({e.name} is missing): "
                            "pip install 'ganforge[serve]'") from None


class Renderer:
    """One render at a time; a bounded number waiting."""

    def __init__(self, max_waiting: int = MAX_WAITING):
        self._lock, self._count_lock = threading.Lock(), threading.Lock()
        self.waiting, self.max_waiting = 0, max_waiting

    def __call__(self, fn, *args):
        with self._count_lock:
            if self.waiting >= self.max_waiting:
                raise RequestError(f"busy: {self.waiting} images are already waiting; try again", status=503)
            self.waiting += 1
        try:
            with self._lock:
                return fn(*args)
        finally:
            with self._count_lock:
                self.waiting -= 1


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(explorer: Explorer | Restorer, run_dir: Path | None = None, allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES):
    """The Starlette application for one explorer (and the run folder its generator came from);
    requests naming another host are refused unless `allowed_hosts` is empty (--host opened it)."""
    _need_extra()
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    render = Renderer()
    restoring = isinstance(explorer, Restorer)
    page = (Path(__file__).with_name("restore.html" if restoring else "page.html")).read_text(encoding="utf-8")
    model_id = hashlib.sha256(f"{explorer.source}:{explorer.G.step}:{explorer.G.cfg}".encode()).hexdigest()[:12]
    report = run_dir / "report" / "report.html" if run_dir else None
    cache = {"Cache-Control": "public, max-age=86400"}  # the same query (with v=model id) is the same image

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def home(request):
        return Response(page, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})

    async def info(request):
        body = explorer.info()
        body["model_id"] = model_id
        body["report"] = "/run/report/report.html" if report and report.is_file() else None
        return JSONResponse(body)

    async def image(request):
        view, _ = View.parse(request.url.query, explorer)
        png = await run_in_threadpool(render, explorer.image_png, view)
        return Response(png, media_type="image/png", headers=cache)

    async def walk(request):
        view, rest = View.parse(request.url.query, explorer, extra=("to", "steps", "space"))
        to = _int(rest, "to", (view.seed + 1) % (MAX_SEED + 1), 0, MAX_SEED)
        steps = _int(rest, "steps", 16, 2, MAX_WALK_STEPS)
        space = rest.get("space", "z")
        explorer.check_space(space)  # before queueing for the renderer
        gif = await run_in_threadpool(render, explorer.walk_gif, view, to, steps, 12.0, space)
        return Response(gif, media_type="image/gif", headers=cache)

    async def start_projection(request):
        # application/octet-stream (not a form type) makes a browser ask first from another origin,
        # so no other web page can make this server project images.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
            return error(415, "send the image file itself as the body, Content-Type: application/octet-stream")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_UPLOAD:
                return error(413, f"the image is larger than {MAX_UPLOAD // 2**20} MiB")
        job = await run_in_threadpool(explorer.start_projection, bytes(body))
        return JSONResponse(job.status(), status_code=202)

    async def projection_status(request):
        job_id = request.query_params.get("id", "")
        job = explorer.projections.get(job_id)
        if job is None:
            return error(404, f"no projection '{job_id}' (upload the image again)")
        return JSONResponse(job.status(), headers={"Cache-Control": "no-store"})

    async def projection(request):
        return await (start_projection(request) if request.method == "POST" else projection_status(request))

    async def restore(request):
        # application/json (not a form type) makes a browser ask first from another origin
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return error(415, 'send JSON {"image": PNG base64, "mask": PNG base64 or null}, '
                              "Content-Type: application/json")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > 3 * MAX_UPLOAD:  # two images in base64
                return error(413, f"the request is larger than {3 * MAX_UPLOAD // 2**20} MiB")
        image, mask = _restore_request(bytes(body))
        png = await run_in_threadpool(render, explorer.restore_png, image, mask)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def run_file(request):
        rel = Path(request.path_params["path"])
        if run_dir is None:
            return error(404, "no run folder: serve a run folder or a checkpoint inside one to see its report")
        try:  # judged by where the path really leads, not by how it is spelled (.., links)
            path = (run_dir / rel).resolve()
            inside = path.relative_to(run_dir.resolve()).parts[:1] in [(name,) for name in RUN_FILES]
            found = inside and path.suffix.lower() in FILE_TYPES and path.is_file()
        except (ValueError, OSError):  # outside the run folder, or not a path the system takes (a NUL
            found = False              # byte, a name longer than the file system allows)
        if not found:
            return error(404, f"/run/{bounded(rel.as_posix(), 120)}: no such report file")
        return FileResponse(path, media_type=FILE_TYPES[path.suffix.lower()])

    async def on_request_error(request, exc: RequestError):
        return error(exc.status, str(exc))

    async def on_http_error(request, exc: HTTPException):
        api = "/api/info, /api/restore" if restoring else "/api/info, /api/image, /api/walk, /api/project"
        post = "/api/restore" if restoring else "/api/project"
        message = {404: f"{request.url.path}: no such page (the page is /, the API {api})",
                   405: f"{request.method} is not allowed here (GET only; POST only to {post})"}
        return error(exc.status_code, message.get(exc.status_code, str(exc.detail)))

    async def on_bug(request, exc: Exception):
        # the exception's text may name server-side paths: the answer names only its kind
        return error(500, f"internal error ({type(exc).__name__}) answering {bounded(request.url.path, 120)}: "
                          "the server's log has the details")

    routes = [Route("/", home), Route("/api/info", info), Route("/run/{path:path}", run_file)]
    if restoring:
        routes.append(Route("/api/restore", restore, methods=["POST"]))
    else:
        routes += [Route("/api/image", image), Route("/api/walk", walk),
                   Route("/api/project", projection, methods=["GET", "POST"])]
    middleware = []
    if allowed_hosts:  # a page on 127.0.0.1 answers only to its own names: no DNS rebinding from a web page
        from starlette.middleware import Middleware

        middleware.append(Middleware(_OwnNamesOnly, hosts=frozenset(allowed_hosts)))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={RequestError: on_request_error, HTTPException: on_http_error,
                                        Exception: on_bug})
    app.state.explorer = explorer
    return app


def _restore_request(body: bytes) -> tuple[bytes, bytes | None]:
    """(image bytes, mask bytes or None) of a restore request's JSON, or a RequestError naming the key."""
    try:
        data = json.loads(body)
    except ValueError:
        raise RequestError('the body is not JSON: send {"image": PNG base64, "mask": PNG base64 or null}') from None
    if not isinstance(data, dict) or not isinstance(data.get("image"), str):
        raise RequestError("'image': missing; send the image as base64 (a data: URL is fine)")
    out = []
    for key in ("image", "mask"):
        value = data.get(key)
        if value is None:
            out.append(None)
            continue
        if not isinstance(value, str):
            raise RequestError(f"'{key}': a base64 string, not {type(value).__name__}")
        try:
            out.append(base64.b64decode(value.split(",", 1)[1] if value.startswith("data:") else value, validate=True))
        except (binascii.Error, ValueError, IndexError):
            raise RequestError(f"'{key}': not valid base64") from None
    return out[0], out[1]


class _OwnNamesOnly:
    """ASGI middleware: HTTP requests whose Host header names another machine get a JSON 400 (a
    web page elsewhere cannot reach this server through a DNS name pointed at 127.0.0.1)."""

    def __init__(self, app, hosts: frozenset[str]):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = (host.split("]")[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]).lower()
            if host and name not in self.hosts:  # no Host header (HTTP/1.0): not a browser, no rebinding
                from starlette.responses import JSONResponse

                response = JSONResponse({"error": f"Host '{host}' refused: this server answers to 127.0.0.1 "
                                         "only (ganforge serve --host opens it deliberately)"}, status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def run_folder_of(source: str | Path) -> Path | None:
    """The run folder a source lies in: the folder itself, <run>/ckpt/x.pt, or <run>/export/..."""
    path = Path(source).resolve()
    if path.is_dir() and is_run_folder(path):
        return path
    if path.is_file() and path.suffix == ".pt":
        return run_of_checkpoint(path)
    export = path if path.is_dir() else path.parent
    return export.parent if is_run_folder(export.parent) else None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a clear error when the port is taken (port 0: any free port)."""
    if not 0 <= port <= 65535:
        raise GanforgeError(f"--port {port}: a port is 0 to 65535 (0: any free port)")
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise GanforgeError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    sock = socket.socket(info[0], socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a restart may reuse it at once
    try:
        sock.bind(info[4])
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise GanforgeError(f"port {port} on {host} is in use (another server?): pick another with "
                                "--port, or --port 0 for any free one") from None
        raise GanforgeError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(64)
    return sock


class ExplorerServer:
    """The explorer on a socket: `run()` in the foreground (the CLI) or `start()` / `stop()` in a
    thread (tests, notebooks)."""

    def __init__(self, source: str | Path, host: str = "127.0.0.1", port: int = 8000, directions: int = 5,
                 device: str = "cpu"):
        _need_extra()
        import uvicorn

        try:
            G = load_generator(source, device)
            explorer = Explorer(G, directions, source=str(source)) if G.takes_latent else Restorer(G, str(source))
        except RequestError as e:
            raise GanforgeError(f"{source}: {e}") from None
        loopback = host in LOOPBACK_NAMES
        self.app = create_app(explorer, run_folder_of(source), LOOPBACK_NAMES if loopback else ())
        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False))
        self._thread = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> "ExplorerServer":
        import time

        self._thread = threading.Thread(target=self.run, name="ganforge-serve", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self.server.started:
            raise GanforgeError("the explorer server did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
