"""`ganforge export --format onnx`: the generator as an ONNX graph that runs without ganforge or
PyTorch. Inputs: `z` float32 [n, z_dim] (and `c` int64 [n] for a conditional generator), with a
free batch size; output `x`: samples in the data's range. A translation model takes images `a`
[n, C, H, W] (CycleGAN: `a` and `b`) at its training size and returns `AtoB` (and `BtoA`) ([-1, 1] for tanh generators, [0, 1] for
sigmoid ones), [n, C, H, W] (or [n, 2] points). The graph's metadata says which, with the latent
distribution, so a user can draw z the way training did. A model with an encoder (train.recipe=
encoder or bigan) also gets NAME.encoder.onnx beside: images `x` [n, C, H, W] in the data's range
-> `latent` [n, size] in the space its metadata names (z, w or w+). A model with a classifier
(train.recipe=ssgan) gets NAME.classifier.onnx: images `x` -> `probabilities` [n, K] and `p_real`
[n], the class names in its metadata (a JSON list).

Uses torch's ONNX exporter (torch.export based), which needs the `onnx` and `onnxscript` packages:
the `ganforge[onnx]` extra, imported here only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from ganforge.core import latent
from ganforge.core.version import __version__
from ganforge.core.errors import GanforgeError
from ganforge.core.io import default_file_mode, remove_stale_temps


class _Graph(torch.nn.Module):
    """G with the inputs as ONNX sees them: positional z (and c, or a caption's features t)."""

    def __init__(self, G: torch.nn.Module, conditional: bool):
        super().__init__()
        self.G, self.conditional = G, conditional

    def forward(self, z, c=None):
        return self.G(z, c) if self.conditional else self.G(z)


class _Encoder(torch.nn.Module):
    """E as ONNX sees it: images x -> latents, kept in the latents' box as `encode` keeps them."""

    def __init__(self, E: torch.nn.Module, box: float | None):
        super().__init__()
        self.E, self.box = E, box

    def forward(self, x):
        code = self.E(x)
        return code if self.box is None else code.clamp(-self.box, self.box)


class _Translator(torch.nn.Module):
    """A translation model as ONNX sees it: pix2pix a -> AtoB; CycleGAN (a, b) -> (AtoB, BtoA); a
    completion net that takes the mask (GAIN, pix2pix with model.mask_input) (a, mask) -> the
    completion, observed pixels kept."""

    def __init__(self, G: torch.nn.Module):
        super().__init__()
        self.G = G

    def forward(self, a, b=None):
        if isinstance(self.G, torch.nn.ModuleDict):
            return self.G["AB"](a), self.G["BA"](b)
        if getattr(self.G, "takes_mask", False):
            mask = b.expand_as(a)
            return mask * self.G(a, b) + (1 - mask) * a
        return self.G(a)


def _graph_and_inputs(handle):
    """(module, example args, input names, output names, extra metadata) for a generator handle."""
    cfg = handle.cfg
    if not handle.takes_latent:
        shape = (2, cfg.data.channels, cfg.data.resolution, cfg.data.image_width or cfg.data.resolution)
        example = torch.zeros(shape)
        if getattr(handle.G, "takes_mask", False):
            meta = {"recipe": cfg.train.recipe, "image_size": f"{shape[2]}x{shape[3]}",
                    "inputs": "a (images with missing pixels) and mask ([N, 1, H, W], 1 = missing)"}
            return (_Translator(handle.G.cpu().eval()), (example, torch.zeros(shape[0], 1, *shape[2:])),
                    ["a", "mask"], ["completed"], meta)
        both = len(handle.directions) == 2
        args = (example, example.clone()) if both else (example,)
        meta = {"recipe": cfg.train.recipe, "image_size": f"{shape[2]}x{shape[3]}",
                "inputs": "a (domain A) and b (domain B) images" if both else "a (domain A) images"}
        return (_Translator(handle.G.cpu().eval()), args, ["a", "b"][:len(args)],
                ["AtoB", "BtoA"][:len(args)], meta)
    K = handle.num_classes
    example = handle.inputs(2, seed=0)
    meta = {"z_dim": str(cfg.model.z_dim), "z_dist": cfg.model.z_dist, "num_classes": str(K)}
    if handle.takes_text:  # the caption's features are the second input: the encoder runs outside the graph
        t = example["t"]
        meta["text_encoder"] = handle.text_encoder
        meta["t"] = (f"int64 [N, {t.shape[1]}]: the lower-cased caption's UTF-8 bytes + 1, 0-padded"
                     if cfg.model.text_encoder == "chars" else f"float32 {list(t.shape[1:])}: the encoder's vectors")
        return _Graph(handle.G.cpu().eval(), True), (example["z"], t), ["z", "t"], ["x"], meta
    args = (example["z"], example["c"]) if K else (example["z"],)
    return _Graph(handle.G.cpu().eval(), bool(K)), args, ["z", "c"][:len(args)], ["x"], meta


class _Classifier(torch.nn.Module):
    """C as ONNX sees it: images x -> class probabilities and p_real (the K+1 classifier's
    Z / (Z + 1), its fake class's logit being 0), as `ganforge classify` reports them."""

    def __init__(self, C: torch.nn.Module):
        super().__init__()
        self.C = C

    def forward(self, x):
        logits = self.C(x)
        return logits.softmax(1), torch.sigmoid(logits.logsumexp(1))


def encoder_path(out: Path) -> Path:
    """Where the encoder's graph goes beside the generator's: G.onnx -> G.encoder.onnx."""
    return out.with_name(f"{out.stem}.encoder.onnx")


def classifier_path(out: Path) -> Path:
    """Where the classifier's graph goes beside the generator's: G.onnx -> G.classifier.onnx."""
    return out.with_name(f"{out.stem}.classifier.onnx")


def export_onnx(handle, out: Path) -> Path:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        raise GanforgeError("ONNX export needs the onnx and onnxscript packages: pip install 'ganforge[onnx]'") from None
    if not isinstance(handle.G, torch.nn.Module):
        raise GanforgeError("only a generator network can be exported")
    cfg = handle.cfg
    graph, args, inputs, outputs, extra = _graph_and_inputs(handle)
    common = {"producer": f"ganforge {__version__}", "step": str(handle.step), "value_range":
              "[-1, 1]" if handle.value_range == "signed" else "[0, 1]", "dataset": cfg.data.name}
    if getattr(handle, "E", None) is not None:  # first: the generator's file is the last one written
        x = handle.sample(2, seed=0)
        box = latent.BOX.get(cfg.model.z_dist) if handle.encoder_space == "z" else None
        _write(_Encoder(handle.E.cpu().eval(), box), (x,), ["x"], ["latent"],
               {**common, "space": handle.encoder_space, "size": str(handle.space_size(handle.encoder_space))},
               encoder_path(out), "encoder")
    if getattr(handle, "C", None) is not None:
        x = handle.sample(2, seed=0)
        _write(_Classifier(handle.C.cpu().eval()), (x,), ["x"], ["probabilities", "p_real"],
               {**common, "classes": json.dumps(list(handle.class_names))}, classifier_path(out), "classifier")
    return _write(graph, args, inputs, outputs, {**common, **extra}, out, "generator")


def _write(graph: torch.nn.Module, args: tuple, inputs: list[str], outputs: list[str], meta: dict, out: Path,
           what: str) -> Path:
    """One graph with a free batch size and its metadata, written atomically to `out`."""
    import onnx

    n = torch.export.Dim("n", min=1)
    shapes = tuple({0: n} for _ in args)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out.parent, [out.name])
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.fchmod(fd, default_file_mode())  # onnx.save keeps the file's mode: the umask's, not mkstemp's 0600
    os.close(fd)
    try:
        program = torch.onnx.export(graph.eval(), args, input_names=inputs, output_names=outputs,
                                    dynamic_shapes=shapes, dynamo=True, verbose=False)
        model = program.model_proto
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, tmp)
        os.replace(tmp, out)
    except GanforgeError:
        raise
    except Exception as e:  # the exporter's own failures: say which net and why, plainly
        raise GanforgeError(f"ONNX export of this {what} failed ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:200]})") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out
