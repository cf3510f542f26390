"""What the web explorer shows, without the web: one image for a seed, a class, a truncation psi and
offsets along a few latent directions; for a style-based generator (StyleGAN), style mixing (the
layers from a cut on take a second seed's styles); a walk between two seeds, in z or in w; what
the page needs to know.

    ex = Explorer(load_generator("runs/00001-demo"))
    png = ex.image_png(View(seed=3, psi=0.7, offsets=(1.5, 0, 0, 0, 0)))

Every request is checked here (`View.parse`), so a bad value is a `RequestError` with a message,
which the server answers as HTTP 400 - never a 500. The image for a seed is the image `ganforge
sample --n 1 --seed S` and `load_generator(...).images(1, seed=S)` give: one latent per seed,
drawn by ganforge.latent, then moved along the directions and pulled toward the mean by psi.

Latent directions (GANSpace, Haerkoenen et al. 2020, for z-space models): principal components of
the generated images, carried back into z by least squares. Principal components of z itself
would mean nothing: z is isotropic, so every direction of it has the same variance.

A real image is edited the same way once it has a latent: `start_projection(image bytes)` finds
its z (ganforge.explore.project, from the model's encoder when it has one, else from the mean)
in a thread of its own, and a view with `p=<id>` starts from that z instead of a seed's, so the
directions, psi, style mixing and walks act on the uploaded image. The projection is in z for
every model, so that every control applies to it.
"""

from __future__ import annotations

import io
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import torch

from ganforge.core import latent
from ganforge.data.dataset import to_range
from ganforge.data.folder import load_image, parse_background
from ganforge.explore import domain_features, principal_directions, project, z_path
from ganforge.explore.project import search_steps
from ganforge.generator import GeneratorHandle
from ganforge.core.images import save_gif, to_uint8
from ganforge.core.rng import SEED_MAX

MAX_SEED = SEED_MAX  # the seed range of every command (the page's random seeds stay below 2**31)
MAX_OFFSET = 5.0  # standard deviations of z along a direction
MAX_SCALE = 16  # download size: the image enlarged up to 16 x (nearest neighbour)
MAX_WALK_STEPS = 120
MAX_WALK_BYTES = 64 * 2**20  # the frames of one walk GIF, before encoding: one request may not hog the server
MAX_UPLOAD = 16 * 2**20  # bytes of one uploaded image
MAX_TEXT = 300  # characters of a caption the page may send
MAX_EXAMPLE_CAPTIONS = 30  # of the model's recorded captions, offered by the page's caption box
PROJECT_STEPS = 150  # a projection's optimisation steps (plus the class search of a conditional G)
MAX_PROJECTIONS = 32  # kept while the server runs, the oldest forgotten first


class RequestError(ValueError):
    """A request the explorer cannot answer as asked (HTTP 400, or `status` when given)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class View:
    seed: int = 0
    c: int | None = None
    psi: float = 1.0
    offsets: tuple[float, ...] = ()
    scale: int = 1
    mix: int | None = None  # style mixing: the seed whose styles the layers from `cut` on take
    cut: int = 0
    p: str = ""  # a finished projection's id: its latent instead of the seed's
    text: str = ""  # a text-to-image model's caption ("" = the first it recorded)

    @staticmethod
    def parse(query: str | dict, explorer: "Explorer", extra: tuple[str, ...] = ()) -> tuple["View", dict]:
        """A View from a query string (`seed=3&c=2&psi=0.5&d0=1.2&scale=4`); names in `extra` are
        returned as strings for the caller. Unknown names, non-numbers and out-of-range values are
        refused with the name and the allowed range."""
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query.items())
        k, num_ws = len(explorer.directions), explorer.G.num_ws
        known = {"seed", "c", "psi", "scale", "v", "mix", "cut", "p", "text", *(f"d{i}" for i in range(k)), *extra}
        given, rest = {}, {}
        for name, value in pairs:
            if name not in known:
                raise RequestError(f"unknown parameter '{name}' (known: {', '.join(sorted(known))})")
            (rest if name in extra else given)[name] = value
        K = explorer.G.num_classes
        c = _int(given, "c", None, 0, K - 1) if K else None
        if "c" in given and not K:
            raise RequestError("parameter 'c': this generator is unconditional (it takes no class)")
        if K and c is None:
            c = 0
        text = " ".join(given.get("text", "").split())
        if text and not explorer.G.takes_text:
            raise RequestError("parameter 'text': this generator takes no caption (it is not a text-to-image model)")
        if len(text) > MAX_TEXT:
            raise RequestError(f"parameter 'text' is {len(text)} characters long; at most {MAX_TEXT}")
        for name in ("mix", "cut"):
            if name in given and not num_ws:
                raise RequestError(f"parameter '{name}': style mixing needs a style-based generator (StyleGAN); "
                                   "this one maps z to images directly")
        view = View(seed=_int(given, "seed", 0, 0, MAX_SEED), c=c, psi=_float(given, "psi", 1.0, 0.0, 1.0),
                    offsets=tuple(_float(given, f"d{i}", 0.0, -MAX_OFFSET, MAX_OFFSET) for i in range(k)),
                    scale=_int(given, "scale", 1, 1, MAX_SCALE), mix=_int(given, "mix", None, 0, MAX_SEED),
                    cut=_int(given, "cut", num_ws // 2, 1, num_ws - 1) if num_ws else 0,
                    p=explorer.projection(given["p"]).id if given.get("p") else "", text=text)
        return view, rest


def _int(given: dict, name: str, default, lo: int, hi: int):
    if name not in given:
        return default
    text = given[name].strip()
    try:
        value = int(text)
    except ValueError:
        raise RequestError(f"parameter '{name}'='{given[name]}' is not an integer ({lo} to {hi})") from None
    if not lo <= value <= hi:
        raise RequestError(f"parameter '{name}'={value} is out of range ({lo} to {hi})")
    return value


def _float(given: dict, name: str, default: float, lo: float, hi: float) -> float:
    if name not in given:
        return default
    try:
        value = float(given[name])
    except ValueError:
        raise RequestError(f"parameter '{name}'='{given[name]}' is not a number ({lo:g} to {hi:g})") from None
    if not lo <= value <= hi:  # also refuses nan
        raise RequestError(f"parameter '{name}'={given[name]} is out of range ({lo:g} to {hi:g})")
    return value


@dataclass
class ProjectionJob:
    """An uploaded image on its way to a latent: `done` of `steps` so far, then its z (and class)."""
    id: str
    steps: int
    done: int = 0
    state: str = "running"  # running | done | failed
    message: str = ""
    z: torch.Tensor | None = None
    c: int | None = None
    pixel_mse: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def status(self) -> dict:
        with self.lock:
            return {"id": self.id, "state": self.state, "done": self.done, "steps": self.steps,
                    "message": self.message, "c": self.c, "pixel_mse": self.pixel_mse}


class Explorer:
    """A generator and its directions, rendering under one lock (torch runs one image at a time;
    the server's threads wait their turn instead of fighting over the two cores)."""

    def __init__(self, G: GeneratorHandle, num_directions: int = 5, source: str = ""):
        if G.is_points:
            raise RequestError("the explorer shows images; this generator makes 2-D points")
        self.G, self.source = G, source
        self.directions = principal_directions(G, num_directions)
        self.projections: OrderedDict[str, ProjectionJob] = OrderedDict()
        self._projecting = threading.Lock()  # one projection at a time: it takes the cores for seconds

    # --- real images: projection in a thread of its own ------------------------------------------
    def start_projection(self, data: bytes, steps: int = PROJECT_STEPS) -> ProjectionJob:
        """Decode an uploaded image (every image-folder rule: EXIF, transparency, any size), then
        find its z in a background thread; the job reports its progress. Refuses a second
        projection while one runs (HTTP 503) and anything that is not an image (400)."""
        if self.G.takes_text:
            raise RequestError("uploading an image to project it is not supported for a text-to-image model")
        if len(data) > MAX_UPLOAD:
            raise RequestError(f"the image is {len(data) / 2**20:.1f} MiB; at most {MAX_UPLOAD // 2**20} MiB", 413)
        d = self.G.cfg.data
        try:
            image, _ = load_image(io.BytesIO(data), (d.resolution, d.image_width or d.resolution), d.channels,
                                  parse_background(d.background))
        except Exception as e:  # Pillow raises many types for what is not an image
            raise RequestError(f"the upload is not an image Pillow can read ({type(e).__name__})") from None
        if not self._projecting.acquire(blocking=False):
            raise RequestError("busy: one projection at a time; try again when the current one is done", 503)
        try:  # the lock is the thread's to release; until the thread runs, it is ours
            job = ProjectionJob(uuid.uuid4().hex[:12], steps + search_steps(self.G, steps))
            x = to_range(torch.tensor(image)[None], d.range)
            threading.Thread(target=self._project, args=(job, x, steps), name=f"projection-{job.id}",
                             daemon=True).start()
        except BaseException:
            self._projecting.release()
            raise
        self.projections[job.id] = job
        while len(self.projections) > MAX_PROJECTIONS:
            self.projections.popitem(last=False)
        return job

    def _project(self, job: ProjectionJob, x: torch.Tensor, steps: int) -> None:
        try:
            features, _ = domain_features(self.G)
            init = "encoder" if self.G.E is not None and self.G.encoder_space == "z" else "mean"

            def progress(step: int, loss: float) -> None:
                with job.lock:
                    job.done = min(step, job.steps)

            # a conditional G's class is searched first (a short projection per class)
            result = project(self.G, x, "z", steps, init, None, features, progress=progress)
            with job.lock:
                job.z, job.pixel_mse = result.latent, float(result.pixel[0])
                job.c = None if result.c is None else int(result.c[0])
                job.done, job.state = job.steps, "done"
        except Exception as e:  # reported to the page through the job, never lost in a thread
            with job.lock:
                job.state, job.message = "failed", f"{type(e).__name__}: {e}"
        finally:
            self._projecting.release()

    def projection(self, job_id: str) -> ProjectionJob:
        job = self.projections.get(job_id)
        if job is None:
            raise RequestError(f"parameter 'p'='{job_id}': no such projection (they are kept while the server "
                               f"runs, the newest {MAX_PROJECTIONS}); upload the image again", 404)
        if job.state != "done":
            raise RequestError(f"parameter 'p'='{job_id}': the projection is {job.state} ({job.done} of "
                               f"{job.steps} steps){': ' + job.message if job.message else ''}", 409)
        return job

    def info(self) -> dict:
        """What the page builds its controls from."""
        cfg = self.G.cfg
        return {"source": self.source, "step": self.G.step, "data": cfg.data.name, "recipe": cfg.train.recipe,
                "arch": cfg.model.arch, "z_dim": cfg.model.z_dim, "z_dist": cfg.model.z_dist,
                "classes": list(self.G.class_names), "directions": len(self.directions),
                "max_offset": MAX_OFFSET, "max_scale": MAX_SCALE, "max_walk_steps": MAX_WALK_STEPS,
                "num_ws": self.G.num_ws, "spaces": ["z", "w"] if self.G.num_ws else ["z"],
                "project_steps": PROJECT_STEPS, "max_upload": MAX_UPLOAD, "encoder": self.G.E is not None,
                "text": self.G.takes_text, "text_encoder": self.G.text_encoder,
                "captions": list(dict.fromkeys(cfg.model.captions))[:MAX_EXAMPLE_CAPTIONS]}

    def base_inputs(self, view: View, seed: int | None = None) -> dict:
        """The view's starting latent: its projection's z (`p`), else the seed's (the one `sample
        --seed` draws first); `seed` asks for that seed's instead."""
        if view.p and seed is None:
            job = self.projections.get(view.p)
            if job is None:  # forgotten since the request was parsed (many uploads in between)
                raise RequestError(f"parameter 'p'='{view.p}': no such projection; upload the image again", 404)
            inputs = {"z": job.z.clone()}
            if self.G.takes_text:
                inputs["t"] = self.G.text_input([self.caption(view)])
            return {**inputs, "c": torch.tensor([view.c])} if self.G.num_classes else inputs
        return self.G.inputs(1, seed=view.seed if seed is None else seed, c=view.c, text=self.caption(view))

    def caption(self, view: View) -> str | None:
        """The view's caption for a text-to-image model (its own, else the model's first recorded
        one), None for other models."""
        if not self.G.takes_text:
            return None
        return view.text or (self.G.cfg.model.captions[:1] or ["an image"])[0]

    def latent_inputs(self, view: View) -> dict:
        """The view's starting latent (a seed's or a projection's), moved along the directions,
        then pulled toward the mean latent by psi."""
        inputs = self.base_inputs(view)
        if view.offsets:
            inputs["z"] = inputs["z"] + torch.tensor(view.offsets, dtype=inputs["z"].dtype) @ self.directions
        return self.G.with_psi(inputs, view.psi)

    def mixed(self, view: View, ws: torch.Tensor) -> torch.Tensor:
        """Styles with the layers from view.cut on taken from the mix seed's (at the view's psi)."""
        if view.mix is None:
            return ws
        fine = self.G.styles(self.G.with_psi(self.G.inputs(1, seed=view.mix, text=self.caption(view)), view.psi))
        return self.G.mix_styles(ws, fine, view.cut)

    def render(self, view: View) -> torch.Tensor:
        """[1, C, H, W]: the view's image in the data's range."""
        inputs = self.latent_inputs(view)
        if view.mix is None:
            return self.G(inputs)
        return self.G({"ws": self.mixed(view, self.G.styles(inputs))})

    def image(self, view: View):
        """The view as a PIL image, enlarged `view.scale` x with nearest neighbour."""
        from PIL import Image

        im = self.G.to_images(self.render(view).cpu())[0]
        if view.scale > 1:
            im = im.resize((im.width * view.scale, im.height * view.scale), Image.Resampling.NEAREST)
        return im

    def image_png(self, view: View) -> bytes:
        buf = io.BytesIO()
        self.image(view).save(buf, format="PNG")
        return buf.getvalue()

    def check_space(self, space: str) -> None:
        if space not in ("z", "w") or (space == "w" and not self.G.num_ws):
            spaces = "z or w" if self.G.num_ws else "z (w is StyleGAN's intermediate latent; this generator has none)"
            raise RequestError(f"parameter 'space'='{space}': {spaces}")

    def walk_gif(self, view: View, seed_b: int, steps: int, fps: float = 12.0, space: str = "z") -> bytes:
        """A looping GIF from view.seed to seed_b and back, at the view's class, psi and direction
        offsets, enlarged view.scale x: in z (spherical for normal z) or, for a style-based
        generator, in straight lines in w. With style mixing, the layers from the cut on keep the
        mix seed's styles all the way: only the coarse styles walk."""
        self.check_space(space)

        if not 0 <= seed_b <= MAX_SEED:
            raise RequestError(f"parameter 'to'={seed_b} is out of range (0 to {MAX_SEED})")
        if not 2 <= steps <= MAX_WALK_STEPS:
            raise RequestError(f"parameter 'steps'={steps} is out of range (2 to {MAX_WALK_STEPS})")
        H = W = self.G.cfg.data.resolution
        frames_bytes = 2 * steps * 3 * H * W * view.scale ** 2  # RGB frames, there and back
        if frames_bytes > MAX_WALK_BYTES:
            raise RequestError(f"a walk of {2 * steps} frames at scale {view.scale} is too large "
                               f"({frames_bytes / 2**20:.0f} MiB of frames, at most {MAX_WALK_BYTES // 2**20}): "
                               "lower 'steps' or 'scale'")
        if space == "w":
            a = self.G.styles(self.latent_inputs(view))
            b = self.G.styles(self.latent_inputs(View(seed=seed_b, c=view.c, psi=view.psi, offsets=view.offsets,
                                                      text=view.text)))
            inputs = {"ws": self.mixed(view, latent.w_line([(a, b), (b, a)], steps, closed=True))}
        else:
            keys = [self.base_inputs(view), self.base_inputs(view, seed_b)]
            inputs = z_path(self.G, keys, steps, closed=True)  # there and back
            if view.offsets:
                inputs["z"] = inputs["z"] + torch.tensor(view.offsets, dtype=inputs["z"].dtype) @ self.directions
            inputs = self.G.with_psi(inputs, view.psi)
            if view.mix is not None:
                inputs = {"ws": self.mixed(view, self.G.styles(inputs))}
        x = self.G.generate(inputs, batch=256)
        buf = io.BytesIO()
        save_gif(to_uint8(x, self.G.value_range), buf, duration_ms=round(1000 / fps), scale=view.scale)
        return buf.getvalue()
