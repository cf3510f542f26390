"""Collapse caught while training: the health checks, train.keep_best and train.on_collapse.

The collapse is forced: at one step the generator's output layer is set to put every sample on the
first mode of the ring (weights zero, bias the mode's centre), as a generator stuck on one mode
does. The health check after it must see it, and each on_collapse policy must do what it says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge import api, checkpoint, config, validate
from ganforge.cli import main
from ganforge.core.errors import ConfigError
from ganforge.metrics.modes import covered_modes, toy_modes
from ganforge.recipes.gan import GANRecipe

from conftest import collapsing_train_step

COLLAPSE_AT = 500  # the step of a health check: it sees G stuck on one mode
RING_LSGAN = str(Path(__file__).resolve().parents[1] / "configs" / "toy_ring_lsgan.yaml")


def ring_overrides(tmp_path, *extra: str) -> list[str]:
    # coverage_drop=0.5: the ring's coverage wobbles by a mode or two between checks; the forced
    # collapse to one mode is what these tests look for
    return ["data.toy_num_samples=20000", "health.coverage_drop=0.5", "train.max_steps=700", "train.precision=fp32",
            "eval.every_steps=0", "log.progress=false", "log.report=false", "log.sample_every_steps=1000",
            "health.every_steps=100", "health.num_samples=1000", f"run.dir={tmp_path / 'runs'}", *extra]


def ring_cfg(tmp_path, *extra: str) -> config.Config:
    return validate.load(RING_LSGAN, ring_overrides(tmp_path, *extra))


@pytest.fixture
def forced_collapse(monkeypatch):
    """After the COLLAPSE_AT-th training step, G's last layer maps every z to the first centre."""
    monkeypatch.setattr(GANRecipe, "train_step", collapsing_train_step(COLLAPSE_AT))


def _health(run_dir) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (run_dir / "health.jsonl").read_text().splitlines())}


def test_covered_modes_counts_a_fair_share_not_a_single_sample():
    assert covered_modes([100, 100, 100, 100], 0.1) == 4
    assert covered_modes([397, 1, 1, 1], 0.1) == 1  # "hit" four times, covered once
    assert covered_modes([0, 0, 0, 0], 0.1) == 0
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    points = torch.cat([centres[0].repeat(50, 1), torch.tensor([[5.0, 5.0]] * 10)])  # far points are not high quality
    assert toy_modes(points, centres, 0.01)["histogram"] == [50, 0]


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_a_forced_collapse_is_reported_and_rolled_back(tmp_path, forced_collapse):
    cfg = ring_cfg(tmp_path, "train.keep_best=coverage", "train.on_collapse=rollback", "log.report=true")
    run_dir, result = api.train(cfg, log=lambda s: None)
    health = _health(run_dir)
    best_before = max(health[s]["coverage"] for s in range(100, 500, 100))
    assert health[500]["coverage"] == 1 and "mode collapse: 1/8" in health[500]["alarms"][0]
    assert result.alarms[0][0] == 500 and "mode collapse: 1/8" in result.alarms[0][1]
    assert len(result.rollbacks) == 1
    at, back_to = result.rollbacks[0]
    assert at == 500 and back_to == result.best["step"] <= 400 and result.best["value"] == best_before
    # the weights after the rollback are the best checkpoint's, and the next check sees the modes again
    best = checkpoint.load(run_dir / "ckpt" / "best.pt")
    assert best["step"] == back_to
    assert health[600]["coverage"] >= 0.8 * best_before and not health[600]["alarms"]
    log = (run_dir / "log.txt").read_text()
    assert "step 500: mode collapse: " in log and f"rolled back to the weights of step {back_to}" in log
    report = (run_dir / "report" / "report.html").read_text()
    assert "rollback 1" in report and f"at step 500, to the weights of step {back_to}" in report
    assert (run_dir / "report" / "health.png").is_file()
    assert result.step == 700 and not result.stopped_for


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_rollback_restores_exactly_the_best_weights(tmp_path, forced_collapse):
    """Stop right after the rollback (max_steps=500): the weights then are ckpt/best.pt's."""
    cfg = ring_cfg(tmp_path, "train.keep_best=coverage", "train.on_collapse=rollback", "train.max_steps=500")
    run_dir, result = api.train(cfg, log=lambda s: None)
    assert result.rollbacks and result.rollbacks[0][0] == 500
    best, last = checkpoint.load(run_dir / "ckpt" / "best.pt"), checkpoint.load(run_dir / "ckpt" / "last.pt")
    for player in ("G", "D"):
        for k, v in best["recipe"]["players"][player]["net"].items():
            assert torch.equal(v, last["recipe"]["players"][player]["net"][k]), (player, k)
    assert last["step"] == 500 and best["step"] < 500


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_warn_reports_the_collapse_and_carries_on(tmp_path, forced_collapse):
    run_dir, result = api.train(ring_cfg(tmp_path), log=lambda s: None)
    assert [s for s, _ in result.alarms][:1] == [500] and not result.rollbacks and result.step == 700
    assert "train.on_collapse=warn: training goes on" in (run_dir / "log.txt").read_text()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_stop_ends_the_run_at_the_alarm_with_exit_code_6(tmp_path, forced_collapse, capsys):
    code = main(["train", RING_LSGAN, *ring_overrides(tmp_path, "train.on_collapse=stop")])
    err = capsys.readouterr().err
    assert code == 6 and "stopped at step 500: mode collapse" in err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert checkpoint.load(run_dir / "ckpt" / "last.pt")["step"] == 500


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_keep_best_by_a_metric_and_resume_keeps_the_rollback_target(tmp_path):
    """keep_best=modes_captured from the in-training metrics writes ckpt/best.pt at the best
    evaluation; a resumed run continues bit-identically with the same best."""
    extra = ("train.keep_best=modes_captured", "eval.every_steps=100", "eval.metrics=[modes]", "eval.num_samples=500",
             "train.max_steps=300", "log.ckpt_every_steps=200")
    run_dir, full = api.train(ring_cfg(tmp_path, *extra, "run.name=full"), log=lambda s: None)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    best_row = max(metrics, key=lambda r: (r["modes_captured"], -r["step"]))
    assert full.best["step"] == best_row["step"] and full.best["value"] == best_row["modes_captured"]
    assert checkpoint.load(run_dir / "ckpt" / "best.pt")["step"] == best_row["step"]

    cut_dir, _ = api.train(ring_cfg(tmp_path, *extra, "run.name=cut", "train.max_steps=200"), log=lambda s: None)
    _, resumed = api.train(ring_cfg(tmp_path, *extra, "run.name=cut"), resume=str(cut_dir), log=lambda s: None)
    assert resumed.best == {**full.best, "path": cut_dir / "ckpt" / "best.pt"}
    a, b = checkpoint.load(run_dir / "ckpt" / "last.pt"), checkpoint.load(cut_dir / "ckpt" / "last.pt")
    for k, v in a["recipe"]["players"]["G"]["net"].items():
        assert torch.equal(v, b["recipe"]["players"]["G"]["net"][k]), k
    assert (run_dir / "health.jsonl").read_text() == (cut_dir / "health.jsonl").read_text()


@pytest.mark.slow  # over a second (pytest --durations); runs in make test
def test_a_d_that_wins_outright_raises_an_alarm(tiny_cfg):
    """D ten times faster than G on a tiny MLP: its accuracy saturates, and the health check says so."""
    run_dir, result = api.train(tiny_cfg("train.max_steps=30", "health.every_steps=10", "health.d_win_accuracy=0.9",
                                         "optim.lr_D=0.01", "optim.lr_G=1e-5", "model.d_dropout=0"), log=lambda s: None)
    health = _health(run_dir)
    assert any(r["D_acc"] >= 0.9 for r in health.values())
    assert any("D wins outright" in reason for _, reason in result.alarms)
    # a saturated D passes back next to no gradient of its own loss
    assert all(r["grad_G"] > 0 and "grad_D" in r for r in health.values())
    assert health[30]["grad_D"] < health[10]["grad_D"]


@pytest.mark.parametrize("overrides, message", [
    (["train.on_collapse=rollback"], "set train.keep_best"),
    (["train.keep_best=fid"], "set eval.every_steps"),
    (["train.keep_best=coverage", "health.every_steps=0"], "set health.every_steps"),
    (["train.keep_best=fdi"], "did you mean 'fid'"),
    (["train.on_collapse=stop", "health.every_steps=0"], "set health.every_steps"),
])
def test_keep_best_and_on_collapse_misconfigurations_name_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate.load(None, overrides)
