"""The PSF as the fitter uses it: checked, normalised and centred where the convolution expects it.

:class:`core.fitting.sersic.PSFConvolver` takes the PSF's centre to be the pixel ``(ky // 2,
kx // 2)`` (numpy indices; GALFIT's ``N/2 + 1``, 1-based, for an even size). A PSF whose light is
centred elsewhere shifts every model by that much, and the fitted centre the other way: real PSF
files are often off by a pixel or so (PetroFit's F105W PSF: 1.3 px; GalSim's AEGIS PSFs: 0.7 px).
:func:`prepare_psf`

* rejects a PSF that is not 2-D, has non-finite pixels, or a total that is not positive;
* measures its centre with a Gaussian-weighted ("windowed", as SExtractor's ``XWIN_IMAGE``)
  centroid, which follows the core and not noise or spikes in the wings;
* shifts it by the sub-pixel offset when that is more than ``tol`` px (cubic-spline interpolation,
  :func:`scipy.ndimage.shift`; light shifted past the edge is lost), and reports by how much;
* normalises it to unit sum.

``--psf none`` is :func:`delta_psf`: no convolution (a 1×1 PSF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import ResxError

__all__ = ["PSF_TOL", "PSFError", "PreparedPSF", "delta_psf", "prepare_psf", "psf_centroid"]

#: Offsets (px) up to which a PSF is taken as centred.
PSF_TOL = 0.1


class PSFError(ResxError, ValueError):
    """A PSF the fitter cannot use: not 2-D, non-finite pixels, a total that is not positive."""


@dataclass(frozen=True)
class PreparedPSF:
    """A PSF ready for convolution, and what was done to it.

    Attributes
    ----------
    array : numpy.ndarray
        Unit-sum PSF whose centroid is at ``(ky // 2, kx // 2)`` (within ``tol``).
    dx, dy : float
        Offset of the input PSF's centroid from ``(kx // 2, ky // 2)``, px (+x, +y).
    shifted : bool
        The PSF was shifted by ``(-dx, -dy)``.
    total : float
        The input PSF's sum (before normalisation).
    """

    array: np.ndarray
    dx: float
    dy: float
    shifted: bool
    total: float

    @property
    def offset(self) -> float:
        """``hypot(dx, dy)``, px."""
        return math.hypot(self.dx, self.dy)

    def describe(self) -> str:
        """One line: the offset, whether it was recentred, and the sum it was normalised from."""
        if self.array.shape == (1, 1):
            return "delta function (no PSF)"
        where = (f"centroid off the centre by ({self.dx:+.2f}, {self.dy:+.2f}) px, recentred" if self.shifted
                 else f"centred within {max(abs(self.dx), abs(self.dy)):.2f} px")
        return f"{where}; sum {self.total:.4g} normalised to 1"


def delta_psf() -> np.ndarray:
    """The PSF of ``--psf none``: a single pixel (the model is not convolved)."""
    return np.ones((1, 1))


def _check(psf) -> np.ndarray:
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or psf.size == 0:
        raise PSFError(f"PSF must be a 2-D image, got shape {psf.shape}")
    bad = int(np.size(psf) - np.count_nonzero(np.isfinite(psf)))
    if bad:
        raise PSFError(f"PSF has {bad} non-finite pixels (NaN or inf)")
    total = float(psf.sum())
    if not total > 0:
        raise PSFError(f"PSF must have a positive sum, got {total:g}")
    return psf


def psf_centroid(psf: np.ndarray, max_iter: int = 30) -> tuple[float, float]:
    """The windowed centroid of a PSF, 0-based ``(x, y)``.

    Gaussian-weighted first moments, iterated from the brightest pixel (SExtractor's
    ``XWIN_IMAGE``): the weight's σ is the FWHM / 2.355 estimated from the area above half the
    peak, so the core sets the centre and the wings (noise, spikes, a neighbouring star) hardly do.
    """
    psf = _check(psf)
    ky, kx = psf.shape
    if psf.size == 1:
        return 0.0, 0.0
    jp, ip = np.unravel_index(int(np.argmax(psf)), psf.shape)
    peak = float(psf[jp, ip])
    fwhm = 2.0 * math.sqrt(max(int(np.count_nonzero(psf >= 0.5 * peak)), 1) / math.pi)
    s2 = max(fwhm / 2.3548, 0.5) ** 2
    yy, xx = np.indices(psf.shape, dtype=np.float64)
    x, y = float(ip), float(jp)
    for _ in range(max_iter):
        w = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * s2)) * psf
        tot = w.sum()
        if not tot > 0:
            break
        nx = x + 2.0 * float((w * (xx - x)).sum() / tot)
        ny = y + 2.0 * float((w * (yy - y)).sum() / tot)
        nx, ny = min(max(nx, 0.0), kx - 1.0), min(max(ny, 0.0), ky - 1.0)
        done = abs(nx - x) < 1e-5 and abs(ny - y) < 1e-5
        x, y = nx, ny
        if done:
            break
    return x, y


def prepare_psf(psf: np.ndarray, tol: float | None = PSF_TOL) -> PreparedPSF:
    """Check, recentre and normalise a PSF.

    Parameters
    ----------
    psf : 2-D array
        The PSF image, any normalisation.
    tol : float or None
        Recentre when the centroid is more than ``tol`` px from ``(kx // 2, ky // 2)`` in x or y
        (default :data:`PSF_TOL`); None never recentres (the offset is still measured).

    Returns
    -------
    PreparedPSF

    Raises
    ------
    PSFError
        A PSF that is not 2-D, has non-finite pixels or a total that is not positive.

    Examples
    --------
    >>> y, x = np.mgrid[:15, :15]
    >>> off = np.exp(-((x - 6.4) ** 2 + (y - 7.0) ** 2) / 4.0)
    >>> p = prepare_psf(off)
    >>> round(p.dx, 2), round(p.dy, 2), p.shifted, round(float(p.array.sum()), 6)
    (-0.6, 0.0, True, 1.0)
    """
    psf = _check(psf)
    total = float(psf.sum())
    ky, kx = psf.shape
    if psf.size == 1:
        return PreparedPSF(np.ones((1, 1)), 0.0, 0.0, False, total)
    cx, cy = psf_centroid(psf)
    dx, dy = cx - kx // 2, cy - ky // 2
    shifted = tol is not None and max(abs(dx), abs(dy)) > tol
    if shifted:
        from scipy import ndimage

        psf = ndimage.shift(psf, (-dy, -dx), order=3, mode="constant", cval=0.0)
        if not psf.sum() > 0:
            raise PSFError(f"PSF centroid is {math.hypot(dx, dy):.1f} px off the centre: nothing left "
                           "after recentring it")
    return PreparedPSF(psf / psf.sum(), float(dx), float(dy), bool(shifted), total)
