"""Two processes on the gloo backend on CPU, launched by torchrun as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge import api, checkpoint, validate

from conftest import tiny_overrides

HERE = Path(__file__).resolve().parent
pytestmark = pytest.mark.slow


def torchrun(nproc: int, *args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


FAMILIES = ("model.conditional=projection", "model.d_spectral_norm=true", "loss.kind=hinge", "loss.r1_gamma=1",
            "loss.r1_every=2", "train.ema_halflife_kimg=0.5", "train.augment=color,translation,cutout")


WGAN_GP_PACK = ("loss.kind=wasserstein", "loss.gp_weight=10", "train.n_dis=2", "train.pack=2",
                "optim.betas=[0.0, 0.9]")
ACGAN = ("model.conditional=acgan",)
STYLEGAN = ("model.arch=stylegan", "model.width=4", "model.d_norm=none", "loss.pl_weight=2", "loss.pl_every=2",
            "train.augment=translation", "train.augment_p=0.2", "train.ada_target=0.6", "train.ada_every=2",
            "train.ada_kimg=1", "optim.betas=[0.0, 0.99]")


@pytest.mark.parametrize("update", ["alternating", "simultaneous", "families", "wgan_gp_pack", "acgan", "stylegan"])
def test_parameters_stay_identical_across_ranks(tmp_path, update):
    out = tmp_path / "ddp.json"
    # dropout on: each rank draws its own masks, and the gradients are still averaged into one model;
    # "families": a conditional projection D with SN, hinge loss, lazy R1 through the plain D, EMA and
    # DiffAugment (each rank augments with its own stream); "wgan_gp_pack": the gradient penalty's
    # double backward and PacGAN packing per rank; "acgan": D's class head in the same all-reduce;
    # "stylegan": path-length regularisation through the plain G and ADA's p, both agreed over ranks
    extra = {"families": FAMILIES, "wgan_gp_pack": WGAN_GP_PACK, "acgan": ACGAN,
             "stylegan": STYLEGAN}.get(update, (f"train.update={update}",))
    p = torchrun(2, str(HERE / "ddp_worker.py"), str(out), *tiny_overrides(tmp_path, "train.epochs=1", *extra))
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["world_size"] == 2 and r["step"] == 16
    assert r["max_abs_diff_to_rank0"] == [0.0, 0.0]
    assert r["gather_shares_ok"]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    """train.batch_size is the global batch: 2 x 16 per rank ~ 1 x 32 (no dropout, so the only
    difference is the order of floating-point sums). Tolerance: 1e-4 absolute on every weight."""
    extra = ("model.d_dropout=0.0", "train.epochs=1", "eval.every_steps=16", "eval.num_samples=200")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 1\n")
    one = torchrun(1, "-m", "ganforge", "train", str(cfg), *tiny_overrides(tmp_path, *extra, "run.name=one"))
    two = torchrun(2, "-m", "ganforge", "train", str(cfg), *tiny_overrides(tmp_path, *extra, "run.name=two"))
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    runs = {p.name.split("-", 1)[1]: p for p in (tmp_path / "runs").iterdir()}
    assert set(runs) == {"one", "two"}  # rank 1 wrote no run folder of its own
    a = checkpoint.load(runs["one"] / "ckpt/last.pt")["recipe"]["players"]
    b = checkpoint.load(runs["two"] / "ckpt/last.pt")["recipe"]["players"]
    assert a["D"]["updates"] == b["D"]["updates"] == 16
    for net in ("G", "D"):
        for k in a[net]["net"]:
            torch.testing.assert_close(a[net]["net"][k], b[net]["net"][k], atol=1e-4, rtol=0)
    assert "2 process(es)" in (runs["two"] / "log.txt").read_text()
    # in-training metrics: each rank generated 100 of the 200 samples, rank 0 gathered and scored
    # them; the same latents through the saved G in this process give the same numbers
    (row,) = [json.loads(line) for line in (runs["two"] / "metrics.jsonl").read_text().splitlines()]
    fid, modes = api.evaluate(runs["two"], ["fid", "modes"], num_samples=200, seed=0)
    assert row["step"] == 16 and row["fid"] == pytest.approx(fid["value"], rel=1e-4)
    assert row["modes_hit"] == modes["modes_hit"]


def test_resume_under_torchrun(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 2\n")
    first = torchrun(2, "-m", "ganforge", "train", str(cfg), *tiny_overrides(tmp_path, "train.max_steps=10"))
    assert first.returncode == 0, first.stderr[-3000:]
    second = torchrun(2, "-m", "ganforge", "train", str(cfg), *tiny_overrides(tmp_path), "--resume", "auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout and "from step 10" in second.stdout
    (run,) = (tmp_path / "runs").iterdir()
    assert checkpoint.load(run / "ckpt/last.pt")["step"] == 32
    assert "Traceback" not in second.stderr


def test_a_collapse_is_rolled_back_on_every_rank_alike(tmp_path):
    """The forced collapse of tests/test_health.py under two processes: the health check (rank 0)
    raises the alarm, every rank rolls back to the same best weights, and they stay identical."""
    from test_health import COLLAPSE_AT, RING_LSGAN, ring_overrides

    out = tmp_path / "ddp.json"
    overrides = ring_overrides(tmp_path, "train.keep_best=coverage", "train.on_collapse=rollback")
    p = torchrun(2, str(HERE / "ddp_worker.py"), str(out), *overrides,
                 env={"GANFORGE_TEST_COLLAPSE_AT": str(COLLAPSE_AT), "GANFORGE_TEST_CONFIG": RING_LSGAN})
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["world_size"] == 2 and r["step"] == 700
    assert [a[0] for a in r["alarms"]][:1] == [COLLAPSE_AT]
    assert len(r["rollbacks"]) == 1 and r["rollbacks"][0][0] == COLLAPSE_AT and r["rollbacks"][0][1] < COLLAPSE_AT
    assert r["max_abs_diff_to_rank0"] == [0.0, 0.0]


def _rows(path: Path, drop: tuple[str, ...] = ()) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in path.read_text().splitlines()]


ELASTIC = ("model.arch=dcgan", "model.width=8", "train.augment=translation,cutout", "train.epochs=3",
           "log.ckpt_every_steps=8", "eval.every_steps=16", "eval.num_samples=100", "eval.metrics=[fid]",
           "train.keep_best=fid")


def test_a_lost_worker_is_restarted_and_the_run_ends_as_if_nothing_happened(tmp_path):
    """torchrun --max-restarts=1; rank 1 SIGKILLed at step 13 of the first attempt. The restarted
    group resumes the run from its step-8 checkpoint unasked and ends bit-identical to an
    uninterrupted run of the same world size: weights, optimizer, batch-norm statistics and random
    stream of every rank (DCGAN G with batch norm; DiffAugment draws from each rank's own stream),
    statistics and metrics."""
    extra = ELASTIC
    whole = torchrun(2, str(HERE / "elastic_worker.py"), "0", *tiny_overrides(tmp_path, *extra, "run.name=whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = torchrun(2, "--max-restarts=1", str(HERE / "elastic_worker.py"), "13",
                      *tiny_overrides(tmp_path, *extra, "run.name=killed"))
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert "torchrun restart 1: continuing" in killed.stderr and "killed from its last checkpoint" in killed.stderr
    runs = {p.name.split("-", 1)[1]: p for p in (tmp_path / "runs").iterdir()}
    assert set(runs) == {"whole", "killed"}  # the restart continued in the run folder, made no other
    assert "resuming" in killed.stdout and "from step 8" in killed.stdout
    a, b = (checkpoint.load(runs[n] / "ckpt/last.pt") for n in ("whole", "killed"))
    assert a["step"] == b["step"] == 48
    assert b["ranks"]["world_size"] == 2
    # rank 1's batch-norm statistics are its own: the rows differ, and both came back exactly
    assert not torch.equal(b["ranks"]["buffers"][0], b["ranks"]["buffers"][1])
    _assert_same_tensors(a["recipe"], b["recipe"])
    _assert_same_tensors(a["ranks"], b["ranks"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    timing = ("time_s", "samples_per_s", "train_time_s")
    assert _rows(runs["whole"] / "stats.jsonl", timing) == _rows(runs["killed"] / "stats.jsonl", timing)
    assert _rows(runs["whole"] / "metrics.jsonl", timing) == _rows(runs["killed"] / "metrics.jsonl", timing)


def test_a_worker_lost_before_the_first_checkpoint_starts_its_own_run_over(tmp_path):
    """Rank 1 dies at step 3, before the first checkpoint (step 8), while an older run of the same
    name has checkpoints: the restart starts over in the folder its own job made (not the older
    run's), leaves the older run alone, and ends as an uninterrupted run does."""
    older, _ = api.train(validate.load(None, tiny_overrides(tmp_path, *ELASTIC, "run.name=same", "train.max_steps=16")),
                         log=lambda s: None)
    before = checkpoint.load(older / "ckpt/last.pt")
    whole = torchrun(2, str(HERE / "elastic_worker.py"), "0", *tiny_overrides(tmp_path, *ELASTIC, "run.name=whole"))
    assert whole.returncode == 0, whole.stderr[-3000:]
    killed = torchrun(2, "--max-restarts=1", str(HERE / "elastic_worker.py"), "3",
                      *tiny_overrides(tmp_path, *ELASTIC, "run.name=same"))
    assert killed.returncode == 0, killed.stderr[-3000:]
    assert "it died before its first checkpoint" in killed.stderr
    runs = sorted((tmp_path / "runs").glob("*-same"))
    assert len(runs) == 2 and runs[0] == older
    _assert_same_tensors(before, checkpoint.load(older / "ckpt/last.pt"))  # the older run untouched
    (whole_dir,) = (tmp_path / "runs").glob("*-whole")
    a, b = checkpoint.load(whole_dir / "ckpt/last.pt"), checkpoint.load(runs[1] / "ckpt/last.pt")
    assert a["step"] == b["step"] == 48
    _assert_same_tensors(a["recipe"], b["recipe"])


def _assert_same_tensors(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert set(a) == set(b), where
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where
