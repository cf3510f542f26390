"""Every benchmark script still runs: `python -m bench.NAME --smoke` (its smallest configuration)
where the script has a smoke mode (a `smoke(tmp)` function handed to common.run_script), `--help`
where even that would take too long. The scripts are found by glob, so a new one is covered
without touching this file; the modules that are no script (bench/common.py, the reference
loops) are imported by the scripts that use them."""

import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SMOKE_SKIPPED = "smoke skipped:"  # what a smoke run prints when its data is not on the search path

# What each smoke run prints when it worked: a line of its real output.
EXPECTED = {
    "bigan_mnist": "| raw pixels | validation |",
    "class_agreement": "| run | read as the asked class | per class |",
    "device_check": "device check: 2 ok, 0 failed, 0 skipped",
    "equal_time": "| ring | 0 |",
    "fid_floor": "| mnist training images | FID against the test split",
    "folder_storage": "| 12 | cache, later runs |",
    "imputation": "| nearest training image |",
    "inception_speed": "batch 2: ",
    "make_icons": "10 icons in ",
    "own_folder": "| ring | 0.002 |",
    "pacgan_table": "| ring | WGAN-GP |",
    "real_folders": "twemoji: 2 images in 2 sub-folders",
    "reconstruction": "| encoder + projector | 3 |",
    "restoration": "| per-pixel training mean |",
    "semi_supervised": "| mnist-embedded | 20 | semi-supervised GAN | 2 |",
    "parzen_blur": "| real train[0:100] | 0.5 |",
    "serve_latency": "one image over HTTP",
    "stacked_mnist": "| PacDCGAN2 | 2 | 1 |",
    "text_to_image": "| text (chars, CA) | held-out (seen wording) |",
    "textbook_loop": '"samples_per_s"',
    "throughput": '"over_A"',
    "time_to_quality": "tiny seed 0: final fid",
}


def sources() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(BENCH.glob("*.py")) if p.stem != "__init__"}


def is_script(source: str) -> bool:
    return re.search(r'^if __name__ == "__main__":', source, re.M) is not None


def scripts() -> list[str]:
    return [name for name, source in sources().items() if is_script(source)]


def test_every_bench_module_is_a_script_or_used_by_one():
    """A module that is no script is only checked through the scripts that import it."""
    texts = sources()
    for name, source in texts.items():
        if not is_script(source):
            assert any(re.search(rf"^from bench(\.| import ){name}\b", t, re.M) for t in texts.values()), \
                f"bench/{name}.py is neither a script nor imported by one"


@pytest.mark.slow
@pytest.mark.parametrize("name", scripts())
def test_bench_script_runs(name, monkeypatch, capsys):
    """Run as `python -m bench.NAME` would, but in this process: a fresh interpreter per script
    would spend more time importing torch than most smoke runs take."""
    smoke = re.search(r"^def smoke\(", (BENCH / f"{name}.py").read_text(), re.M) is not None
    argv = [f"bench/{name}.py", "--smoke" if smoke else "--help"]
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", argv)
    threads = torch.get_num_threads()  # a smoke run pins torch to one thread
    try:
        runpy.run_module(f"bench.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        assert e.code in (0, None), f"{' '.join(argv)} exited {e.code}:\n{capsys.readouterr().err[-3000:]}"
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    if not smoke:
        assert out.startswith("usage:")
        return
    if out.startswith(SMOKE_SKIPPED):
        pytest.skip(out.splitlines()[0])
    assert out.strip(), "the smoke run printed nothing"
    assert EXPECTED.get(name, "") in out, out[-3000:]
