"""Residual substructure of galaxies, as the classes of the paper's Table 1 describe it.

Each generator returns an image (not PSF-convolved) of *extra* light, normalised to unit total flux,
on the stamp's pixel grid; the simulator scales it by a flux and adds it to the host's Sérsic
profile before the PSF convolution. Geometry follows GALFIT's conventions (as :mod:`core.fitting.sersic`):
centres ``xc, yc`` are 1-based FITS pixel coordinates, ``pa`` is counter-clockwise from +y, and
``ar = b/a``. A disk's own plane is described by the deprojected radius ``rho`` (px along the major
axis) and azimuth ``phi`` measured from the major axis.

Generators:

* General — :func:`spiral_arms` (symmetric m-armed logarithmic spirals), :func:`disk_clumps`
  (star-forming clumps spread over the disk).
* Core — :func:`point_sources` at the centre.
* Asymmetric — :func:`offcentre_clump` (concentrated), :func:`diffuse_lobe` (diffuse, lopsided).
* Peculiar — :func:`tidal_tails`, :func:`point_sources`/:func:`gaussian_blobs` for multiple nuclei,
  plus :func:`diffuse_lobe`.
* Fit quality — :func:`edge_mask` (the mosaic's edge crosses the stamp), :func:`diffraction_spikes`
  (a bright star's spikes).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "diffraction_spikes",
    "diffuse_lobe",
    "disk_clumps",
    "disk_to_image",
    "edge_mask",
    "gaussian_blobs",
    "offcentre_clump",
    "point_sources",
    "spiral_arms",
    "tidal_tails",
]


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """1-based pixel-centre coordinates ``x`` (1, nx) and ``y`` (ny, 1)."""
    ny, nx = shape
    return (np.arange(nx, dtype=np.float64) + 1.0)[None, :], (np.arange(ny, dtype=np.float64) + 1.0)[:, None]


def _normalise(img: np.ndarray) -> np.ndarray:
    total = img.sum()
    return img / total if total > 0 else img


def disk_to_image(rho: np.ndarray, phi: np.ndarray, xc: float, yc: float, ar: float,
                  pa: float) -> tuple[np.ndarray, np.ndarray]:
    """Image positions (1-based x, y) of disk-plane points ``(rho, phi)``.

    ``rho`` is in px along the major axis; ``phi`` in radians from the major axis. The disk is
    seen with axis ratio ``ar`` and position angle ``pa`` (degrees, counter-clockwise from +y).
    """
    t = np.deg2rad(pa)
    u = rho * np.cos(phi)
    v = rho * np.sin(phi) * ar
    return xc - u * np.sin(t) + v * np.cos(t), yc + u * np.cos(t) + v * np.sin(t)


def _disk_coords(shape, xc, yc, ar, pa):
    x, y = _grid(shape)
    t = np.deg2rad(pa)
    dx, dy = x - xc, y - yc
    u = -dx * np.sin(t) + dy * np.cos(t)
    v = (dx * np.cos(t) + dy * np.sin(t)) / ar
    return np.hypot(u, v), np.arctan2(v, u)


def gaussian_blobs(shape: tuple[int, int], xs, ys, sigmas, fluxes) -> np.ndarray:
    """Sum of circular Gaussians (1-based centres ``xs, ys``; ``sigmas`` px; total ``fluxes``).

    Each blob is rendered in a window of ±4σ around its centre and normalised to its flux
    inside the stamp (blobs wholly outside the stamp add nothing). Not normalised overall.
    """
    ny, nx = shape
    img = np.zeros(shape)
    for x0, y0, s, f in zip(np.atleast_1d(xs), np.atleast_1d(ys), np.atleast_1d(sigmas),
                            np.atleast_1d(fluxes)):
        h = int(np.ceil(4.0 * s)) + 1
        i0, i1 = max(int(x0) - h, 0), min(int(x0) + h + 1, nx)
        j0, j1 = max(int(y0) - h, 0), min(int(y0) + h + 1, ny)
        if i0 >= i1 or j0 >= j1:
            continue
        gx = np.exp(-0.5 * ((np.arange(i0, i1) + 1.0 - x0) / s) ** 2)
        gy = np.exp(-0.5 * ((np.arange(j0, j1) + 1.0 - y0) / s) ** 2)
        g = gy[:, None] * gx[None, :]
        # normalise to the analytic total so blobs cut by the edge lose their outside part
        img[j0:j1, i0:i1] += f * g / (2.0 * np.pi * s * s)
    return img


def point_sources(shape: tuple[int, int], xs, ys, fluxes) -> np.ndarray:
    """Point sources deposited by bilinear weights on the four nearest pixels (not normalised).

    After the PSF convolution they are point sources at sub-pixel positions, within the
    (sub-pixel) smoothing of the bilinear deposit.
    """
    ny, nx = shape
    img = np.zeros(shape)
    for x0, y0, f in zip(np.atleast_1d(xs), np.atleast_1d(ys), np.atleast_1d(fluxes)):
        fx, fy = x0 - 1.0, y0 - 1.0  # numpy-index coordinates
        i, j = int(np.floor(fx)), int(np.floor(fy))
        wx, wy = fx - i, fy - j
        for dj, wj in ((0, 1.0 - wy), (1, wy)):
            for di, wi in ((0, 1.0 - wx), (1, wx)):
                if 0 <= j + dj < ny and 0 <= i + di < nx:
                    img[j + dj, i + di] += f * wi * wj
    return img


def spiral_arms(shape: tuple[int, int], xc: float, yc: float, re: float, ar: float, pa: float,
                rng: np.random.Generator, *, n_arms: int | None = None,
                pitch_deg: float | None = None) -> np.ndarray:
    """Symmetric logarithmic spiral arms in an exponential disk (unit flux).

    The arm pattern ``((1 + cos(m (phi - ln(rho / h) / tan(pitch)) + phi0)) / 2) ** p`` modulates an
    exponential disk of scale length ``h = re / 1.678``, with the centre (bulge region,
    ``rho < 0.6 h``) suppressed and the disk truncated beyond ``4 h``.

    Parameters
    ----------
    n_arms : int, optional
        Number of arms (default: 2, or 3 one time in five).
    pitch_deg : float, optional
        Pitch angle (default uniform 12°–30°).
    """
    m = n_arms if n_arms is not None else (3 if rng.random() < 0.2 else 2)
    pitch = np.deg2rad(pitch_deg if pitch_deg is not None else rng.uniform(12.0, 30.0))
    p = rng.uniform(2.5, 6.0)  # arm sharpness
    phi0 = rng.uniform(0.0, 2.0 * np.pi)
    h = re / 1.678
    rho, phi = _disk_coords(shape, xc, yc, ar, pa)
    lr = np.log(np.maximum(rho, 1e-3) / h)
    arm = (0.5 * (1.0 + np.cos(m * (phi - lr / np.tan(pitch)) + phi0))) ** p
    env = np.exp(-rho / h) * (1.0 - np.exp(-((rho / (0.6 * h)) ** 2))) * (rho < 4.0 * h)
    return _normalise(arm * env)


def disk_clumps(shape: tuple[int, int], xc: float, yc: float, re: float, ar: float, pa: float,
                rng: np.random.Generator, *, n_clumps: int | None = None) -> np.ndarray:
    """Star-forming clumps spread over an exponential disk (unit flux).

    Clump radii follow the disk's light (``rho ~ Gamma(2, h)``, kept within 0.3–3 h), azimuths are
    uniform, sizes σ = 0.5–1.3 px (≈ 1 kpc at z ≈ 2, barely resolved at 0.06″/px), fluxes lognormal.
    """
    k = n_clumps if n_clumps is not None else int(rng.integers(3, 9))
    h = re / 1.678
    rho = np.clip(rng.gamma(2.0, h, size=k), 0.3 * h, 3.0 * h)
    phi = rng.uniform(0.0, 2.0 * np.pi, size=k)
    xs, ys = disk_to_image(rho, phi, xc, yc, ar, pa)
    sig = rng.uniform(0.5, 1.3, size=k)
    flux = rng.lognormal(0.0, 0.5, size=k)
    return _normalise(gaussian_blobs(shape, xs, ys, sig, flux))


def offcentre_clump(shape: tuple[int, int], xc: float, yc: float, re: float,
                    rng: np.random.Generator, *, n_clumps: int | None = None) -> np.ndarray:
    """One (sometimes two) concentrated blob(s) off the centre, at 0.8–2.5 re (≥ 4 px) (unit flux)."""
    k = n_clumps if n_clumps is not None else (2 if rng.random() < 0.25 else 1)
    d = np.maximum(rng.uniform(0.8, 2.5, size=k) * re, 4.0)
    ang = rng.uniform(0.0, 2.0 * np.pi, size=k)
    sig = rng.uniform(0.6, 2.0, size=k)
    flux = rng.lognormal(0.0, 0.4, size=k)
    return _normalise(gaussian_blobs(shape, xc + d * np.cos(ang), yc + d * np.sin(ang), sig, flux))


def diffuse_lobe(shape: tuple[int, int], xc: float, yc: float, re: float,
                 rng: np.random.Generator) -> np.ndarray:
    """A diffuse elliptical Gaussian lobe offset from the centre, making the galaxy lopsided (unit flux).

    Size σ_major = 0.4–1 re (≥ 1.5 px), axis ratio 0.35–1, offset 0.8–2 re (re ≥ 2.5 px) in a random
    direction.
    """
    s_major = max(rng.uniform(0.4, 1.0) * re, 1.5)
    q = rng.uniform(0.35, 1.0)
    theta = rng.uniform(0.0, np.pi)
    d = rng.uniform(0.8, 2.0) * max(re, 2.5)
    ang = rng.uniform(0.0, 2.0 * np.pi)
    x, y = _grid(shape)
    dx, dy = x - (xc + d * np.cos(ang)), y - (yc + d * np.sin(ang))
    a = dx * np.cos(theta) + dy * np.sin(theta)
    b = -dx * np.sin(theta) + dy * np.cos(theta)
    return _normalise(np.exp(-0.5 * ((a / s_major) ** 2 + (b / (q * s_major)) ** 2)))


def tidal_tails(shape: tuple[int, int], xc: float, yc: float, re: float,
                rng: np.random.Generator, *, n_tails: int | None = None) -> np.ndarray:
    """Curved tidal tails leaving the galaxy (unit flux).

    Each tail is a chain of Gaussians along a curve that starts at ~0.7 re, reaches 2.5–6 re
    (8–45 px), curls by 0.5–1.8 rad, widens from σ ≈ 0.8 to 1.8 px, and fades as ``exp(-1.5 t)``
    along its length. A second tail, when present, leaves on the opposite side with the same sense
    of rotation (as in an interacting pair).
    """
    k = n_tails if n_tails is not None else (2 if rng.random() < 0.5 else 1)
    phi0 = rng.uniform(0.0, 2.0 * np.pi)
    curl = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.8)
    xs, ys, ss, fs = [], [], [], []
    for i in range(k):
        length = np.clip(rng.uniform(2.5, 6.0) * re, 8.0, 45.0)
        rho0 = 0.7 * re
        npts = int(np.clip(length, 15, 60))
        t = np.linspace(0.0, 1.0, npts)
        rho = rho0 + length * t
        phi = phi0 + i * np.pi + rng.normal(0.0, 0.3) * i + curl * t
        xs.append(xc + rho * np.cos(phi))
        ys.append(yc + rho * np.sin(phi))
        ss.append(0.8 + 1.0 * t * rng.uniform(0.6, 1.0))
        fs.append(np.exp(-1.5 * t) * (rng.uniform(0.5, 1.0) if i else 1.0))
    return _normalise(gaussian_blobs(shape, np.concatenate(xs), np.concatenate(ys),
                                     np.concatenate(ss), np.concatenate(fs)))


def edge_mask(shape: tuple[int, int], xc: float, yc: float, rng: np.random.Generator, *,
              distance: float | None = None) -> np.ndarray:
    """Pixels beyond the edge of the survey mosaic: a half-plane ``distance`` px from the centre.

    The edge runs at a random angle (mosaic tiles are rotated on the sky), 5–25 px from the galaxy
    centre by default so that it cuts into the galaxy's outskirts. Returns a boolean mask, True
    where there is no data.
    """
    d = distance if distance is not None else rng.uniform(5.0, 25.0)
    ang = rng.uniform(0.0, 2.0 * np.pi)
    x, y = _grid(shape)
    return ((x - xc) * np.cos(ang) + (y - yc) * np.sin(ang)) > d


def diffraction_spikes(shape: tuple[int, int], x0: float, y0: float, flux: float,
                       angle_deg: float = 0.0, fraction: float = 0.01) -> np.ndarray:
    """Four diffraction spikes of a star at ``(x0, y0)`` carrying ``fraction`` of its ``flux``.

    HST's secondary-mirror spider makes four spikes at right angles; their surface brightness
    falls as ``r**-2`` along a ~1 px wide line. Not PSF-convolved (convolving smooths them across).
    """
    x, y = _grid(shape)
    t = np.deg2rad(angle_deg)
    dx, dy = x - x0, y - y0
    a = dx * np.cos(t) + dy * np.sin(t)
    b = -dx * np.sin(t) + dy * np.cos(t)
    img = np.zeros(shape)
    for along, across in ((a, b), (b, a)):
        r = np.abs(along)
        img += np.exp(-0.5 * (across / 0.6) ** 2) * (r > 2.0) / np.maximum(r, 2.0) ** 2
    return flux * fraction * _normalise(img)
