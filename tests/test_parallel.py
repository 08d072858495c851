"""Dask plumbing, and prep on a real dask.distributed cluster vs the local scheduler."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from core.parallel import describe_scheduler, run_tasks
from core.stamps import STAMP_KINDS


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


def test_describe_scheduler():
    assert "synchronous" in describe_scheduler(None, 1)
    assert "2 workers" in describe_scheduler(None, 2)
    assert "tcp://host:8786" in describe_scheduler("tcp://host:8786")


@pytest.mark.slow
def test_local_cluster_gives_the_same_result_as_the_local_scheduler(tmp_path):
    from distributed import LocalCluster

    from core.prep import prep_workspace
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
