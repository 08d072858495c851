"""The cutout on the sky and its flux-conserving resampling (core.prep.stamp, prep_galaxy's geometry)."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from core.prep.galaxy import prep_galaxy
from core.prep.residual import cutout
from core.prep.stamp import cutout_side, resample_matrix, resample_region
from tests.conftest import gauss


def test_resampling_conserves_flux_at_any_side():
    rng = np.random.default_rng(0)
    for side, m in [(60.0, 50), (100.0, 50), (78.95, 50), (30.0, 50), (50.0, 64), (7.3, 3)]:
        n = math.ceil(side)
        region = rng.normal(1.0, 1.0, (n, n))
        out = resample_region(region, side, m)
        # the flux inside the footprint: every whole pixel, and the covered part of the last row/column
        w = np.minimum(np.arange(n) + 1, side) - np.arange(n)
        assert_allclose(out.sum(), w @ region @ w, rtol=1e-12), (side, m)
        assert_allclose(resample_matrix(side, m).sum(axis=0), w)


def test_resampling_by_hand():
    img = np.arange(36.0).reshape(6, 6)
    # a factor 2: each stamp pixel is the sum of a 2x2 block
    assert_array_equal(resample_region(img, 6, 3), img.reshape(3, 2, 3, 2).sum(axis=(1, 3)))
    # the same size: the identity, exactly (a 0.06"/px image gives the paper's stamps pixel for pixel)
    assert_array_equal(resample_region(img, 6, 6), img)
    # 1.5 native px per stamp pixel on one row: [a, b, c] -> [a + b/2, b/2 + c]
    a = resample_matrix(3, 2)
    assert_allclose(a, [[1, 0.5, 0], [0, 0.5, 1]])
    # a mask as an area-weighted mean
    mask = np.zeros((4, 4))
    mask[:2, :] = 1
    assert_allclose(resample_region(mask, 4, 2, mean=True), [[1, 1], [0, 0]])


def test_cutout_side_units():
    assert cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.06).side == 50.0  # WFC3/IR: the paper's
    assert cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.03).side == 100.0  # ACS
    assert cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.1).side == 30.0   # Euclid VIS
    assert cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.0499992).side == 60.0  # no sliver from rounding
    assert cutout_side(40, "px", stamp=50).side == 40.0
    assert cutout_side(12, "re", stamp=50, re=3.5).side == 42.0
    unknown = cutout_side(3.0, "arcsec", stamp=50)
    assert unknown.side == 50.0 and "pixel scale unknown" in unknown.note
    assert cutout_side(12, "re", stamp=50).note.startswith("no fitted Re")
    with pytest.raises(ValueError):
        cutout_side(3, "deg", stamp=50)


def _white_scene(size=200, sigma=1.0, seed=3):
    """A small galaxy on white noise of ``sigma`` (no interloper)."""
    rng = np.random.default_rng(seed)
    gal = gauss(99.7, 100.2, 2.5, 40.0, (size, size))
    inp = gal + rng.normal(0, sigma, (size, size))
    model = 0.9 * gal
    return inp, model, inp - model


def test_acs_scale_cuts_3_arcsec_and_bins_to_50_px():
    inp, model, res = _white_scene()
    r = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1, pixel_scale=0.03)
    g = r.geometry
    assert g["cutout_px"] == 100.0 and g["cutout_arcsec"] == pytest.approx(3.0) and g["pixel_scale"] == 0.03
    for kind in ("original", "model", "residual", "object_only", "goi_mask"):
        assert r.stamps[kind].shape == (50, 50)
    # flux conserved: the 50 x 50 stamp sums the 100 x 100 native cutout
    native, _ = cutout(inp, 99.7, 100.2, 100)
    assert_allclose(r.stamps["original"].sum(), native.sum(), rtol=1e-10)
    assert_allclose(r.stamps["original"], native.reshape(50, 2, 50, 2).sum(axis=(1, 3)), rtol=1e-10)
    # white noise of sigma 1 summed over 2x2 native pixels: sigma 2 per stamp pixel, re-measured
    assert g["stamp_sigma"] == pytest.approx(2.0, rel=0.08)
    # the metrics stay on the native pixels
    assert r.metrics["sky_sigma"] == pytest.approx(1.0, rel=0.05)
    assert r.status == "ok", r.message


def test_wfc3_scale_gives_the_papers_stamps_unchanged():
    inp, model, res = _white_scene()
    at_006 = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1, pixel_scale=0.06)
    native = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1, config={"cutout_unit": "px", "cutout_size": 50})
    assert at_006.geometry["cutout_px"] == 50.0
    for kind in at_006.stamps:
        assert_array_equal(at_006.stamps[kind], native.stamps[kind])
    assert_array_equal(native.stamps["original"], cutout(inp, 99.7, 100.2, 50)[0])
    # unknown scale: 50 native px, with a note (not a flag)
    unknown = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1)
    assert unknown.status == "ok" and "pixel scale unknown" in unknown.message
    assert math.isnan(unknown.geometry["cutout_arcsec"]) and unknown.geometry["cutout_px"] == 50.0
    # a config scale overrides the block's
    forced = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1, pixel_scale=0.06, config={"pixel_scale": 0.03})
    assert forced.geometry["cutout_px"] == 100.0 and forced.scale_source == "config"


def test_a_cutout_in_units_of_re():
    inp, model, res = _white_scene()
    r = prep_galaxy(inp, model, res, 100.7, 101.2, seed=1, re=2.5,
                    config={"cutout_unit": "re", "cutout_size": 16})
    assert r.geometry["cutout_px"] == 40.0 and r.stamps["original"].shape == (50, 50)
    native, _ = cutout(inp, 99.7, 100.2, 40)
    assert_allclose(r.stamps["original"].sum(), native.sum(), rtol=1e-10)


def test_a_galaxy_larger_than_the_cutout_and_one_filling_it_are_flagged():
    rng = np.random.default_rng(5)
    big = gauss(99.5, 99.5, 30.0, 30.0, (200, 200))  # FWHM 70 px: far beyond a 50 px stamp
    inp = big + rng.normal(0, 1.0, big.shape)
    r = prep_galaxy(inp, 0.9 * big, inp - 0.9 * big, 100.5, 100.5, seed=0, pixel_scale=0.06)
    assert r.status == "flagged" and "goi_off_stamp" in r.flags and "goi_fills_stamp" in r.flags
    assert "galaxy larger than the cutout" in r.message and "3.00 arcsec (50 px) stamp" in r.message
    # of a Gaussian of sigma 30 px, the share of light beyond a centred 50 px square (where segmented)
    inside = math.erf(25 / (30 * math.sqrt(2))) ** 2
    assert r.geometry["goi_outside"] == pytest.approx(1 - inside, abs=0.1)
    assert r.geometry["goi_fill"] > 0.9 and math.isnan(r.geometry["stamp_sigma"])  # no sky left on the stamp
    # the same galaxy in a 9 arcsec cutout is no longer larger than it
    wide = prep_galaxy(inp, 0.9 * big, inp - 0.9 * big, 100.5, 100.5, seed=0, pixel_scale=0.06,
                       config={"cutout_size": 9.0})
    assert "goi_off_stamp" not in wide.flags and "goi_fills_stamp" not in wide.flags
    small = prep_galaxy(*_white_scene(), 100.7, 101.2, seed=1, pixel_scale=0.06)
    assert small.geometry["goi_outside"] == 0.0 and small.geometry["goi_fill"] < 0.2


def test_a_fitted_neighbour_inside_the_goi_segment_flags_a_blend():
    rng = np.random.default_rng(2)
    pair = gauss(49.5, 49.5, 4.0, 50.0) + gauss(57.5, 49.5, 4.0, 40.0)
    inp = pair + rng.normal(0, 1.0, pair.shape)
    r = prep_galaxy(inp, 0.9 * pair, inp - 0.9 * pair, 50.5, 50.5, seed=0,
                    neighbours=[(3, 58.5, 50.5), (4, 10.0, 90.0)])
    assert r.flags == ["goi_blend"] and "component(s) 3 at (58.5, 50.5): a blend" in r.message
