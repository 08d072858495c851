"""The engine on a real dask.distributed cluster: ingest, prep and embed give what the local run gives.

The cluster is a ``dask scheduler`` and two ``dask worker`` processes started from their own command
lines, in a folder of their own (so that a relative path handed to a task would not resolve there).
The command lines get the workspaces by relative paths from another folder, as a user would type them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from core.io.stamps import STAMP_KINDS

pytestmark = pytest.mark.slow

N_GALAXIES = 12
CHUNK = 4  # three prep tasks, so both workers get work


def _start(cmd: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    fh = open(log, "wb")
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for p in reversed(procs):
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """``(address, folder)`` of a scheduler and two single-threaded workers, separate processes."""
    from distributed import Client

    home = tmp_path_factory.mktemp("cluster")
    sched_file = home / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [_start([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(sched_file)], home, home / "scheduler.log")]
    try:
        deadline = time.monotonic() + 120
        while not sched_file.exists() and time.monotonic() < deadline:
            if procs[0].poll() is not None:
                pytest.fail("dask scheduler exited:\n" + (home / "scheduler.log").read_text())
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(2):
            procs.append(_start([*dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                 "--name", f"w{i}", "--local-directory", str(home / f"w{i}")],
                                home, home / f"worker{i}.log"))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=180)
            client.get_task_stream()  # installs the scheduler's task-stream plugin (no dashboard here)
        yield address, home
    finally:
        _stop(procs)


def _task_workers(address: str, prefix: str, since: float) -> set[str]:
    """The workers that ran tasks whose key starts with ``prefix`` since ``since`` (the scheduler's task stream)."""
    from distributed import Client

    with Client(address, timeout=60) as client:
        stream = client.get_task_stream(start=since)
    return {t["worker"] for t in stream if str(t["key"]).strip("('").startswith(prefix)}


def _compare_catalogs(a, b, skip=()):
    assert a.colnames == b.colnames
    for col in a.colnames:
        if col in skip:
            continue
        x, y = np.asarray(a[col]), np.asarray(b[col])
        if x.dtype.kind == "f":
            assert_array_equal(x, y, err_msg=col)  # NaN == NaN here
        else:
            assert list(x) == list(y), col


def test_ingest_prep_embed_on_a_cluster_equal_the_local_run(cluster, tmp_path, monkeypatch):
    from core.cli.main import main
    from core.latent.embedding import load_embedding
    from core.learn.training import train
    from core.simulation.survey import simulate_survey
    from core.workspace.workspace import Workspace

    address, home = cluster
    monkeypatch.chdir(tmp_path)  # every path below is relative to here, not to the workers' folder
    simulate_survey(N_GALAXIES, 11, "sim", progress=False, workers=1)
    cuts = tmp_path / "cfg.toml"
    cuts.write_text(f"[prep]\nchunk = {CHUNK}\n[cuts]\n" + "".join(
        f'{k} = "none"\n' for k in ("hmag_max", "logmass_min", "z_min", "z_max", "photflag")))

    # ingest: the headers read here vs by the cluster's workers
    assert main(["ingest", "sim", "local", "--config", str(cuts), "--workers", "1"]) in (0, 1)
    since = time.time()
    assert main(["ingest", "sim", "dist", "--config", str(cuts), "--scheduler", address]) in (0, 1)
    assert len(_task_workers(address, "read_header_chunk", since)) == 2
    local, dist = Workspace.open("local"), Workspace.open("dist")
    _compare_catalogs(local.read_catalog(), dist.read_catalog())

    # prep: one task per stamp chunk on the workers
    since = time.time()
    rc_local = main(["prep", "local", "--workers", "1"])
    rc_dist = main(["prep", "dist", "--scheduler", address])
    assert rc_local == rc_dist
    assert len(_task_workers(address, "prep_chunk", since)) == 2
    cat_local, cat_dist = local.read_catalog(), dist.read_catalog()
    assert set(cat_local["prep_status"]) <= {"ok", "flagged", "error"}
    _compare_catalogs(cat_local, cat_dist)
    a, b = local.stamps(), dist.stamps()
    for kind in STAMP_KINDS:
        assert_array_equal(a.read(kind), b.read(kind), err_msg=kind)

    # embed: a small CNN trained once here, copied to the other workspace, embedded both ways
    run = train(local, "cnn", epochs=1, per_class=4, run_id="cnn-1",
                config={"models": {"filters": [4, 8, 8]}, "embed": {"k_max": 4, "grid": 20}})
    shutil.copytree(run.path, dist.runs_dir / run.id)
    shutil.copy(local.root / "active.json", dist.root / "active.json")
    assert main(["embed", "local", "--run", run.id]) == 0
    since = time.time()
    # (the scheduler by its file this time)
    assert main(["embed", "dist", "--run", run.id, "--scheduler", str(home / "scheduler.json")]) == 0
    assert len(_task_workers(address, "_chunk_latents", since)) >= 1
    e, f = load_embedding(local, run.id), load_embedding(dist, run.id)
    assert_array_equal(e.ids, f.ids)
    assert_array_equal(e.rows, f.rows)
    # The local run predicts every stamp in one batch, the cluster one chunk per task: the same
    # network on the same pixels, up to float32 summation order.
    assert_allclose(f.latents, e.latents, rtol=1e-5, atol=1e-6)
    assert_allclose(f.probabilities, e.probabilities, rtol=1e-5, atol=1e-6)
    assert_allclose(f.pcs, e.pcs, rtol=1e-4, atol=1e-5 * np.abs(e.pcs).max())
    assert e.elbow_k == f.elbow_k
    assert_array_equal(e.predicted, f.predicted)


def test_workers_that_do_not_see_the_workspace_are_refused(cluster, tmp_path):
    """A path the workers cannot see is one clear message, before any task runs."""
    from core.parallel import SchedulerError, check_shared_paths, connect, run_tasks

    address, _ = cluster
    client = connect(address)
    try:
        check_shared_paths(client, [str(tmp_path)])  # the same machine: every worker sees it
        with pytest.raises(SchedulerError, match="2 dask worker.*nowhere.*shared file system"):
            run_tasks(len, [("ab",)], scheduler=client, progress=False, shared=[str(tmp_path / "nowhere")])
        assert run_tasks(len, [("ab",), ("abc",)], scheduler=client, progress=False, shared=[str(tmp_path)]) == [2, 3]
    finally:
        client.close()


def test_an_unreachable_scheduler_is_one_message(tmp_path, monkeypatch, capsys):
    import core.parallel
    from core.cli.main import main
    from tests.workspace_factory import make_workspace

    monkeypatch.setattr(core.parallel, "CONNECT_TIMEOUT", 2.0)
    ws = make_workspace(tmp_path / "ws", n=4)
    assert main(["prep", str(ws.root), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "resx prep: cannot reach the dask.distributed scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
