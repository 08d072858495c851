"""The CvAE evaluation's numbers against hand-computed values (a stub model, no training)."""

import numpy as np
import pytest

from core.learn.evaluate import evaluate_cvae, reconstruction_warning


class _Half:
    """A 'CvAE' that reconstructs every stamp as half of itself, with a unit-Gaussian posterior."""

    kl_reduction = "mean"

    def __init__(self):
        self.encoder = _Encoder()

    def predict(self, xb, batch_size=None, verbose=0):
        return xb * 0.5


class _Encoder:
    def predict(self, xb, batch_size=None, verbose=0):
        n = len(xb)
        return np.zeros((n, 4), "float32"), np.zeros((n, 4), "float32"), np.zeros((n, 4), "float32")


def test_recon_mse_ratio_against_the_trivial_reconstruction():
    model = _Half()
    x = np.full((3, 2, 2), 2.0, dtype="float32")
    x[1] = -4.0
    ev, rec = evaluate_cvae(model, x)
    # error = x / 2: squares 1, 4, 1 per pixel -> 2; the zero reconstruction's MSE = mean(x^2) = (4+16+4)/3 = 8
    assert ev["recon_mse"] == pytest.approx(2.0)
    assert ev["recon_mse_zero"] == pytest.approx(8.0)
    assert ev["recon_mse_ratio"] == pytest.approx(0.25)
    assert ev["kl"] == pytest.approx(0.0)  # N(0, 1) posterior
    assert rec.shape == x.shape and rec[1, 0, 0] == pytest.approx(-2.0)


def test_empty_test_set_gives_none_not_nan():
    model = _Half()
    ev, _ = evaluate_cvae(model, np.zeros((0, 2, 2), "float32"))
    assert ev["recon_mse"] is None and ev["recon_mse_zero"] is None and ev["recon_mse_ratio"] is None


def test_reconstruction_warning_only_near_the_trivial_solution():
    assert reconstruction_warning(None) is None and reconstruction_warning(float("nan")) is None
    assert reconstruction_warning(0.25) is None and reconstruction_warning(0.979) is None
    w = reconstruction_warning(0.999)
    assert w is not None and "0.999" in w and "trivial" in w
