"""Sky resampling, object-only residuals and cutouts (core.prep.residual; paper §3.1)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from core.prep.residual import PrepError, cutout, resample_sky

SIZE = 100


def test_resample_sky_draws_whole_source_free_blocks():
    rng = np.random.default_rng(0)
    img = rng.normal(size=(40, 40))
    sky = np.ones((40, 40), bool)
    sky[10:30, 10:30] = False
    (out,), b = resample_sky(img, sky, (23, 17), block=5, rng=1)
    assert b == 5 and out.shape == (23, 17)
    # every 5x5 block of the output is a 5x5 block of the input lying entirely in the sky
    win = np.lib.stride_tricks.sliding_window_view(img, (5, 5))
    ok = np.lib.stride_tricks.sliding_window_view(sky, (5, 5)).all(axis=(-2, -1))
    for by in range(0, 20, 5):
        for bx in range(0, 15, 5):
            hits = np.argwhere((win == out[by : by + 5, bx : bx + 5]).all(axis=(-2, -1)))
            assert len(hits) and all(ok[y, x] for y, x in hits)
    again, _ = resample_sky(img, sky, (23, 17), block=5, rng=1)
    assert_array_equal(out, again[0])
    # no complete 5x5 sky block: falls back to smaller blocks
    checker = np.indices((40, 40)).sum(0) % 2 == 0
    (_,), b = resample_sky(img, checker, (10, 10), block=5, rng=0)
    assert b == 1
    with pytest.raises(PrepError):
        resample_sky(img, np.zeros((40, 40), bool), (5, 5))


@pytest.mark.parametrize("size", [50, 64, 51])
def test_cutouts_are_centred(size):
    img = np.zeros((SIZE, SIZE))
    img[61, 37] = 1.0  # 0-based row 61, column 37
    stamp, padded = cutout(img, 37.3, 60.8, size)
    assert not padded and stamp.shape == (size, size)
    assert stamp[size // 2, size // 2] == 1.0
    img[61, 10] = 2.0
    edge, padded = cutout(img, 3.0, 61.0, size, fill=-5.0)
    assert padded and edge.shape == (size, size)
    assert edge[size // 2, 0] == -5.0 and edge[size // 2, size // 2 + 7] == 2.0
