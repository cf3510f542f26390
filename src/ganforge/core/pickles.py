"""What a pickle would call, read without running it: the names its GLOBAL opcodes import.

torch refuses a checkpoint that pickles code (`torch.load(weights_only=True)`), but words the
refusal differently for different names (`Unsupported global: GLOBAL builtins.print ...`,
`Trying to load unsupported GLOBAL posix.system whose module posix is blocked`, ...). To tell
pickled code from a damaged file whatever torch's wording, ganforge reads the pickle's opcodes with
`pickletools` (which only parses) and names the first import that is not tensor data.
"""

from __future__ import annotations

import pickletools
import zipfile
from pathlib import Path

# what torch.save writes for tensors, dtypes, devices and plain containers
_DATA_MODULES = {"torch", "torch._utils", "torch._tensor", "collections", "builtins", "__builtin__", "_codecs"}
_DATA_NAMES = {"collections.OrderedDict", "builtins.set", "builtins.frozenset", "builtins.bytearray",
               "builtins.slice", "builtins.complex", "__builtin__.set", "__builtin__.frozenset",
               "__builtin__.bytearray", "__builtin__.slice", "__builtin__.complex", "_codecs.encode",
               "torch.Size", "torch.device"}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
               "SHORT_BINSTRING"}
MAX_PICKLE = 256 << 20  # bytes of a pickle read to look for imports


def _is_data(name: str) -> bool:
    module, _, attr = name.rpartition(".")
    if name in _DATA_NAMES:
        return True
    if module == "torch":
        return attr.endswith("Storage") or attr in _DTYPES
    return module in ("torch._utils", "torch._tensor") and attr.startswith("_rebuild_")


_DTYPES = {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
           "complex64", "complex128", "float", "double", "half", "long", "int", "short"}


def _import_name(module, attr) -> str | None:
    """`module.attr` when both are names Python could import, else None: random bytes parse as a few
    opcodes too, and a STACK_GLOBAL on whatever they pushed is noise, not pickled code (torch's
    loader refuses such a file either way; this only decides how the refusal is worded)."""
    if not (isinstance(module, str) and isinstance(attr, str)):
        return None
    if not all(part.isidentifier() for part in module.split(".") + attr.split(".")):
        return None
    return f"{module}.{attr}"


def _pickle_bytes(path: Path) -> bytes:
    """The pickle of a torch zip checkpoint (its data.pkl), or the file itself (an old-style pickle)."""
    try:
        with zipfile.ZipFile(path) as z:
            inner = [n for n in z.namelist() if n.endswith("data.pkl")]
            if inner:
                with z.open(inner[0]) as f:
                    return f.read(MAX_PICKLE)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        pass
    with open(path, "rb") as f:
        return f.read(MAX_PICKLE)


def imported_code(path: str | Path) -> str | None:
    """The first name (module.attribute) the pickle in `path` imports that is not tensor data, or
    None when it imports only data (or cannot be parsed that far: a truncated file)."""
    pushed: list = []  # values the last opcodes pushed, for STACK_GLOBAL (module and name from the stack)
    memo: dict = {}
    try:
        for op, arg, _ in pickletools.genops(_pickle_bytes(Path(path))):
            name = None
            if op.name in ("GLOBAL", "INST"):
                name = _import_name(*arg.split(" ", 1)) if " " in arg else None
            elif op.name == "STACK_GLOBAL":
                name = _import_name(*pushed[-2:]) if len(pushed) >= 2 else None
            elif op.name in _STRING_OPS:
                pushed.append(arg)
            elif op.name == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[-1] if pushed else None
            elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                pushed.append(memo.get(arg))
            elif op.name not in ("FRAME", "PROTO"):  # anything else pushes or pops what is not a name
                pushed.append(None)
            if name is not None and not _is_data(name):
                return name
    except Exception:  # noqa: BLE001 - a truncated or foreign pickle: whatever was read so far is all we know
        return None
    return None
