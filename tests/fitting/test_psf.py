"""Tests of core.fitting.psf: checks, the windowed centroid, recentring, and its effect on a fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from core.fitting.fit import SersicFitError, fit_sersic
from core.fitting.psf import PSFError, delta_psf, prepare_psf, psf_centroid
from core.fitting.sersic import convolve_psf, sersic_image
from tests.fitting.test_fit import PSF, ZP, gaussian_psf


def moffat(size=25, x0=12.0, y0=12.0, alpha=2.0, beta=2.5):
    y, x = np.mgrid[:size, :size]
    return (1 + ((x - x0) ** 2 + (y - y0) ** 2) / alpha**2) ** -beta


@pytest.mark.parametrize("dx, dy", [(0.0, 0.0), (0.3, -0.2), (-1.31, -0.9), (2.2, 0.6)])
def test_centroid_recovers_the_offset(dx, dy):
    psf = moffat(x0=12.0 + dx, y0=12.0 + dy)
    x, y = psf_centroid(psf)
    assert (x, y) == pytest.approx((12.0 + dx, 12.0 + dy), abs=0.02)
    p = prepare_psf(psf * 37.0)
    assert (p.dx, p.dy) == pytest.approx((dx, dy), abs=0.02)
    assert p.shifted == (max(abs(dx), abs(dy)) > 0.1)
    assert p.total == pytest.approx(psf.sum() * 37.0)
    assert p.array.sum() == pytest.approx(1.0)
    # After recentring the centroid is at the array centre (12, 12).
    assert psf_centroid(p.array) == pytest.approx((12.0, 12.0), abs=0.03)


def test_centroid_ignores_wings_and_even_size():
    # A faint companion in a corner moves the plain centroid, not the windowed one.
    psf = moffat(size=31, x0=15.0, y0=15.0)
    psf[2:5, 2:5] += 0.02
    y, x = np.mgrid[:31, :31]
    assert abs((psf * x).sum() / psf.sum() - 15.0) > 0.2
    assert psf_centroid(psf) == pytest.approx((15.0, 15.0), abs=0.02)
    # An even-sized PSF's centre is (k//2, k//2), GALFIT's N/2 + 1 (1-based).
    even = moffat(size=20, x0=10.0, y0=10.0)
    assert not prepare_psf(even).shifted


def test_rejects_bad_psfs():
    with pytest.raises(PSFError, match="non-finite"):
        prepare_psf(np.where(PSF > 0.5, np.nan, PSF))
    with pytest.raises(PSFError, match="positive sum"):
        prepare_psf(-PSF)
    with pytest.raises(PSFError, match="positive sum"):
        prepare_psf(np.zeros((5, 5)))
    with pytest.raises(PSFError, match="2-D"):
        prepare_psf(np.ones(5))
    assert prepare_psf(delta_psf()).array.shape == (1, 1)
    assert not prepare_psf(PSF, tol=None).shifted


def test_off_centre_psf_is_recentred_before_the_fit():
    """A PSF 1.3 px off its centre would move the fitted centre by 1.3 px; recentred it does not."""
    truth = convolve_psf(sersic_image((64, 64), 32.3, 31.6, 21.0, 3.0, 1.5, 0.7, 20.0, ZP), PSF)
    img = truth + np.random.default_rng(2).normal(0, 2e-3, truth.shape)
    off = ndimage.shift(gaussian_psf(), (-0.9, -1.3), order=3)  # centroid at (10.7, 11.1)
    fit = fit_sersic(img, off, zeropoint=ZP)
    assert fit.psf.shifted and (fit.psf.dx, fit.psf.dy) == pytest.approx((-1.3, -0.9), abs=0.03)
    assert (fit.value("XC"), fit.value("YC")) == pytest.approx((32.3, 31.6), abs=0.05)
    assert fit.value("N") == pytest.approx(1.5, rel=0.05)
    kept = fit_sersic(img, off, zeropoint=ZP, psf_tol=None)
    assert not kept.psf.shifted
    assert kept.value("XC") == pytest.approx(32.3 + 1.3, abs=0.1)  # the shift the fit absorbs


def test_no_psf_fits_an_unconvolved_profile():
    img = sersic_image((60, 60), 30.4, 30.9, 20.0, 4.0, 0.8, 0.6, -40.0, ZP)
    fit = fit_sersic(img, delta_psf(), zeropoint=ZP)
    assert fit.value("N") == pytest.approx(0.8, rel=0.01)
    assert fit.value("RE") == pytest.approx(4.0, rel=0.01)
    with pytest.raises(SersicFitError, match="bad PSF"):
        fit_sersic(img, np.full((3, 3), np.nan))
