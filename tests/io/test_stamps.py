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
