"""Two processes on the gloo backend on CPU, launched by torchrun as a user would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganforge import api, checkpoint

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
