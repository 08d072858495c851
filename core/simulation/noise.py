"""Noise of drizzled HST imaging: correlated sky noise and the Poisson noise of sources.

Drizzling (Fruchter & Hook 2002) spreads each input pixel over several output pixels, so the noise
of a drizzled mosaic is correlated between neighbouring pixels: the rms of one pixel is smaller than
the noise of a sum of many pixels would suggest. Casertano et al. (2000, eq. A21) give the ratio
``R`` of the true noise of a large aperture to the naive ``sigma_pix * sqrt(npix)``: with
``r = pixfrac / scale`` (``scale`` = output / input pixel size),

* ``R = r / (1 - 1 / (3 r))`` for ``r >= 1``,
* ``R = 1 / (1 - r / 3)`` for ``r < 1``.

CANDELS WFC3/IR mosaics (Koekemoer et al. 2011): native 0.128"/px drizzled to 0.06"/px with
``pixfrac = 0.8``, so ``r = 1.71`` and ``R ≈ 2.1``. We reproduce this with white noise convolved by
a separable 3×3 kernel ``[a, 1, a] ⊗ [a, 1, a]`` whose ``a`` gives the same ``R``, and renormalise
the kernel (unit sum of squares) so the per-pixel rms is the requested one.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi

__all__ = [
    "casertano_ratio",
    "correlated_noise",
    "drizzle_kernel",
    "kernel_ratio",
    "source_rms",
]


def casertano_ratio(pixfrac: float = 0.8, scale: float = 0.06 / 0.128) -> float:
    """Noise-correlation ratio ``R`` of a drizzled image (Casertano et al. 2000, eq. A21).

    Parameters
    ----------
    pixfrac : float
        Drizzle drop size as a fraction of the input pixel.
    scale : float
        Output pixel size over input pixel size.

    Returns
    -------
    float
        ``R >= 1``: true large-aperture noise over ``sigma_pix * sqrt(npix)``.

    Examples
    --------
    >>> round(casertano_ratio(0.8, 0.06 / 0.128), 2)
    2.11
    """
    r = pixfrac / scale
    if r >= 1.0:
        return float(r / (1.0 - 1.0 / (3.0 * r)))
    return float(1.0 / (1.0 - r / 3.0))


def kernel_ratio(kernel: np.ndarray) -> float:
    """``R`` of white noise convolved with ``kernel``: ``sum(k) / sqrt(sum(k**2))``."""
    k = np.asarray(kernel, dtype=np.float64)
    return float(k.sum() / np.sqrt((k * k).sum()))


def drizzle_kernel(pixfrac: float = 0.8, scale: float = 0.06 / 0.128) -> np.ndarray:
    """Separable 3×3 kernel whose correlated noise has the Casertano ratio of a drizzle.

    Solves ``(1 + 2a)**2 / (1 + 2 a**2) = R`` for the 1-D weight ``a`` (``R`` per axis is
    ``sqrt(R_2d)``), and normalises the kernel to a unit sum of squares so that convolving unit
    white noise keeps a unit per-pixel rms.

    Returns
    -------
    numpy.ndarray
        (3, 3) float64 kernel.
    """
    r1 = np.sqrt(casertano_ratio(pixfrac, scale))
    # (1 + 2a)^2 = r1^2 (1 + 2a^2)  ->  (4 - 2 r1^2) a^2 + 4 a + (1 - r1^2) = 0
    qa, qb, qc = 4.0 - 2.0 * r1 * r1, 4.0, 1.0 - r1 * r1
    if abs(qa) < 1e-12:
        a = -qc / qb
    else:
        a = (-qb + np.sqrt(qb * qb - 4.0 * qa * qc)) / (2.0 * qa)
    k1 = np.array([a, 1.0, a])
    k = np.outer(k1, k1)
    return k / np.sqrt((k * k).sum())


def correlated_noise(shape: tuple[int, int], sigma: float | np.ndarray, rng: np.random.Generator,
                     kernel: np.ndarray | None = None) -> np.ndarray:
    """Gaussian noise with per-pixel rms ``sigma`` and the pixel correlation of ``kernel``.

    White noise (scaled by ``sigma``, which may be a map of the local rms) is convolved with the
    kernel (unit sum of squares, see :func:`drizzle_kernel`); the image is drawn with a margin so
    that the edges are correlated like the interior.

    Parameters
    ----------
    shape : (ny, nx)
    sigma : float or array of ``shape``
        Per-pixel rms.
    rng : numpy.random.Generator
    kernel : (k, k) array, optional
        Default :func:`drizzle_kernel` ``()``.

    Returns
    -------
    numpy.ndarray
        float64 noise image of ``shape``.
    """
    k = drizzle_kernel() if kernel is None else np.asarray(kernel, dtype=np.float64)
    k = k / np.sqrt((k * k).sum())
    m = k.shape[0] // 2
    ny, nx = shape
    white = rng.standard_normal((ny + 2 * m, nx + 2 * m))
    sig = np.asarray(sigma, dtype=np.float64)
    if sig.ndim == 2:
        sig = np.pad(sig, m, mode="edge")
    out = ndi.convolve(white * sig, k, mode="constant")
    return out[m:m + ny, m:m + nx] if m else out


def source_rms(image: np.ndarray, exptime: float) -> np.ndarray:
    """Per-pixel Poisson rms of a source image in e⁻/s observed for ``exptime`` seconds.

    Returns ``sqrt(max(image, 0) / exptime)`` (the Gaussian limit of Poisson noise); combine it in
    quadrature with the sky rms and pass the result to :func:`correlated_noise` as ``sigma``.
    """
    return np.sqrt(np.clip(image, 0.0, None) / float(exptime))
