"""The chunked zarr stamp store."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from core.io.stamps import STAMP_KINDS, StampStore


def test_create_write_read_roundtrip(tmp_path):
    store = StampStore.create(tmp_path / "s.zarr", n=10, size=6, chunk=4)
    assert (store.n, store.size, store.chunk) == (10, 6, 4)
    assert store.chunk_bounds() == [(0, 4), (4, 8), (8, 10)]
    data = np.arange(4 * 36, dtype=np.float32).reshape(4, 6, 6)
    store.write("object_only", 4, data)
    store.write("goi_mask", 4, data > 50)
    again = StampStore.open(tmp_path / "s.zarr")
    assert_array_equal(again.read("object_only", slice(4, 8)), data)
    assert again.read("object_only").dtype == np.float32
    assert again.read("goi_mask").dtype == np.uint8
    assert np.isnan(again.read("original", 0)).all()  # unprepared rows are NaN
    assert_array_equal(again.read("object_only", [7, 4, 7]), data[[3, 0, 3]])  # any order, repeats
    assert_array_equal(again.read("object_only", np.array([5])), data[[1]])
    assert again.read("residual", []).shape == (0, 6, 6)
    # each kind is chunked along the galaxy axis only
    for kind in STAMP_KINDS:
        assert again._array(kind).chunks == (4, 6, 6)


def test_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="resx prep"):
        StampStore.open(tmp_path / "none.zarr")
    store = StampStore.create(tmp_path / "s.zarr", n=3, size=4, chunk=2)
    with pytest.raises(KeyError, match="unknown stamp kind"):
        store.read("sky")
    with pytest.raises(ValueError, match="expected"):
        store.write("model", 0, np.zeros((1, 5, 5)))
    with pytest.raises(IndexError):
        store.write("model", 2, np.zeros((2, 4, 4)))
    with pytest.raises(IndexError):
        store.read("model", [3])


def test_parallel_writers_on_separate_chunks(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = StampStore.create(tmp_path / "s.zarr", n=12, size=5, chunk=3)

    def fill(bounds):
        start, stop = bounds
        StampStore.open(tmp_path / "s.zarr").write("residual", start, np.full((stop - start, 5, 5), start, np.float32))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(fill, store.chunk_bounds()))
    got = store.read("residual")[:, 0, 0]
    assert_array_equal(got, np.repeat([0, 3, 6, 9], 3))


def test_a_sharded_store_reads_what_was_written_and_keeps_one_file_per_chunk(tmp_path):
    import os

    rng = np.random.default_rng(0)
    old = StampStore.create(tmp_path / "old.zarr", n=40, size=5, chunk=16)  # one block per chunk
    new = StampStore.create(tmp_path / "new.zarr", n=40, size=5, chunk=16, read_chunk=4)
    assert (new.chunk, new.read_chunk, old.chunk, old.read_chunk) == (16, 4, 16, 16)
    assert new._array("residual").shards == (16, 5, 5) and new._array("residual").chunks == (4, 5, 5)
    data = rng.normal(size=(40, 5, 5)).astype(np.float32)
    for store in (old, new):
        for start, stop in store.chunk_bounds():
            store.write("residual", start, data[start:stop])
    rows = np.array([39, 0, 17, 17, 5])
    for path in ("old.zarr", "new.zarr"):
        again = StampStore.open(tmp_path / path, mode="r")
        np.testing.assert_array_equal(again.read("residual", rows), data[rows])
        np.testing.assert_array_equal(again.read("residual"), data)
        assert again.chunk == 16
    files = [f for _, _, fs in os.walk(tmp_path / "new.zarr" / "residual") for f in fs if f != "zarr.json"]
    assert len(files) == 3  # one file per chunk of 16 galaxies, as the unsharded store
    # a read_chunk that does not divide the chunk: the largest block size that does
    odd = StampStore.create(tmp_path / "odd.zarr", n=30, size=4, chunk=12, read_chunk=16)
    assert (odd.chunk, odd.read_chunk) == (12, 4)


def test_prep_makes_sharded_stores_and_keeps_an_older_one(tmp_path):
    from core.io.stamps import READ_CHUNK
    from core.prep.pipeline import prep_workspace
    from tests.workspace_factory import make_workspace

    ws = make_workspace(tmp_path / "ws", n=6, chunk=32)
    prep_workspace(ws, workers=1, progress=False)
    store = ws.stamps()
    assert store.chunk == 6 and store.read_chunk == np.gcd(6, READ_CHUNK)
    before = store.read("object_only")
    # an older workspace's store (one block per chunk) is kept and read, not rebuilt
    old = StampStore.create(ws.stamps_path, n=6, size=store.size, chunk=32)
    for kind in ("object_only",):
        old.write(kind, 0, before)
    prep_workspace(ws, workers=1, progress=False)  # nothing pending: the store stays as it is
    again = ws.stamps()
    assert again.read_chunk == 6 and again.chunk == 6
    np.testing.assert_array_equal(again.read("object_only"), before)
