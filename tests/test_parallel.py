"""Dask plumbing, and prep on a real dask.distributed cluster vs the local scheduler."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from core.io.stamps import STAMP_KINDS
from core.parallel import describe_scheduler, run_tasks, start_method


def _square(x):
    return x * x


def test_run_tasks_returns_in_order_and_reports_each_result():
    seen = []
    out = run_tasks(_square, [(i,) for i in range(6)], workers=1, progress=False,
                    on_result=lambda i, r: seen.append((i, r)))
    assert out == [0, 1, 4, 9, 16, 25]
    assert sorted(seen) == [(i, i * i) for i in range(6)]
    assert run_tasks(_square, [(3,)], scheduler="threads", workers=2, progress=False) == [9]
    assert run_tasks(_square, [], progress=False) == []


def _rendezvous(folder, i):
    """Mark task ``i`` started, then wait (up to 60 s) until two tasks have started; return the pid."""
    import os
    import time
    from pathlib import Path

    Path(folder, f"started-{i}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(folder).glob("started-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_local_processes_run_tasks_on_every_worker(tmp_path):
    # Dask's default dispatch batches up to 6 ready tasks onto one worker: then the first task
    # would wait alone for its rendezvous and every task would report the same process.
    pids = run_tasks(_rendezvous, [(str(tmp_path), i) for i in range(4)], workers=2, progress=False)
    assert len(set(pids)) == 2


def test_configured_start_method_wins():
    import dask

    with dask.config.set({"multiprocessing.context": "spawn"}):
        assert start_method() == "spawn"
    assert start_method() in ("fork", "forkserver", "spawn")


def test_describe_scheduler():
    assert "synchronous" in describe_scheduler(None, 1)
    assert "2 workers" in describe_scheduler(None, 2)
    assert "tcp://host:8786" in describe_scheduler("tcp://host:8786")


@pytest.mark.slow
def test_local_cluster_gives_the_same_result_as_the_local_scheduler(tmp_path):
    from distributed import LocalCluster

    from core.prep.pipeline import prep_workspace
    from tests.workspace_factory import make_workspace

    local = make_workspace(tmp_path / "local", n=10, chunk=3, bad={4: "nan"})
    dist = make_workspace(tmp_path / "dist", n=10, chunk=3, bad={4: "nan"})
    cat_local = prep_workspace(local, workers=1, progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        cat_dist = prep_workspace(dist, scheduler=cluster.scheduler_address, progress=False)
    for col in ("prep_status", "split", "cutout_padded"):
        assert list(cat_local[col]) == list(cat_dist[col])
    for col in ("spf", "spf_pos", "spf_neg", "bumpiness", "rff", "sky_sigma"):
        assert_array_equal(np.array(cat_local[col]), np.array(cat_dist[col]))
    a, b = local.stamps(), dist.stamps()
    for kind in STAMP_KINDS:
        assert_array_equal(a.read(kind), b.read(kind))
    assert cat_local["prep_status"][4] == "error"


def test_local_processes_give_the_same_result_as_synchronous(tmp_path):
    from core.prep.pipeline import prep_workspace
    from tests.workspace_factory import make_workspace

    sync = make_workspace(tmp_path / "sync", n=8, chunk=3, bad={2: "nan"})
    procs = make_workspace(tmp_path / "procs", n=8, chunk=3, bad={2: "nan"})
    cat_sync = prep_workspace(sync, workers=1, progress=False)
    cat_procs = prep_workspace(procs, workers=2, progress=False)
    for col in ("prep_status", "prep_message", "split", "cutout_padded"):
        assert [str(v).replace("procs", "sync") for v in cat_procs[col]] == [str(v) for v in cat_sync[col]]
    for col in ("spf", "spf_pos", "spf_neg", "bumpiness", "rff", "sky_sigma"):
        assert_array_equal(np.array(cat_sync[col]), np.array(cat_procs[col]))
    a, b = sync.stamps(), procs.stamps()
    for kind in STAMP_KINDS:
        assert_array_equal(a.read(kind), b.read(kind))
