"""Sky resampling, object-only residuals and cutouts (core.prep.residual; paper §3.1)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from core.prep.galaxy import prep_galaxy
from core.prep.residual import PrepError, cutout, resample_sky, seam_ratio
from tests.conftest import gauss

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


def test_seam_ratio_by_construction():
    rng = np.random.default_rng(4)
    white = rng.normal(0, 1.0, (100, 100))
    assert seam_ratio(white) == pytest.approx(1.0, abs=0.05)
    # 5x5 blocks at levels 2 sigma apart: differences across block edges dominate
    steps = np.kron(rng.normal(0, 2.0, (20, 20)), np.ones((5, 5)))
    assert seam_ratio(white + steps) > 2.0
    # only where asked: the stepped half excluded
    half = np.where(np.arange(100)[None, :] < 50, white, white + steps)
    assert seam_ratio(half, where=np.broadcast_to(np.arange(100)[None, :] < 50, half.shape)) == pytest.approx(
        1.0, abs=0.07)


def test_blocks_keep_the_background_where_they_land():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:60, :80]
    bkg = 0.05 * xx  # a gradient of 4 sigma across the image
    img = bkg + rng.normal(0, 1.0, bkg.shape)
    sky = np.ones(bkg.shape, bool)
    (plain,), _ = resample_sky([img], sky, bkg.shape, 5, 0)
    (smooth,), _ = resample_sky([img], sky, bkg.shape, 5, 0, backgrounds=[bkg])
    assert seam_ratio(plain) > 1.5 and seam_ratio(smooth) == pytest.approx(1.0, abs=0.08)
    assert abs(np.polyfit(xx.ravel(), (smooth - bkg).ravel(), 1)[0]) < 0.005  # the gradient is where it was
    # a patch off the image (a cutout's padding) takes the background's nearest edge value
    (pad,), _ = resample_sky([img], sky, (10, 10), 5, 0, backgrounds=[bkg], origin=(-5, 75))
    assert abs((pad - bkg[0, 79]).mean()) < 0.5


def test_prep_removes_seams_of_a_background_gradient_and_leaves_a_flat_sky_alone():
    """The issue's measure: block-edge / inside differences, ~8.8 on a spiral with a gradient."""
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[:120, :120]
    gal = gauss(59.6, 60.3, 4.0, 60.0, (120, 120))
    inter = gauss(20.0, 95.0, 3.0, 40.0, (120, 120))
    gradient = 3.0 * ((xx - 60) ** 2 + (yy - 60) ** 2) / 60**2 - 0.08 * xx  # a bowl and a slope, sigma 1 noise
    inp = gal + inter + gradient + rng.normal(0, 1.0, (120, 120))
    model = 0.9 * gal
    before = prep_galaxy(inp, model, inp - model, 60.6, 61.3, seed=2, config={"sky_background_box": 0})
    after = prep_galaxy(inp, model, inp - model, 60.6, 61.3, seed=2)
    assert before.geometry["sky_seam"] > 2.0 and "sky_seams" in before.flags
    assert after.geometry["sky_seam"] <= 1.5 and "sky_seams" not in after.flags
    flat = inp - gradient
    a = prep_galaxy(flat, model, flat - model, 60.6, 61.3, seed=2, config={"sky_background_box": 0})
    b = prep_galaxy(flat, model, flat - model, 60.6, 61.3, seed=2)
    assert_array_equal(a.sky_image, b.sky_image)  # no background model added to a flat sky
    assert a.geometry["sky_seam"] == pytest.approx(1.0, abs=0.1)
