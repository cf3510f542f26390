"""A corpus of bad inputs: files a user may have (empty, truncated, forged, pickled, oversized)
and command lines a user may type. For every case the CLI must exit non-zero with one `error:`
line that names the file / key / value, print no traceback, and create or change no file.

The corpus is built by fixtures (nothing binary is committed). Most cases run `cli.main`
in-process, where a traceback would surface as an exception; a few also run as real processes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import tiny_yaml, train_tiny
from ganforge import cli


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A folder of good and bad files; the cases refer to them by name."""
    root = tmp_path_factory.mktemp("corpus")
    run_dir = train_tiny(root, "train.max_steps=4")
    good_ckpt = run_dir / "ckpt" / "last.pt"
    shutil.copytree(run_dir / "export", root / "export")
    cond_dir = train_tiny(root, "train.max_steps=2", "model.conditional=cgan", "run.name=cond")
    shutil.copytree(cond_dir / "export", root / "cond_export")
    ckpt = torch.load(good_ckpt, weights_only=True)

    (root / "empty.pt").write_bytes(b"")
    (root / "truncated.pt").write_bytes(good_ckpt.read_bytes()[: good_ckpt.stat().st_size // 2])
    (root / "random.pt").write_bytes(random.Random(0).randbytes(4096))
    torch.save({"format": "ganforge-checkpoint-v2", "payload": _Pickled()}, root / "pickled.pt")
    import builtins
    import posix
    import subprocess as sp

    for name, call, args in [("os_system", os.system, ("touch HACKED",)), ("popen", sp.Popen, (["touch", "HACKED"],)),
                             ("exec", builtins.exec, ("open('HACKED', 'w')",)), ("posix_system", posix.system, ("touch HACKED",))]:
        for protocol in (2, 4):  # torch.save's own, and the one a hand-made file would use
            torch.save({**ckpt, "payload": _Payload(call, args)}, root / f"payload_{name}_{protocol}.pt",
                       pickle_protocol=protocol)
    for key in ("config", "rng", "recipe", "step"):
        torch.save({k: v for k, v in ckpt.items() if k != key}, root / f"no_{key}.pt")
    torch.save({**ckpt, "format": "ganforge-checkpoint-v9"}, root / "future.pt")
    torch.save([1, 2, 3], root / "list.pt")
    torch.save({**ckpt, "step": "abc"}, root / "step_abc.pt")

    meta = json.loads((root / "export" / "generator.json").read_text())
    weights = (root / "export" / "generator.safetensors").read_bytes()

    def export(name, meta_text, weights_bytes=weights):
        d = root / name
        d.mkdir()
        (d / "generator.json").write_text(meta_text)
        if weights_bytes is not None:
            (d / "generator.safetensors").write_bytes(weights_bytes)

    export("exp_list", json.dumps([meta]))
    export("exp_no_config", json.dumps({k: v for k, v in meta.items() if k != "config"}))
    export("exp_step_abc", json.dumps({**meta, "step": "abc"}))
    export("exp_not_json", "{ this is not json")
    export("exp_no_weights", json.dumps(meta), None)
    export("exp_bad_weights", json.dumps(meta), b"\x00" * 100)
    huge = json.loads(json.dumps(meta))
    huge["config"]["model"]["width"] = 10**6
    export("exp_huge", json.dumps(huge))
    huge_z = json.loads(json.dumps(meta))
    huge_z["config"]["model"]["z_dim"] = 10**10
    export("exp_huge_z", json.dumps(huge_z))
    bad_arch = json.loads(json.dumps(meta))
    bad_arch["config"]["model"]["arch"] = "nope"
    export("exp_bad_arch", json.dumps(bad_arch))
    config_not_dict = json.loads(json.dumps(meta))
    config_not_dict["config"] = "mnist"
    export("exp_config_str", json.dumps(config_not_dict))
    fashion = json.loads(json.dumps(meta))
    fashion["config"]["data"]["name"] = "fashion-mnist"
    export("exp_fashion", json.dumps(fashion))

    (root / "afile").write_text("a plain file\n")
    (root / "empty.yaml").write_text("")
    (root / "comments.yaml").write_text("# only a comment\n")
    (root / "list.yaml").write_text("- train\n- data\n")
    (root / "broken.yaml").write_text("train: {epochs: 3\n  batch_size: [\n")
    (root / "unknown_key.yaml").write_text("train:\n  epochz: 3\n")
    (root / "unknown_section.yaml").write_text("trian:\n  epochs: 3\n")
    (root / "huge_value.yaml").write_text("train:\n  epochs: '" + "9" * 10_000_000 + "'\n")
    (root / "huge_key.yaml").write_text("train:\n  ? " + "e" * 10_000_000 + "\n  : 3\n")  # an explicit key: no length limit
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]  # each level nine of the one before: 9^10 values
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (root / "alias_bomb.yaml").write_text("\n".join(lines) + "\ntrain: {epochs: *a9}\n")
    tiny_yaml(root)
    flat = root / "flat_images"
    flat.mkdir()
    from PIL import Image

    for i in range(4):
        Image.new("L", (8, 8), i).save(flat / f"{i}.png")
    return root


class _Pickled:  # any class: torch.save pickles it; weights_only loading must refuse it
    def __reduce__(self):
        return (print, ("this would have run",))


class _Payload:  # a real payload: unpickled, it would call `call(*args)`
    def __init__(self, call, args):
        self.call, self.args = call, args

    def __reduce__(self):
        return (self.call, self.args)


# (case id, argv with {c} for the corpus folder, a regex the error line must match)
CASES = [
    # checkpoints: empty, truncated, random, pickled, forged, from the future
    ("sample-empty-pt", "sample {c}/empty.pt --out {c}/o.png", r"empty.pt.*empty file"),
    ("export-empty-pt", "export {c}/empty.pt --out {c}/exp_out", r"empty.pt.*empty file"),
    ("eval-empty-pt", "eval {c}/empty.pt --metrics fid", r"empty.pt.*empty file"),
    ("resume-empty-pt", "train {c}/tiny.yaml --resume {c}/empty.pt", r"empty.pt.*empty file"),
    ("sample-truncated-pt", "sample {c}/truncated.pt --out {c}/o.png", r"truncated.pt.*(truncated|damaged)"),
    ("resume-truncated-pt", "train {c}/tiny.yaml --resume {c}/truncated.pt", r"truncated.pt.*(truncated|damaged)"),
    ("sample-random-pt", "sample {c}/random.pt --out {c}/o.png", r"random.pt: not a .*checkpoint"),
    ("sample-pickled-pt", "sample {c}/pickled.pt --out {c}/o.png", r"pickled.pt.*pickled code.*refused for safety"),
    ("resume-pickled-pt", "train {c}/tiny.yaml --resume {c}/pickled.pt", r"pickled.pt.*pickled code.*refused for safety"),
    ("sample-no-config", "sample {c}/no_config.pt --out {c}/o.png", r"no_config.pt.*lacks 'config'"),
    ("resume-no-config", "train {c}/tiny.yaml --resume {c}/no_config.pt", r"no_config.pt.*lacks 'config'"),
    ("resume-no-rng", "train {c}/tiny.yaml --resume {c}/no_rng.pt", r"no_rng.pt.*lacks 'rng'"),
    ("sample-no-recipe", "sample {c}/no_recipe.pt --out {c}/o.png", r"no_recipe.pt.*lacks 'recipe'"),
    ("resume-no-step", "train {c}/tiny.yaml --resume {c}/no_step.pt", r"no_step.pt.*lacks 'step'"),
    ("sample-step-abc", "sample {c}/step_abc.pt --out {c}/o.png", r"step_abc.pt.*'step'.*'abc'"),
    ("sample-future-pt", "sample {c}/future.pt --out {c}/o.png", r"future.pt.*newer ganforge"),
    ("sample-list-pt", "sample {c}/list.pt --out {c}/o.png", r"list.pt: not a ganforge checkpoint"),
    ("sample-missing-pt", "sample {c}/missing.pt --out {c}/o.png", r"missing.pt"),
    ("sample-plain-folder", "sample {c}/flat_images --out {c}/o.png", r"flat_images.*neither a run folder nor an export"),
    # exports: a list, no config, a bad step, not JSON, missing or bad weights, absurd sizes
    ("sample-export-list", "sample {c}/exp_list --out {c}/o.png", r"exp_list/generator.json.*JSON object"),
    ("sample-export-no-config", "sample {c}/exp_no_config --out {c}/o.png", r"exp_no_config/generator.json.*lacks 'config'"),
    ("sample-export-step-abc", "sample {c}/exp_step_abc --out {c}/o.png", r"exp_step_abc/generator.json.*'step'.*'abc'"),
    ("sample-export-not-json", "sample {c}/exp_not_json --out {c}/o.png", r"exp_not_json/generator.json.*not valid JSON"),
    ("sample-export-no-weights", "sample {c}/exp_no_weights --out {c}/o.png", r"generator.safetensors.*(missing|not found)"),
    ("sample-export-bad-weights", "sample {c}/exp_bad_weights --out {c}/o.png", r"generator.safetensors.*not readable"),
    ("sample-export-huge", "sample {c}/exp_huge --out {c}/o.png", r"exp_huge.*parameters.*(memory|too large)"),
    ("eval-export-huge", "eval {c}/exp_huge --metrics fid", r"exp_huge.*parameters.*(memory|too large)"),
    ("sample-export-bad-arch", "sample {c}/exp_bad_arch --out {c}/o.png", r"exp_bad_arch.*model.arch='nope'"),
    ("sample-export-config-str", "sample {c}/exp_config_str --out {c}/o.png", r"exp_config_str.*'config'.*mapping"),
    # outputs that cannot be written
    ("sample-out-no-ext", "sample {c}/export --out {c}/grid", r"--out .*grid.*\.png"),
    ("sample-out-bad-ext", "sample {c}/export --out {c}/grid.xyz", r"--out .*grid.xyz.*\.png"),
    ("sample-out-under-file", "sample {c}/export --out {c}/afile/x.png", r"afile.*(not a folder|is a file)"),
    ("sample-out-unwritable", "sample {c}/export --out /proc/ganforge-nope/x.png", r"/proc/ganforge-nope"),
    ("export-out-file", "export {c}/export --out {c}/afile", r"afile.*(not a folder|is a file)"),
    ("export-out-unwritable", "export {c}/export --out /proc/ganforge-nope", r"/proc/ganforge-nope"),
    ("eval-out-under-file", "eval {c}/export --metrics fid --num-samples 100 --out {c}/afile/r.json", r"afile.*(not a folder|is a file)"),
    ("eval-out-unwritable", "eval {c}/export --metrics fid --num-samples 100 --out /proc/ganforge-nope/r.json", r"/proc/ganforge-nope"),
    ("train-run-dir-file", "train {c}/tiny.yaml run.dir={c}/afile", r"run.dir .*afile is a file"),
    ("train-run-dir-unwritable", "train {c}/tiny.yaml run.dir=/proc/ganforge-nope", r"run.dir /proc/ganforge-nope"),
    ("labels-out-unwritable", "sample {c}/cond_export --labels --out /proc/ganforge-nope/ds", r"/proc/ganforge-nope"),
    ("labels-out-exists", "sample {c}/cond_export --labels --out {c}/flat_images", r"flat_images exists"),
    ("sample-class-out-of-range", "sample {c}/cond_export --class 10 --out {c}/o.png", r"class 10 is out of range"),
    # sample arguments
    ("sample-n-huge", "sample {c}/export --n 10000000 --out {c}/o.png", r"--n 10000000.*at most"),
    ("sample-n-zero", "sample {c}/export --n 0 --out {c}/o.png", r"--n 0"),
    ("sample-class-unconditional", "sample {c}/export --class 3 --out {c}/o.png", r"class 3.*unconditional"),
    ("sample-labels-unconditional", "sample {c}/export --labels --out {c}/ds", r"--labels.*unconditional"),
    ("sample-truncation-negative", "sample {c}/export --truncation -1 --out {c}/o.png", r"truncation=-1"),
    # eval arguments
    ("eval-unknown-metric", "eval {c}/export --metrics fidd", r"fidd"),
    ("eval-one-sample", "eval {c}/export --num-samples 1", r"--num-samples 1"),
    ("eval-parzen-fashion", "eval {c}/exp_fashion --metrics parzen", r"parzen.*MNIST"),
    # configs
    ("train-empty-yaml", "train {c}/empty.yaml", r"empty.yaml.*empty"),
    ("train-comments-yaml", "train {c}/comments.yaml", r"comments.yaml.*empty"),
    ("train-list-yaml", "train {c}/list.yaml", r"list.yaml.*mapping"),
    ("train-broken-yaml", "train {c}/broken.yaml", r"broken.yaml.*not valid YAML.*line"),
    ("train-missing-yaml", "train {c}/missing.yaml", r"missing.yaml"),
    ("train-unknown-key", "train {c}/unknown_key.yaml", r"epochz"),
    ("train-unknown-section", "train {c}/unknown_section.yaml", r"trian"),
    ("train-bad-value", "train {c}/tiny.yaml train.epochs=abc", r"train.epochs"),
    ("train-bad-override", "train {c}/tiny.yaml train.epochs", r"train.epochs"),
    ("train-folder-missing", "train {c}/tiny.yaml data.name=folder data.root={c}/nothing_here", r"nothing_here.*no such folder"),
    ("train-folder-is-file", "train {c}/tiny.yaml data.name=folder data.root={c}/afile", r"afile.*is a file"),
    ("train-folder-labels-flat", "train {c}/tiny.yaml data.name=folder data.root={c}/flat_images data.labels=true "
                                 "data.resolution=8", r"flat_images.*sub-folder per class"),
    ("train-background-bad", "train {c}/tiny.yaml data.name=folder data.root={c}/flat_images data.background=pink",
     r"data.background='pink'"),
    ("train-resume-missing", "train {c}/tiny.yaml --resume {c}/nope.pt", r"nope.pt"),
    ("train-resume-arch-change", "train {c}/tiny.yaml model.width=32 --resume {c}/runs/00000-tiny",
     r"cannot resume .*changes the model"),
    ("data-info-unknown", "data info nosuchset", r"nosuchset"),
    # run names that are not one folder name
    ("train-run-name-escape", "train {c}/tiny.yaml run.name=../../escape", r"run.name='../../escape' must be one plain folder name"),
    ("train-run-name-slash", "train {c}/tiny.yaml run.name=a/b", r"run.name='a/b'"),
    ("train-run-dir-empty", "train {c}/tiny.yaml run.dir=", r"run.dir is empty"),
    # seeds past the range, negative seeds: every command the same
    ("sample-seed-huge", "sample {c}/export --seed 1180591620717411303424 --out {c}/o.png", r"seed 1180591620717411303424 is out of range.*4,294,967,295"),
    ("sample-seed-negative", "sample {c}/export --seed -1 --out {c}/o.png", r"seed -1 is out of range"),
    ("labels-seed-huge", "sample {c}/cond_export --labels --seed 1180591620717411303424 --out {c}/ds", r"seed 1180591620717411303424 is out of range"),
    ("interp-seeds-huge", "interp {c}/export --seeds 0 1180591620717411303424 --out {c}/w.gif", r"seed 1180591620717411303424 is out of range"),
    ("interp-seeds-negative", "interp {c}/export --seeds -1 2 --out {c}/w.gif", r"seed -1 is out of range"),
    ("eval-seed-negative", "eval {c}/export --seed -1 --metrics fid --num-samples 10", r"seed -1 is out of range"),
    ("train-seed-huge", "train {c}/tiny.yaml train.seed=1180591620717411303424", r"train.seed=1180591620717411303424 is out of range"),
    ("train-eval-seed-negative", "train {c}/tiny.yaml eval.seed=-1", r"eval.seed=-1 is out of range"),
    # psi on every path
    ("interp-psi-5", "interp {c}/export --psi 5 --out {c}/w.gif", r"psi=5.0: .*between 0 and 1"),
    ("interp-psi-nan", "interp {c}/export --psi nan --out {c}/w.gif", r"psi=nan: .*between 0 and 1"),
    ("sample-psi-negative", "sample {c}/export --psi -3 --out {c}/o.png", r"psi=-3.0"),
    # numbers, metrics and flags that were accepted silently
    ("data-fetch-timeout-negative", "data fetch mnist --dest {c}/dl --timeout -1", r"--timeout -1.0: give a positive number"),
    ("train-lr-inf", "train {c}/tiny.yaml optim.lr_G=inf", r"optim.lr_G=inf must be a finite number"),
    ("train-lr-huge-int", "train {c}/tiny.yaml optim.lr_D=10000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", r"optim.lr_D=inf must be a finite number"),
    ("train-class-fid-unconditional", "train {c}/tiny.yaml eval.every_steps=10 eval.metrics=[class_fid]",
     r"class_fid cannot apply here.*conditional"),
    ("eval-inception-weights-mnist", "eval {c}/export --inception-weights {c}/afile --metrics fid",
     r"--inception-weights .*afile: .*mnist-cnn classifier's features.*drop --inception-weights"),
    # messages that would echo megabytes
    ("train-huge-value", "train {c}/huge_value.yaml", r"huge_value.yaml: train.epochs must be an integer, got '9999"),
    ("train-huge-key", "train {c}/huge_key.yaml", r"huge_key.yaml: unknown key 'train.eeee"),
    ("train-alias-bomb", "train {c}/alias_bomb.yaml", r"alias_bomb.yaml: the YAML's aliases .* expand to more than"),
    # pickled code, however torch words its refusal
    *[(f"sample-payload-{name}-{p}", f"sample {{c}}/payload_{name}_{p}.pt --out {{c}}/o.png",
       rf"payload_{name}_{p}.pt: the file contains pickled code \(\S*{call}\) and was refused for safety")
      for name, call in [("os_system", "system"), ("popen", "Popen"), ("exec", "exec"), ("posix_system", "system")]
      for p in (2, 4)],
    ("resume-payload-posix", "train {c}/tiny.yaml --resume {c}/payload_posix_system_2.pt", r"pickled code \(posix.system\)"),
    # restoration pairs: a degradation unknown, out of range, or on a recipe that does not read it
    ("train-degrade-unknown", "train {c}/tiny.yaml train.recipe=pix2pix model.G=unet model.D=patchgan "
                              "data.degrade=boxx", r"data.degrade.*'boxx'.*did you mean 'box'"),
    ("train-degrade-range", "train {c}/tiny.yaml train.recipe=pix2pix model.G=unet model.D=patchgan "
                            "data.degrade=missing=1.5", r"data.degrade=missing=1.5: the probability"),
    ("train-degrade-gan", "train {c}/tiny.yaml data.degrade=box", r"data.degrade: not part of the gan recipe"),
    # a forged export asking for a huge net names the key
    ("sample-export-huge-z", "sample {c}/exp_huge_z --out {c}/o.png", r"model.z_dim=10000000000: G .*lower model.z_dim"),
]


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file (size, mtime) and every folder (a new empty folder counts as a change too)."""
    return {str(p.relative_to(root)): (0, 0) if p.is_dir() else (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


@pytest.mark.parametrize("case,argv,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_error_and_changes_nothing(corpus, case, argv, pattern, capsys, monkeypatch):
    import re

    monkeypatch.chdir(corpus)
    before = _snapshot(corpus)
    try:
        code = cli.main(argv.format(c=corpus).split())
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    out, err = capsys.readouterr()
    assert code not in (0, None), f"{case}: exit 0\n{out}\n{err}"
    assert "Traceback" not in err + out
    error_lines = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
    assert len(error_lines) == 1, f"{case}: expected one error line, got:\n{err}"
    assert re.search(pattern, error_lines[0][:3000]), f"{case}: {error_lines[0][:3000]!r} does not match {pattern!r}"
    assert len(err) < 5000, f"{case}: {len(err):,} characters of error"  # a message quotes, never echoes
    assert _snapshot(corpus) == before, f"{case}: files changed"
    assert not (corpus / "HACKED").exists()


def test_random_bytes_are_never_read_as_pickled_code(tmp_path):
    """Random bytes parse as a few pickle opcodes; a STACK_GLOBAL among them once made a damaged file
    read as "pickled code (an unnamed import)" in about 1 of 200 files."""
    from ganforge.core.pickles import imported_code

    rng, path = random.Random(1), tmp_path / "random.pt"
    for _ in range(3000):
        path.write_bytes(rng.randbytes(1024))
        assert imported_code(path) is None, path.read_bytes()[:64]


def test_corpus_is_large_enough():
    assert len(CASES) >= 95


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
@pytest.mark.parametrize("case", ["sample-pickled-pt", "train-empty-yaml", "sample-export-huge", "sample-out-no-ext",
                                  "sample-payload-posix_system-2", "sample-seed-huge", "train-alias-bomb"])
def test_real_processes_print_no_traceback(corpus, case):
    argv = dict((c[0], c[1]) for c in CASES)[case].format(c=corpus).split()
    proc = subprocess.run([sys.executable, "-m", "ganforge", *argv], capture_output=True, text=True, cwd=corpus,
                          timeout=120)
    assert proc.returncode not in (0, 1), proc.stderr  # 1 is Python's exit for an uncaught exception
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
    assert "this would have run" not in proc.stdout + proc.stderr
