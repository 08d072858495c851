"""SPF, Bumpiness, RFF and the sky fit against values worked out by hand (paper §3.3)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from core.prep.metrics import (
    METRIC_COLUMNS,
    MetricError,
    ResidualMetrics,
    bumpiness,
    fit_sky_gaussian,
    rff,
    spf_parts,
)


def test_sky_fit_recovers_gaussian_and_ignores_sources():
    rng = np.random.default_rng(1)
    sky = rng.normal(0.3, 2.0, 20000)
    mu, sigma = fit_sky_gaussian(sky)
    assert_allclose([mu, sigma], [0.3, 2.0], atol=0.05)
    # 3 % bright source pixels left in the mask inflate the plain std but not the fitted width
    dirty = np.concatenate([sky, rng.uniform(20, 60, 600)])
    assert np.std(dirty) > 4
    assert_allclose(fit_sky_gaussian(dirty)[1], 2.0, rtol=0.05)


def test_sky_fit_failures_raise():
    with pytest.raises(MetricError, match="sky pixels"):
        fit_sky_gaussian(np.ones(10))
    with pytest.raises(MetricError, match="constant"):
        fit_sky_gaussian(np.ones(1000))


def test_spf_by_hand():
    res = np.array([[5.0, 4.0, -4.0], [2.9, -2.9, 0.0], [100.0, 1.0, -7.0]])
    goi = np.ones_like(res, bool)
    goi[2, 0] = False  # outside the GOI: must not count
    pos, neg = spf_parts(res, goi, mu=0.0, sigma=1.0)
    assert pos == 9.0  # 5 + 4
    assert neg == -11.0  # -4 - 7
    # bounds are mu +/- 3 sigma = [-2, 4] for mu = 1: 4 drops out, -2.9 comes in
    pos, neg = spf_parts(res, goi, mu=1.0, sigma=1.0)
    assert pos == 5.0
    assert_allclose(neg, -4 - 2.9 - 7)


def test_bumpiness_by_hand():
    # constant residual c: the 3x3 boxcar leaves it at c; B = sqrt(c^2 - s^2) / mean(model)
    res = np.full((5, 5), 5.0)
    goi = np.zeros((5, 5), bool)
    goi[1:4, 1:4] = True
    model = np.full((5, 5), 2.0)
    assert_allclose(bumpiness(res, model, goi, sigma=3.0), np.sqrt(25 - 9) / 2)
    # residual below the noise: signed, -sqrt(|.|)
    assert_allclose(bumpiness(np.full((5, 5), 3.0), model, goi, sigma=5.0), -4 / 2)
    # a single spike of 9 is spread over 3x3 -> 1 at the centre (GOI = centre pixel)
    spike = np.zeros((5, 5))
    spike[2, 2] = 9.0
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    assert_allclose(bumpiness(spike, np.full((5, 5), 0.5), one, sigma=0.0), 1.0 / 0.5)
    # GOI = the 3x3 around the spike: every smoothed pixel there is 1, the mean of R_s^2 is 1
    assert_allclose(bumpiness(spike, model, goi, sigma=0.0), 1.0 / 2.0)


def test_rff_by_hand():
    res = np.array([[1.0, 2.0], [3.0, -1.0]])
    model = np.array([[4.0, 3.0], [2.0, 1.0]])
    goi = np.ones((2, 2), bool)
    assert_allclose(rff(res, model, goi, sigma=0.5), (7 - 0.8 * 4 * 0.5) / 10)  # |R|: the default
    assert_allclose(rff(res, model, goi, sigma=0.5, absolute=False), (5 - 0.8 * 4 * 0.5) / 10)
    with pytest.raises(MetricError):
        rff(res, np.zeros((2, 2)), goi, 0.5)


def test_rff_of_pure_noise_is_zero_with_abs_r_and_negative_signed():
    # E|N(0, sigma)| = sqrt(2/pi) sigma ~ 0.80 sigma: the |R| form subtracts exactly the noise
    rng = np.random.default_rng(7)
    sigma, n = 0.5, 200_000
    res = rng.normal(0, sigma, (1, n))
    model = np.ones((1, n))
    goi = np.ones((1, n), bool)
    assert abs(rff(res, model, goi, sigma)) < 0.005
    assert_allclose(rff(res, model, goi, sigma, absolute=False), -0.8 * sigma, atol=0.005)


def test_model_normalised_spf():
    res = np.zeros((10, 10))
    res[5, 5], res[4, 4] = 6.0, -4.0
    goi = np.zeros((10, 10), bool)
    goi[3:7, 3:7] = True
    model = np.full((10, 10), 0.5)  # 16 GOI pixels: sum S = 8
    m = ResidualMetrics(res + np.random.default_rng(0).normal(0, 0.1, res.shape) * ~goi, model, goi, ~goi)
    d = m.as_dict()
    assert_allclose(d["goi_model_flux"], 8.0)
    assert_allclose(d["spf"], 10.0)
    assert_allclose(d["spf_norm"], 10.0 / 8.0)


def test_residual_metrics_share_the_sky_fit():
    rng = np.random.default_rng(3)
    res = rng.normal(0, 1.0, (60, 60))
    goi = np.zeros((60, 60), bool)
    goi[25:35, 25:35] = True
    res[30, 30] = 10.0
    res[28, 28] = -8.0
    model = np.ones((60, 60))
    m = ResidualMetrics(res, model, goi, ~goi)
    d = m.as_dict()
    assert set(d) == set(METRIC_COLUMNS)
    mu, sigma = m.sky_fit
    assert_allclose(sigma, 1.0, rtol=0.1)
    pos, neg = spf_parts(res, goi, mu, sigma)
    assert pos >= 10 and neg <= -8
    assert_allclose(d["spf"], pos - neg)
    assert_allclose(d["spf_pos"], pos)
    assert_allclose(d["rff"], rff(res, model, goi, sigma))
    assert_allclose(d["bumpiness"], bumpiness(res, model, goi, sigma))
    assert m.flags == []


def test_failures_become_flags_not_exceptions():
    res = np.zeros((20, 20))
    goi = np.zeros((20, 20), bool)
    goi[8:12, 8:12] = True
    res[goi] = 1.0
    m = ResidualMetrics(res, np.ones((20, 20)), goi, ~goi)  # constant sky: no fit
    d = m.as_dict()
    assert d.pop("goi_model_flux") == 16.0  # needs no sky
    assert all(np.isnan(v) for v in d.values())
    assert any("sky fit" in f for f in m.flags)
    empty = ResidualMetrics(res, np.ones((20, 20)), np.zeros((20, 20), bool), ~goi)
    assert all(np.isnan(v) for v in empty.as_dict().values())
    assert "empty GOI" in "; ".join(empty.flags)
