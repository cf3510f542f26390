"""`ganforge` command line: parse, call the library, report errors plainly.

Each command is one module of this package with `HELP`, `add_arguments(parser)` and
`run(args) -> exit code`; `main` finds them by listing the package, so a new command is one file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from ganforge.core.errors import GanforgeError, bounded
from ganforge.core.version import __version__


def commands() -> dict:
    """name -> command module (eval_.py is `eval`: a module may not be called eval)."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            found[info.name.rstrip("_")] = importlib.import_module(f"{__name__}.{info.name}")
    return found


ORDER = ("train", "sample", "interp", "stylemix", "translate", "restore", "serve", "export", "eval", "featurenet", "data")


def _parser(cmds: dict) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ganforge", description="Train, evaluate and explore GANs.")
    ap.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name in sorted(cmds, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n)):
        p = sub.add_parser(name, help=cmds[name].HELP)
        cmds[name].add_arguments(p)
        p.set_defaults(run=cmds[name].run)
    return ap


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one `warning:` line on stderr, without Python's file / source-line echo."""
    print(f"warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = _parser(commands())
    # Overrides may come after flags (`train CFG --dry-run k=v`): argparse leaves those unknown.
    args, extra = parser.parse_known_args(argv)
    if extra and (args.command != "train" or any(e.startswith("-") or "=" not in e for e in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    with warnings.catch_warnings():  # restored on return: a caller's (a notebook's) warnings stay theirs
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args) -> int:
    try:
        return args.run(args)
    except GanforgeError as e:
        print(f"error: {bounded(str(e))}", file=sys.stderr)
        return e.exit_code
    except OSError as e:  # the disk or the file system said no (full, read-only, permissions)
        print(f"error: {e.filename or 'writing'}: {e.strerror or e}: check the path, its permissions and "
              "free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
