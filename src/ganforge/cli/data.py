"""`ganforge data`: list, describe or download datasets; list or clear the decoded folders' cache."""

from __future__ import annotations

from ganforge.core.errors import DataError
from ganforge.data import DATASETS, sources
from ganforge.data.fetch import fetch, verify
from ganforge.data.folder_store import cache_entries, clear_cache, folder_cache_dir

HELP = "list, describe or download datasets"


def add_arguments(p) -> None:
    dsub = p.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="known datasets and where they were found")
    di = dsub.add_parser("info", help="files, splits and checks of one dataset")
    di.add_argument("name")
    df = dsub.add_parser("fetch", help="download a dataset (verified by checksum)")
    df.add_argument("name")
    df.add_argument("--dest", help="folder to put <name>/ in (default: the user cache)")
    df.add_argument("--mirror", action="append", help="base URL to download from (repeatable)")
    df.add_argument("--timeout", type=float, default=60.0, help="seconds per connection (default 60)")
    dc = dsub.add_parser("cache", help="image folders decoded once for later runs (data.storage): list, or --clear")
    dc.add_argument("--clear", action="store_true", help="remove every cached decode (the folders are not touched)")


def run(args) -> int:
    if args.data_command == "fetch":
        fetch(args.name, args.dest, args.mirror, args.timeout)
        return 0
    if args.data_command == "cache":
        return _cache(args.clear)
    if args.data_command == "list":
        print("search path: " + ", ".join(str(p) for p in sources.search_path()))
        width = max(map(len, DATASETS))
        for name, spec in DATASETS.items():
            print(f"  {name:{width}s} {spec.summary}{_where(name, spec)}")
        return 0
    return _info(args.name)


def _cache(clear: bool) -> int:
    if clear:
        files, freed, busy = clear_cache()
        print(f"removed {files} file(s), {freed / 2**20:.1f} MB, from {folder_cache_dir()}"
              + (f"; {busy} decode(s) in use by a starting run were left" if busy else ""))
        return 0
    entries = cache_entries()
    print(f"{folder_cache_dir()}: {len(entries)} decoded folder(s), "
          f"{sum(e['bytes'] for e in entries) / 2**20:.1f} MB (ganforge data cache --clear removes them)")
    for e in entries:
        print(f"  {e['root']}  {e['images']:,} images, {e['bytes'] / 2**20:.1f} MB  {e['path'].name}")
    return 0


def _where(name: str, spec) -> str:
    if spec.files is None:
        return ""
    found = sources.find_idx_file(spec.files, spec.files.files["train_images"])
    return f" - found at {found.parent}" if found else f" - not found (ganforge data fetch {name})"


def _info(name: str) -> int:
    if name not in DATASETS:
        raise DataError(DATASETS.unknown(name))
    spec = DATASETS[name]
    print(f"{name}: {spec.summary}")
    if spec.classes:
        shown = ", ".join(spec.classes[:12]) + (", ..." if len(spec.classes) > 12 else "")
        print(f"classes: {len(spec.classes)} ({shown})")
    print(f"splits: {', '.join(spec.splits)}" + (f"; train = the first {spec.train_subset:,} training images"
                                                 if spec.train_subset else ""))
    print(f"metrics by default: {', '.join(spec.default_metrics) or 'none'}"
          + (f"; features: {spec.feature_net}" if spec.feature_net else ""))
    if spec.files is not None:
        ds = spec.files
        print(f"licence: {ds.licence}")
        for filename in ds.files.values():
            path = sources.find_idx_file(ds, filename)
            state = ("missing" if path is None else
                     "ok (MD5 verified)" if verify(path, ds.md5[filename]) else "CORRUPT (MD5 mismatch)")
            print(f"  {filename:26s} {state:24s} {path or ''}")
    return 0
