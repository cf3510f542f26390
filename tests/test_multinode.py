"""Two hosts on this machine: two network namespaces joined by a veth pair, a torchrun agent in
each, rendezvous over c10d at the first host's address, gloo between the processes. The test makes
the namespaces and removes them; where it may not (not root, no `ip`), it is skipped and says why."""

import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from ganforge import api

from conftest import tiny_overrides

HERE = Path(__file__).resolve().parent
PORT = 29400  # inside fresh namespaces nothing else listens
pytestmark = pytest.mark.slow


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@contextmanager
def two_hosts():
    """Yields [(namespace, interface, address)] for two hosts joined by one veth pair."""
    tag = uuid.uuid4().hex[:6]
    hosts = [(f"gf-{tag}-{i}", f"gf{tag}{i}", f"10.231.{int(tag[:2], 16)}.{i + 1}") for i in range(2)]
    made = []
    try:
        for ns, _, _ in hosts:
            _ip("netns", "add", ns)
            made.append(ns)
        _ip("link", "add", hosts[0][1], "type", "veth", "peer", "name", hosts[1][1])
        for ns, dev, addr in hosts:
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield hosts
    finally:
        for ns in made:  # removing a namespace removes its end of the pair, and so the pair
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _namespaces_allowed() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    try:
        with two_hosts() as hosts:
            _ip("netns", "exec", hosts[0][0], "true")  # entering one needs more rights than making it
            return None
    except FileNotFoundError:
        return "the `ip` command (iproute2) is not installed"
    except subprocess.CalledProcessError as e:
        return f"cannot make network namespaces here ({(e.stderr or '').strip()[:120]}): needs root or CAP_NET_ADMIN"


def torchrun_on_two_hosts(hosts, nproc: int, *args: str, timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """The same torchrun command on both hosts at once, as two real machines would run it."""
    endpoint = f"{hosts[0][2]}:{PORT}"
    procs = []
    for i, (ns, dev, addr) in enumerate(hosts):
        # each host names its own address and gloo's interface, and the first host is told it
        # hosts the rendezvous store: all three would otherwise go by the machine's host name,
        # which names an address outside the namespaces (as on a machine whose cluster network
        # is a second NIC)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": dev}
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
               f"--nproc_per_node={nproc}", "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
               "--rdzv-id=ganforge-test", f"--rdzv-conf=is_host={int(i == 0)}", f"--local-addr={addr}", *args]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                      start_new_session=True))
    out = []
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for q in procs:  # the agents and their workers: a hung run leaves no process behind
                os.killpg(q.pid, signal.SIGKILL)
            raise
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.fixture
def hosts():
    why = _namespaces_allowed()
    if why:
        pytest.skip(why)
    with two_hosts() as hosts:
        yield hosts


def test_two_hosts_two_processes_each_keep_one_model(tmp_path, hosts):
    """Four ranks over two hosts (dropout masks per rank): every rank ends with the same weights."""
    out = tmp_path / "ddp.json"
    done = torchrun_on_two_hosts(hosts, 2, str(HERE / "ddp_worker.py"), str(out),
                                 *tiny_overrides(tmp_path, "train.epochs=1"))
    for p in done:
        assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["world_size"] == 4 and r["step"] == 16
    assert r["max_abs_diff_to_rank0"] == [0.0] * 4
    assert r["gather_shares_ok"]


def test_two_hosts_write_one_run_and_gather_the_metrics(tmp_path, hosts):
    """`ganforge train` on both hosts: one run folder (global rank 0's), and its in-training FID
    scored on the samples of both hosts gathered, equal to the saved model's in one process."""
    extra = ("model.d_dropout=0.0", "train.epochs=1", "eval.every_steps=16", "eval.num_samples=200")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  epochs: 1\n")
    done = torchrun_on_two_hosts(hosts, 1, "-m", "ganforge", "train", str(cfg), *tiny_overrides(tmp_path, *extra))
    for p in done:
        assert p.returncode == 0, p.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()  # one run folder for the two hosts
    assert "2 process(es)" in (run / "log.txt").read_text()
    assert sum("run folder:" in p.stdout for p in done) == 1  # only global rank 0 says where it wrote
    (row,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    (fid,) = api.evaluate(run, ["fid"], num_samples=200, seed=0)
    assert row["step"] == 16 and row["fid"] == pytest.approx(fid["value"], rel=1e-4)
