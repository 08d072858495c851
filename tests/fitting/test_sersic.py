"""Tests of core.fitting.sersic: flux normalisation, GALFIT geometry conventions, PSF convolution."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.special import gammainc

from core.fitting.sersic import PSFConvolver, SersicRenderer, convolve_psf, sersic_bn, sersic_flux, sersic_image

ZP = 25.0


def test_bn_known_values():
    # Classic values: b_1 = 1.678347, b_4 = 7.669249 (Ciotti & Bertin 1999).
    assert_allclose(sersic_bn(1.0), 1.678347, rtol=1e-6)
    assert_allclose(sersic_bn(4.0), 7.669249, rtol=1e-6)
    assert_allclose(sersic_bn(0.5), 0.6931472, rtol=1e-6)  # Gaussian: ln 2


def test_flux_formula_exponential_by_hand():
    # n = 1: F = 2π re² Ie e^b b^-2 Γ(2) ar.
    b = 1.6783469900166612
    expected = 2 * np.pi * 9.0 * 2.0 * np.exp(b) / b**2 * 0.5
    assert_allclose(sersic_flux(2.0, 3.0, 1.0, 0.5), expected, rtol=1e-10)


@pytest.mark.parametrize("n", [0.5, 1.0, 2.0, 4.0, 6.0])
@pytest.mark.parametrize("re", [0.8, 3.0])
def test_total_flux_matches_magnitude(n, re):
    img = sersic_image((401, 401), 201.3, 200.8, 20.0, re, n, 0.7, 30.0, ZP)
    flux = 10 ** (-0.4 * (20.0 - ZP))
    # Light beyond the grid: the grid holds at least the ellipse of semi-major axis 200*0.7 px.
    inside = gammainc(2 * n, sersic_bn(n) * (200 * 0.7 / re) ** (1 / n))
    assert img.sum() == pytest.approx(flux * inside, rel=0.01)
    assert np.all(np.isfinite(img)) and img.min() >= 0


def test_gaussian_matches_analytic_pixel_values():
    # n = 0.5 is a Gaussian: I = Ie exp(-ln2 (r²/re² - 1)); sigma² = re² / (2 ln 2).
    re = 6.0
    img = sersic_image((61, 61), 31.0, 31.0, 18.0, re, 0.5, 1.0, 0.0, ZP, levels=())
    flux = 10 ** (-0.4 * (18.0 - ZP))
    s2 = re**2 / (2 * np.log(2))
    y, x = np.mgrid[1:62, 1:62]
    expected = flux / (2 * np.pi * s2) * np.exp(-((x - 31.0) ** 2 + (y - 31.0) ** 2) / (2 * s2))
    assert_allclose(img, expected, rtol=1e-6, atol=1e-12)


def _moments(img):
    y, x = np.mgrid[: img.shape[0], : img.shape[1]]
    f = img.sum()
    mx, my = (img * x).sum() / f, (img * y).sum() / f
    vxx = (img * (x - mx) ** 2).sum() / f
    vyy = (img * (y - my) ** 2).sum() / f
    vxy = (img * (x - mx) * (y - my)).sum() / f
    return mx, my, vxx, vyy, vxy


def test_centre_is_one_based():
    img = sersic_image((64, 64), 20.0, 40.0, 20.0, 3.0, 1.0, 0.5, 10.0, ZP)
    mx, my, *_ = _moments(img)
    # 1-based (20, 40) is numpy index (39, 19).
    assert_allclose([mx, my], [19.0, 39.0], atol=0.02)
    assert np.unravel_index(np.argmax(img), img.shape) == (39, 19)


def test_position_angle_convention():
    common = dict(shape=(81, 81), xc=41.0, yc=41.0, mag=20.0, re=6.0, n=1.0, ar=0.4, zeropoint=ZP)
    _, _, vxx, vyy, _ = _moments(sersic_image(pa=0.0, **common))
    assert vyy > 4 * vxx  # pa = 0: elongated along y
    _, _, vxx, vyy, _ = _moments(sersic_image(pa=90.0, **common))
    assert vxx > 4 * vyy  # pa = 90: elongated along x
    # pa = 45 counter-clockwise from +y points to (-x, +y): negative x-y covariance.
    _, _, vxx, vyy, vxy = _moments(sersic_image(pa=45.0, **common))
    assert vxy < -0.5 * vxx
    assert_allclose(vxx, vyy, rtol=1e-3)


def test_symmetry():
    img = sersic_image((65, 65), 33.0, 33.0, 20.0, 4.0, 4.0, 0.6, 30.0, ZP)
    # Point symmetry about the centre (180° rotation).
    assert_allclose(img, img[::-1, ::-1], rtol=1e-10)
    # Mirror symmetry: pa -> -pa is the mirror image in x.
    mirrored = sersic_image((65, 65), 33.0, 33.0, 20.0, 4.0, 4.0, 0.6, -30.0, ZP)
    assert_allclose(img, mirrored[:, ::-1], rtol=1e-10)
    # ar > 1 is the same ellipse rotated by 90°, with re along the old minor axis.
    a = sersic_image((65, 65), 33.0, 33.0, 20.0, 4.0, 1.0, 0.5, 0.0, ZP)
    b = sersic_image((65, 65), 33.0, 33.0, 20.0, 2.0, 1.0, 2.0, 90.0, ZP)
    assert_allclose(a, b, rtol=1e-8)


def test_central_pixel_converged_for_high_n():
    kw = dict(shape=(41, 41), xc=21.2, yc=20.9, mag=20.0, re=1.5, n=6.0, ar=0.8, pa=20.0, zeropoint=ZP)
    fast = sersic_image(**kw)
    ref = sersic_image(**kw, levels=((8, 9), (3, 27), (1, 81), (0, 243)))
    assert_allclose(fast, ref, rtol=5e-3)
    # Without refinement, pixel-centre sampling is far off at the centre.
    crude = sersic_image(**kw, levels=())
    assert abs(crude[19, 20] / ref[19, 20] - 1) > 0.05


def test_invalid_parameters():
    with pytest.raises(ValueError, match="re="):
        sersic_image((10, 10), 5, 5, 20, -1.0, 1.0, 1.0, 0.0, ZP)


def test_convolve_psf_preserves_flux_and_centre():
    img = np.zeros((50, 60))
    img[20, 30] = 5.0
    y, x = np.mgrid[:15, :15]
    psf = np.exp(-((x - 7) ** 2 + (y - 7) ** 2) / 8.0) * 3.0  # not normalised on purpose
    out = convolve_psf(img, psf)
    assert out.shape == img.shape
    assert_allclose(out.sum(), 5.0, rtol=1e-10)
    assert np.unravel_index(np.argmax(out), out.shape) == (20, 30)
    assert_allclose(out[13:28, 23:38], 5.0 * psf / psf.sum(), atol=1e-12)


def test_convolve_even_psf_centre_is_galfit_centre():
    # Even-sized PSF: centre at numpy index N/2 (GALFIT's N/2 + 1, 1-based).
    psf = np.zeros((8, 8))
    psf[4, 4] = 1.0
    img = np.random.default_rng(0).normal(size=(30, 30))
    assert_allclose(convolve_psf(img, psf), img, atol=1e-12)


def test_convolver_is_linear_not_circular():
    psf = np.ones((5, 5))
    img = np.zeros((20, 20))
    img[0, 0] = 1.0
    out = PSFConvolver(psf, img.shape)(img)
    # Light leaving the image must not wrap to the opposite edge.
    assert out[-1, -1] == pytest.approx(0.0, abs=1e-14)
    assert out[:3, :3].sum() == pytest.approx(9 / 25)
    with pytest.raises(ValueError, match="shape"):
        PSFConvolver(psf, (10, 10))(img)
    with pytest.raises(ValueError, match="positive sum"):
        PSFConvolver(np.zeros((3, 3)), (10, 10))


def test_renderer_matches_sersic_image_and_gradient_matches_finite_differences():
    from core.fitting.sersic import SersicRenderer

    p = np.array([20.3, 19.6, 20.0, 3.0, 2.5, 0.6, 30.0])  # xc yc mag re n ar pa
    r = SersicRenderer((40, 40), ZP)
    stack = r.render(*p, grad=True)
    assert stack.shape == (8, 40, 40)
    assert_allclose(stack[0], sersic_image((40, 40), *p, ZP), rtol=1e-12)
    assert_allclose(r.render(*p), stack[0], rtol=1e-12)
    # Away from the cusp (where central differences of the sub-sampled centre are poor).
    far = np.ones((40, 40), bool)
    far[15:25, 15:25] = False
    for k, h in enumerate([1e-4, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-4]):
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        fd = (r.render(*up) - r.render(*down)) / (2 * h)
        assert_allclose(stack[k + 1][far], fd[far], atol=1e-8 * np.abs(fd).max()), k
        # The totals over the image (dominated by the centre) agree too.
        assert stack[k + 1].sum() == pytest.approx(fd.sum(), rel=1e-3, abs=1e-6 * np.abs(fd).max())
    # d/dmag = -0.4 ln 10 I exactly.
    assert_allclose(stack[3], -0.4 * np.log(10) * stack[0], rtol=1e-12)


@pytest.mark.parametrize("re, n", [(1.0, 1.5), (2.0, 3.0), (4.0, 4.0), (10.0, 1.0)])
def test_refinement_levels_reduced_where_accurate(re, n):
    from core.fitting.sersic import DEFAULT_LEVELS, REDUCED_LEVELS, refinement_levels

    assert refinement_levels(re, n) == REDUCED_LEVELS
    kw = dict(shape=(61, 61), xc=31.3, yc=30.8, mag=20.0, re=re, n=n, ar=0.5, pa=30.0, zeropoint=ZP)
    y, x = np.mgrid[:25, :25]
    psf = np.exp(-((x - 12) ** 2 + (y - 12) ** 2) / (2 * 0.85**2))  # FWHM 2 px
    conv = PSFConvolver(psf, (61, 61))
    ref = conv(sersic_image(**kw, levels=((8, 3), (3, 9), (1, 27), (0, 81), (0, 243))))
    reduced = conv(sersic_image(**kw, levels=REDUCED_LEVELS))
    assert np.abs(reduced - ref).max() < 1e-3 * ref.max()
    assert refinement_levels(1.5, 6.0) == DEFAULT_LEVELS
    assert refinement_levels(0.8, 1.0) == DEFAULT_LEVELS


def test_convolver_margin_and_stack():
    rng = np.random.default_rng(2)
    psf = rng.uniform(size=(21, 21))
    img = rng.normal(size=(3, 60, 50))
    full = PSFConvolver(psf, (60, 50))
    small = PSFConvolver(psf, (60, 50), margin=10)
    assert small.padded_shape[0] < full.padded_shape[0]
    stack = small.convolve_stack(img)
    for k in range(3):
        ref = full(img[k])
        assert_allclose(stack[k, 10:-10, 10:-10], ref[10:-10, 10:-10], atol=1e-12)
        assert_allclose(ref, convolve_psf(img[k], psf), atol=1e-12)


def test_single_precision_renderer_and_convolver_match_double():
    # The fitter iterates in float32: images and derivatives within ~1e-5 of the peak of float64.
    from core.fitting.sersic import PSFConvolver, SersicRenderer

    args = (40.3, 38.7, 21.0, 4.0, 3.5, 0.6, 25.0)
    r64 = SersicRenderer((80, 80), 25.0).render(*args, grad=True)
    r32 = SersicRenderer((80, 80), 25.0, dtype=np.float32).render(*args, grad=True)
    assert r32.dtype == np.float32 and r64.dtype == np.float64
    for k in range(8):
        scale = np.abs(r64[k]).max()
        np.testing.assert_allclose(r32[k], r64[k], rtol=0, atol=2e-5 * scale, err_msg=str(k))
    y, x = np.mgrid[:15, :15]
    conv = PSFConvolver(np.exp(-((x - 7) ** 2 + (y - 7) ** 2) / 4.0), (80, 80))
    c64, c32 = conv.convolve_stack(r64), conv.convolve_stack(r32)
    assert c32.dtype == np.float32 and c64.dtype == np.float64
    np.testing.assert_allclose(c32[0], c64[0], rtol=0, atol=2e-6 * c64[0].max())
    with pytest.raises(ValueError, match="float32 or float64"):
        SersicRenderer((8, 8), 25.0, dtype=np.int32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0.2, 1.0, 4.0, 8.0])
def test_gradient_finite_at_a_whole_number_centre(dtype, n):
    """A sample exactly at the centre (a whole-number XC, YC puts a pixel centre there): r = 0.

    float32 flushed the old floor on r² (1e-300) to 0, so log(0) made the derivatives NaN and
    the fitter stopped with "array must not contain infs or NaNs". The derivatives there are the
    limits: 0 for the centre and the shape angles, finite for the rest.
    """
    renderer = SersicRenderer((21, 21), ZP, dtype=dtype)
    stack = renderer.render(11.0, 11.0, 20.0, 3.0, n, 0.7, 30.0, grad=True)
    assert stack.dtype == dtype
    assert np.all(np.isfinite(stack))
    # At the centre the profile is symmetric: no derivative with respect to the position there.
    peak = float(stack[0].max())
    assert abs(float(stack[1, 10, 10])) < 1e-4 * peak and abs(float(stack[2, 10, 10])) < 1e-4 * peak
    # Off the centre pixel the single-precision stack matches the double one.
    ref = SersicRenderer((21, 21), ZP).render(11.0, 11.0, 20.0, 3.0, n, 0.7, 30.0, grad=True)
    assert_allclose(stack[0], ref[0], rtol=1e-4, atol=1e-6 * peak)
