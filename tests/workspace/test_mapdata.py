"""The per-process shared map data: the catalog's columnar cache, the shared vote snapshot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.workspace.mapdata import CACHE_DIR, shared_map_data


@pytest.fixture
def ws(tmp_path):
    from tests.app_workspace import make_workspace

    return make_workspace(tmp_path / "ws", n=120, stamps=False)


def _direct(ws) -> pd.DataFrame:
    table = ws.read_catalog()
    return table[[c for c in table.colnames if table[c].ndim == 1]].to_pandas().reset_index(drop=True)


def test_the_cached_catalog_equals_the_catalog_and_is_memory_mapped(ws):
    first = shared_map_data(ws).catalog()
    pd.testing.assert_frame_equal(first, _direct(ws), check_dtype=False)
    assert list((ws.root / CACHE_DIR).glob("catalog-*/columns.json"))
    spf = first["spf"].to_numpy()
    assert not spf.flags.writeable and not spf.flags.owndata  # a view of the read-only map
    assert shared_map_data(ws) is shared_map_data(str(ws.root))  # one per process
    assert shared_map_data(ws).catalog() is first


def test_a_new_catalog_gives_new_map_data_and_a_new_cache(ws):
    old = shared_map_data(ws)
    old.catalog()
    table = ws.read_catalog()
    table["spf"] = np.arange(len(table), dtype=float)
    ws.write_catalog(table)
    new = shared_map_data(ws)
    assert new is not old
    np.testing.assert_array_equal(new.catalog()["spf"].to_numpy(), np.arange(len(table)))
    assert len(list((ws.root / CACHE_DIR).glob("catalog-*"))) == 1  # the stale cache is gone


def test_a_damaged_cache_is_rebuilt_and_a_read_only_workspace_still_serves(ws, monkeypatch):
    from core.workspace import mapdata

    shared_map_data(ws).catalog()
    (cache,) = (ws.root / CACHE_DIR).glob("catalog-*")
    (cache / "0.npy").write_bytes(b"garbage")
    monkeypatch.setattr(mapdata, "_SHARED", {})  # a new process
    pd.testing.assert_frame_equal(shared_map_data(ws).catalog(), _direct(ws), check_dtype=False)

    def refuse(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(mapdata, "_SHARED", {})
    monkeypatch.setattr(mapdata, "_write_columns", refuse)
    monkeypatch.setattr(mapdata, "_read_columns", refuse)
    pd.testing.assert_frame_equal(shared_map_data(ws).catalog(), _direct(ws), check_dtype=False)


def test_the_vote_snapshot_is_read_once_per_store_version(ws, monkeypatch):
    shared = shared_map_data(ws)
    store = shared.store
    reads = []
    original = type(store).consensus
    monkeypatch.setattr(type(store), "consensus",
                        lambda self, *a, **k: (reads.append(k.get("ids")), original(self, *a, **k))[1])
    first = shared.votes()
    assert shared.votes() is first and len(reads) == 1  # no new vote: nothing read
    store.add_inspector("ann")
    ids = [str(i) for i in shared.catalog()["id"][:2]]
    store.cast(ids, "ann", "Core")
    snap = shared.update_votes(ids)  # this process's own vote: only its galaxies re-read
    assert reads[-1] == ids and snap.serial == first.serial + 1
    assert (snap.consensus.loc[ids, "n_votes"] == 1).all()
    assert shared.votes() is snap  # current: no full read
    assert len(reads) == 2
