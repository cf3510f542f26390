"""Every benchmark script still runs: `python -m bench.NAME --smoke` (its smallest configuration)
where the script has a smoke mode (a `smoke(tmp)` function handed to common.run_script), `--help`
where even that would take too long, and an import for the modules that are no script
(bench/common.py, the reference loops). The files are found by glob, so a new script is covered
without touching this file."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SMOKE_SKIPPED = "smoke skipped:"  # what a smoke run prints when its data is not on the search path

# What each smoke run prints when it worked: a line of its real output.
EXPECTED = {
    "class_agreement": "| run | read as the asked class | per class |",
    "equal_time": "| ring | 0 1 |",
    "fid_floor": "| mnist training images | FID against the test split",
    "inception_speed": "batch 2: ",
    "make_icons": "10 icons in ",
    "pacgan_table": "| ring | WGAN-GP |",
    "parzen_blur": "| real train[0:100] | 0.5 |",
    "serve_latency": "one image over HTTP",
    "stacked_mnist": "| PacDCGAN2 | 2 | 1 |",
    "textbook_loop": '"samples_per_s"',
    "throughput": '"over_A"',
    "time_to_quality": "tiny seed 1: final fid",
    "wgan_gp_step": "ganforge train, no_channels_last: median",
}


def modules() -> list[str]:
    return sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")


def command(name: str) -> tuple[list[str], str]:
    """The check of bench/NAME.py and what it is: smoke, help or import."""
    source = (BENCH / f"{name}.py").read_text()
    if not re.search(r'^if __name__ == "__main__":', source, re.M):
        return [sys.executable, "-c", f"import bench.{name}"], "import"
    if re.search(r"^def smoke\(", source, re.M):
        return [sys.executable, "-m", f"bench.{name}", "--smoke"], "smoke"
    return [sys.executable, "-m", f"bench.{name}", "--help"], "help"


@pytest.mark.slow
@pytest.mark.parametrize("name", modules())
def test_bench_script_runs(name):
    argv, kind = command(name)
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(argv[1:])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    if kind == "help":
        assert proc.stdout.startswith("usage:")
    elif kind == "smoke":
        if proc.stdout.startswith(SMOKE_SKIPPED):
            pytest.skip(proc.stdout.splitlines()[0])
        assert EXPECTED.get(name, "") in proc.stdout, proc.stdout[-3000:]
        assert proc.stdout.strip(), "a smoke run printed nothing"
