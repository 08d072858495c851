"""The gallery's stamps in sky sigma (app/views/gallery.py), without a server."""

from __future__ import annotations

import base64
import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from app.views.gallery import KEY_HELP, SigmaStretch, in_sigma, render_stamps, robust_sigma


def pixels(uri: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), dtype=int)


def expected(values, cmap="RdBu_r") -> np.ndarray:
    return np.asarray(matplotlib.colormaps[cmap](np.asarray(values, dtype=float), bytes=True))[..., :3].astype(int)


@pytest.mark.parametrize("sigma", [0.003, 1.0, 250.0])
def test_linear_sigma_stretch_maps_known_sigmas_to_the_colour_map(sigma):
    """A stamp of -10, -5, -2.5, 0, 2.5, 5, 10 sigma, shown linear on +-5 sigma: the colours are those of
    the diverging map at 0, 0, 0.25, 0.5, 0.75, 1, 1, whatever the stamp's units (its sigma)."""
    row = np.array([-10.0, -5.0, -2.5, 0.0, 2.5, 5.0, 10.0])
    stamp = np.tile(row * sigma, (3, 1))[None]
    uris, stretch = render_stamps({"residual": stamp}, "linear", sigmas=np.array([sigma]), limit=5.0)
    got = pixels(uris["residual"][0])
    assert got.shape == (3, 7, 3)
    want = expected([0, 0, 0.25, 0.5, 0.75, 1, 1])
    assert np.abs(got[0] - want).max() <= 1
    assert (stretch.method, stretch.limit) == ("linear", 5.0)
    # invert swaps the ends: +5 sigma gets the colour -5 sigma had
    inv = pixels(render_stamps({"residual": stamp}, "linear", invert=True, sigmas=np.array([sigma]))[0]["residual"][0])
    assert np.abs(inv[0] - expected([0, 0, 0.25, 0.5, 0.75, 1, 1], "RdBu")).max() <= 1


def test_pure_noise_looks_like_noise_and_a_strong_residual_stands_out():
    """One shared range in sigma: a noise stamp stays near the middle of the colour map (the old per-stamp
    stretch spread it over the whole range); a 20-sigma feature saturates."""
    rng = np.random.default_rng(0)
    sigma = 0.02
    noise = rng.normal(0, sigma, (50, 50))
    strong = noise.copy()
    strong[20:30, 20:30] += 20 * sigma
    uris, _ = render_stamps({"residual": np.stack([noise, strong])}, "linear", sigmas=np.array([sigma, sigma]))
    red_end, blue_end = expected([1.0])[0], expected([0.0])[0]
    noise_px = pixels(uris["residual"][0]).reshape(-1, 3)
    strong_px = pixels(uris["residual"][1]).reshape(-1, 3)
    saturated = lambda px: (np.abs(px - red_end).sum(axis=1) <= 3) | (np.abs(px - blue_end).sum(axis=1) <= 3)
    assert saturated(noise_px).mean() < 0.001  # |noise| > 5 sigma: essentially never
    assert saturated(strong_px).sum() >= 100  # the 10 x 10 px feature


def test_asinh_and_zscale_stay_symmetric_and_share_one_range():
    stretch = SigmaStretch("asinh", 5.0)
    u = stretch.unit(np.array([-5.0, -1.0, 0.0, 1.0, 5.0]))
    assert u[2] == pytest.approx(0.5) and u[0] == pytest.approx(0.0) and u[4] == pytest.approx(1.0)
    assert u[1] + u[3] == pytest.approx(1.0) and u[3] > 0.6  # faint structure lifted
    rng = np.random.default_rng(1)
    stamps = rng.normal(0, 1, (4, 30, 30)) * np.array([1, 1, 1, 1])[:, None, None]
    _, z = render_stamps({"residual": stamps}, "zscale", sigmas=np.ones(4))
    assert 0.5 < z.limit < 10  # from the zscale of the stamps in sigma: one limit for the page


def test_missing_sigma_is_measured_on_the_stamp():
    rng = np.random.default_rng(2)
    img = rng.normal(0, 3.0, (60, 60))
    assert robust_sigma(img) == pytest.approx(3.0, rel=0.1)
    scaled = in_sigma(img[None], np.array([np.nan]))
    assert np.std(scaled) == pytest.approx(1.0, rel=0.1)


def test_colour_bar_has_ticks_in_sigma():
    bar = SigmaStretch("asinh", 5.0).colorbar()
    labels = [t[1] for t in bar["ticks"]]
    assert labels == ["-5σ", "-3σ", "-1σ", "0", "+1σ", "+3σ", "+5σ"]
    positions = dict((t[1], t[0]) for t in bar["ticks"])
    assert positions["0"] == pytest.approx(0.5, abs=0.01) and positions["-5σ"] == pytest.approx(0.0)
    assert "σ" in bar["title"] and bar["uri"].startswith("data:image/png;base64,")


def test_every_key_of_the_flow_is_listed():
    listed = " ".join(k for k, _ in KEY_HELP)
    for key in ("1–5", "f", "s", "n / p", "Enter", "Esc", "u", "c", "?", "g"):
        assert key in listed
