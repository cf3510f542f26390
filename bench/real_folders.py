"""Two real image folders nobody here drew, built from packages on the npm registry, with one
sub-folder per kind (what `ganforge featurenet train` learns the folder's feature space from):

- twemoji: Twitter's emoji at 64 x 64 (emoji-datasource-twitter 16.0.0, graphics CC-BY 4.0), one
  image per emoji (skin-tone variants left out: near duplicates), sub-folders by the Unicode
  category emoji.json gives (smileys-emotion, people-body, animals-nature, food-drink, ...).
- pokemon: the Pokemon box sprites of pokesprite (pokesprite-images 2.7.0, pokemon-gen8/regular
  and shiny, 68 x 56 on transparency), sub-folders by generation (1-8, from the national dex number).

    cd /tmp && npm pack emoji-datasource-twitter@16.0.0 pokesprite-images@2.7.0
    mkdir twemoji-pkg pokesprite-pkg
    tar xzf emoji-datasource-twitter-16.0.0.tgz -C twemoji-pkg --strip-components 1
    tar xzf pokesprite-images-2.7.0.tgz -C pokesprite-pkg --strip-components 1
    python -m bench.real_folders --twemoji /tmp/twemoji-pkg --pokesprite /tmp/pokesprite-pkg --out ~/folders
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from PIL import Image

from bench.common import parser, run_script

GENERATION_ENDS = (151, 251, 386, 493, 649, 721, 809, 905)  # the last national dex number of each generation


def twemoji(pkg: Path, out: Path) -> Counter:
    counts: Counter = Counter()
    for e in json.loads((pkg / "emoji.json").read_text()):
        src = pkg / "img" / "twitter" / "64" / e["image"]
        if not src.is_file():
            continue
        kind = e["category"].lower().replace(" & ", "-").replace(" ", "-")
        (out / kind).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / kind / e["image"])
        counts[kind] += 1
    return counts


def pokesprite(pkg: Path, out: Path) -> Counter:
    dex = {v["slug"]["eng"]: int(v["idx"]) for v in json.loads((pkg / "data" / "pokemon.json").read_text()).values()}
    slugs = sorted(dex, key=len, reverse=True)  # forms are SLUG-FORM: the longest slug that prefixes the name
    counts: Counter = Counter()
    for kind in ("regular", "shiny"):
        for f in sorted((pkg / "pokemon-gen8" / kind).glob("*.png")):
            number = dex.get(f.stem) or next((dex[s] for s in slugs if f.stem.startswith(s + "-")), None)
            if number is None:
                continue
            gen = next(i for i, end in enumerate(GENERATION_ENDS) if number <= end) + 1
            (out / f"gen{gen}").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, out / f"gen{gen}" / f"{kind}-{f.name}")
            counts[f"gen{gen}"] += 1
    return counts


def run(args) -> None:
    for name, build, pkg in (("twemoji", twemoji, args.twemoji), ("pokemon", pokesprite, args.pokesprite)):
        if pkg is None:
            continue
        counts = build(pkg, args.out / name)
        print(f"{name}: {sum(counts.values())} images in {len(counts)} sub-folders "
              f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) -> {args.out / name}")


def smoke(tmp: Path) -> list[str]:
    # a two-emoji stand-in for the package, laid out like it
    pkg = tmp / "twemoji-pkg"
    (pkg / "img" / "twitter" / "64").mkdir(parents=True)
    for name in ("1f600.png", "1f436.png"):
        Image.new("RGBA", (64, 64), (255, 200, 0, 255)).save(pkg / "img" / "twitter" / "64" / name)
    (pkg / "emoji.json").write_text(json.dumps([{"image": "1f600.png", "category": "Smileys & Emotion"},
                                                {"image": "1f436.png", "category": "Animals & Nature"}]))
    return ["--twemoji", str(pkg), "--out", str(tmp / "folders")]


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--twemoji", type=Path, help="the unpacked emoji-datasource-twitter package")
    ap.add_argument("--pokesprite", type=Path, help="the unpacked pokesprite-images package")
    ap.add_argument("--out", type=Path, required=True)
    run_script(ap, run, smoke)


if __name__ == "__main__":
    main()
