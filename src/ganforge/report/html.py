"""The one-page HTML report of a run: words first, then figures, all numbers and the config."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    caption: str
    path: Path | None
    width: int | None = None  # display width in CSS pixels (None: the image's own, at most the page's)
    pixels: bool = False  # enlarged: keep the pixels sharp instead of blurring them


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1240px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;margin-top:1.6em;border-bottom:1px solid #ddd}
ul.words{font-size:15px;max-width:900px}ul.words li{margin:4px 0}
.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;display:flex;flex-direction:column;align-items:center}
figcaption{font-size:13px;color:#555;text-align:center;max-width:560px;margin-top:3px}
img{max-width:100%;image-rendering:auto}img.pixels{image-rendering:pixelated}
.strip figure{flex:0 0 auto}
table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}
"""


def write_report(run_dir: Path, config_yaml: str, summary: dict, words: list[str],
                 sections: list[tuple[str, list[Figure], str]]) -> Path:
    """report/report.html: the run in words, then `sections` of (heading, figures, CSS class: "row"
    or "row strip"), all numbers in a table and the config (images referenced relatively, so the
    folder can be moved or served as it is); report/summary.json holds `summary`."""
    report_dir = run_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    e = html.escape
    rows = "".join(f"<tr><th>{e(str(k))}</th><td>{e(_fmt(v))}</td></tr>" for k, v in summary.items())
    body = []
    for heading, figures, css in sections:
        figs = "".join(_figure(f, report_dir) for f in figures if f.path is not None and Path(f.path).is_file())
        if figs:
            body.append(f"<h2>{e(heading)}</h2><div class=\"{css}\">{figs}</div>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ganforge run {e(run_dir.name)}</title>
<style>{_CSS}</style></head>
<body><h1>ganforge run {e(run_dir.name)}</h1>
<ul class="words">{"".join(f"<li>{e(w)}</li>" for w in words)}</ul>
{"".join(body)}
<h2>All numbers</h2><details><summary>the run's summary ({len(summary)} entries, also in summary.json)</summary>
<table>{rows}</table></details>
<h2>Config</h2><details><summary>the resolved config (config.yaml)</summary><pre>{e(config_yaml)}</pre></details>
</body></html>
"""
    path = report_dir / "report.html"
    path.write_text(page)
    (report_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return path


def _figure(f: Figure, report_dir: Path) -> str:
    e = html.escape
    pixels = ' class="pixels"' if f.pixels else ""
    width = f' width="{f.width}"' if f.width else ""
    src = e(_rel(f.path, report_dir))
    return (f'<figure><a href="{src}"><img src="{src}"{pixels}{width} alt="{e(f.caption)}"></a>'
            f"<figcaption>{e(f.caption)}</figcaption></figure>")


def _rel(p: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(p).resolve(), start.resolve())).as_posix()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
