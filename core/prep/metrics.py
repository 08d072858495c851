"""Residual strength metrics (paper §3.3): sky noise from a Gaussian fit, SPF, Bumpiness, RFF.

The measurements of one galaxy share the sky fit and the GOI mask, so they live on one object,
:class:`ResidualMetrics`, whose properties are computed once and cached (after statmorph's
``SourceMorphology``). A measurement that cannot be made is NaN and adds a message to
:attr:`ResidualMetrics.flags` instead of raising, so one bad galaxy never stops a survey.

Definitions (``R`` the residual, ``S`` the Sérsic model, sums over the GOI pixels, ``N`` their
number, ``mu, sigma`` the centre and width of the Gaussian fitted to the sky-pixel histogram):

* SPF (eq. 1) ``= sum |R|`` over GOI pixels outside ``[mu - 3 sigma, mu + 3 sigma]``;
  ``spf_pos`` is the sum of ``R`` over the pixels above the upper bound, ``spf_neg`` the sum of
  ``R`` below the lower bound (a negative number, as the paper's "-3.73 e/s"), so
  ``spf = spf_pos - spf_neg``.
* Bumpiness (eq. 2) ``= sqrt(mean(R_s**2 - sigma**2)) / mean(S)``, ``R_s`` = ``R`` smoothed by a
  3x3 boxcar (:func:`scipy.ndimage.uniform_filter`, computed on the whole image so pixels at the
  GOI border see their real neighbours). Where ``mean(R_s**2 - sigma**2) < 0`` (a residual
  consistent with noise — a 3x3 boxcar lowers white-noise variance nine-fold, so clean residuals
  often land there) eq. 2 is undefined; we return ``-sqrt(|.|) / mean(S)``, which keeps the
  ordering, and the catalog user can clip at 0.
* RFF (eq. 3) ``= (sum |R| - 0.8 * N * sigma) / sum S`` by default, as Hoyos et al. (2012), whom
  the paper cites for it: the 0.8 is ``E|noise| / sigma = sqrt(2/pi)``, the expected *absolute*
  residual of pure noise, so only ``|R|`` makes the numerator zero for a noise-only residual.
  The paper's eq. 3 prints ``R`` (signed); with it nearly every real galaxy gets a negative RFF
  (the noise term is subtracted from a sum in which noise cancels) and strong residuals with
  over- and under-subtracted parts rank below smooth ones. ``rff_absolute=False`` (config
  ``prep.rff_absolute = false``) gives the signed form.
* Model-normalised: ``goi_model_flux = sum S`` over the GOI (image units) and
  ``spf_norm = spf / goi_model_flux`` (dimensionless), so galaxies from images in different units
  or depths compare. Bumpiness and RFF are already ratios to the model.

Units: ``sky_sigma``, ``spf``, ``spf_pos``, ``spf_neg`` and ``goi_model_flux`` are in the image's
units (the block's ``BUNIT``, e.g. e-/s per pixel; recorded per galaxy in the catalog's ``bunit``);
``spf_norm``, ``bumpiness`` and ``rff`` are dimensionless. :data:`METRIC_DOCS` holds each column's
description and whether it is in image units (the catalog's column metadata).

The metrics are computed over the GOI on the full stamp (the GALFIT image), not only on the
cutout, so that a large galaxy's light outside the 50x50 cutout still counts.
"""

from __future__ import annotations

import logging
import warnings
from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.optimize import curve_fit

from core.errors import ResxError

log = logging.getLogger(__name__)

METRIC_COLUMNS: tuple[str, ...] = ("sky_sigma", "spf", "spf_pos", "spf_neg", "bumpiness", "rff",
                                   "goi_model_flux", "spf_norm")
"""Catalog columns written by :meth:`ResidualMetrics.as_dict`."""

#: Description of each metric column and whether it is in the image's units (else dimensionless).
METRIC_DOCS: dict[str, tuple[str, bool]] = {
    "sky_sigma": ("sigma of the Gaussian fitted to the residual's sky-pixel histogram (native pixels)", True),
    "spf": ("significant pixel flux (eq. 1): sum of |R| over GOI pixels beyond +/-3 sigma_sky", True),
    "spf_pos": ("sum of R over GOI pixels above +3 sigma_sky", True),
    "spf_neg": ("sum of R over GOI pixels below -3 sigma_sky (<= 0)", True),
    "bumpiness": ("Bumpiness (eq. 2), signed where its radicand is negative", False),
    "rff": ("residual flux fraction (eq. 3) with |R| (Hoyos et al. 2012) unless prep.rff_absolute = false", False),
    "goi_model_flux": ("sum of the Sersic model (sky removed) over the GOI segment", True),
    "spf_norm": ("spf / goi_model_flux: SPF comparable across images", False),
}


class MetricError(ResxError, ValueError):
    """A measurement that cannot be made for this galaxy (recorded as a flag)."""


def _gauss(x: np.ndarray, amp: float, mu: float, sigma: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((x - mu) / sigma) ** 2)


def fit_sky_gaussian(sky_pixels: np.ndarray, nbins: int | None = None, min_pixels: int = 25) -> tuple[float, float]:
    """Centre and width of a Gaussian fitted to the histogram of sky pixels.

    The histogram spans ``median +/- 5 * sigma_MAD`` (so the fit is robust to a few sources left in
    the sky mask) with ``nbins`` bins (default ``sqrt(n)`` clipped to 20..200); the Gaussian
    ``A exp(-(x - mu)^2 / 2 sigma^2)`` is fitted to the counts by least squares
    (:func:`scipy.optimize.curve_fit`), starting from the median and the MAD-based width.

    Parameters
    ----------
    sky_pixels : numpy.ndarray
        Values of the source-free pixels (any shape; non-finite values are ignored).
    nbins : int, optional
        Number of histogram bins.
    min_pixels : int
        Fewer usable pixels raise :class:`MetricError`.

    Returns
    -------
    mu, sigma : float
        Fitted centre and (positive) width, in the image's units.

    Raises
    ------
    MetricError
        Too few pixels, a constant sky, or a fit that does not converge.
    """
    x = np.asarray(sky_pixels, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < min_pixels:
        raise MetricError(f"only {x.size} sky pixels (< {min_pixels}) for the sky-noise fit")
    med = float(np.median(x))
    mad_sigma = 1.4826 * float(np.median(np.abs(x - med)))
    if not mad_sigma > 0:
        mad_sigma = float(np.std(x))
    if not mad_sigma > 0:
        raise MetricError("the sky pixels are constant: no noise to fit")
    if nbins is None:
        nbins = int(np.clip(np.sqrt(x.size), 20, 200))
    counts, edges = np.histogram(x, bins=nbins, range=(med - 5 * mad_sigma, med + 5 * mad_sigma))
    centres = 0.5 * (edges[1:] + edges[:-1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, _ = curve_fit(_gauss, centres, counts, p0=(counts.max(), med, mad_sigma), maxfev=2000)
    except (RuntimeError, ValueError) as exc:
        raise MetricError(f"sky-noise Gaussian fit failed: {exc}") from exc
    mu, sigma = float(popt[1]), abs(float(popt[2]))
    if not (np.isfinite(mu) and np.isfinite(sigma) and sigma > 0):
        raise MetricError(f"sky-noise Gaussian fit gave mu={mu}, sigma={sigma}")
    return mu, sigma


def spf_parts(residual: np.ndarray, goi: np.ndarray, mu: float, sigma: float, nsigma: float = 3.0) -> tuple[float, float]:
    """Positive and negative parts of the significant pixel flux (eq. 1).

    Returns
    -------
    pos, neg : float
        ``sum R`` over GOI pixels with ``R > mu + nsigma*sigma`` (>= 0), and over those with
        ``R < mu - nsigma*sigma`` (<= 0). SPF = ``pos - neg``.
    """
    r = np.asarray(residual, dtype=np.float64)[np.asarray(goi, dtype=bool)]
    hi, lo = mu + nsigma * sigma, mu - nsigma * sigma
    return float(r[r > hi].sum()), float(r[r < lo].sum())


def bumpiness(residual: np.ndarray, model: np.ndarray, goi: np.ndarray, sigma: float, box: int = 3) -> float:
    """Bumpiness (eq. 2; signed where its radicand is negative, see the module docstring)."""
    goi = np.asarray(goi, dtype=bool)
    smooth = ndimage.uniform_filter(np.asarray(residual, dtype=np.float64), size=box, mode="reflect")
    radicand = float(np.mean(smooth[goi] ** 2 - sigma**2))
    mean_model = float(np.mean(np.asarray(model, dtype=np.float64)[goi]))
    if mean_model == 0:
        raise MetricError("the model is zero over the GOI: Bumpiness undefined")
    return float(np.sign(radicand) * np.sqrt(abs(radicand)) / mean_model)


def rff(residual: np.ndarray, model: np.ndarray, goi: np.ndarray, sigma: float, absolute: bool = True) -> float:
    """Residual flux fraction (eq. 3) over the GOI: ``(sum |R| - 0.8 N sigma) / sum S``.

    Parameters
    ----------
    residual, model : numpy.ndarray
        ``R`` and the Sérsic model ``S`` (sky removed).
    goi : numpy.ndarray of bool
        The GOI mask (``N`` pixels).
    sigma : float
        The sky noise.
    absolute : bool
        Sum ``|R|`` (default; Hoyos et al. 2012) or the signed ``R`` (the paper's eq. 3 as printed).

    Examples
    --------
    >>> r = np.array([[1.0, -1.0]]); s = np.array([[2.0, 2.0]]); g = np.ones((1, 2), bool)
    >>> rff(r, s, g, 0.5), rff(r, s, g, 0.5, absolute=False)
    (0.3, -0.2)
    """
    goi = np.asarray(goi, dtype=bool)
    r = np.asarray(residual, dtype=np.float64)[goi]
    s = float(np.asarray(model, dtype=np.float64)[goi].sum())
    if s == 0:
        raise MetricError("the model is zero over the GOI: RFF undefined")
    num = (np.abs(r).sum() if absolute else r.sum()) - 0.8 * goi.sum() * sigma
    return float(num / s)


class ResidualMetrics:
    """SPF, Bumpiness and RFF of one galaxy; shared pieces computed once, failures as flags.

    Parameters
    ----------
    residual, model : numpy.ndarray
        The GALFIT residual and the Sérsic model (sky component removed), same 2-D shape.
    goi : numpy.ndarray of bool
        The galaxy-of-interest mask.
    sky : numpy.ndarray of bool
        The source-free (sky) mask.
    rff_absolute : bool
        Sum ``|R|`` in RFF (default; Hoyos et al. 2012) instead of the signed ``R`` (paper eq. 3 as
        printed).

    Attributes
    ----------
    flags : list of str
        Why a measurement is NaN.
    """

    def __init__(self, residual, model, goi, sky, *, rff_absolute: bool = True, nsigma: float = 3.0, box: int = 3):
        self.residual = np.asarray(residual, dtype=np.float64)
        self.model = np.asarray(model, dtype=np.float64)
        self.goi = np.asarray(goi, dtype=bool)
        self.sky = np.asarray(sky, dtype=bool)
        self.rff_absolute = rff_absolute
        self.nsigma = nsigma
        self.box = box
        self.flags: list[str] = []

    def _guard(self, name: str, func):
        try:
            return func()
        except MetricError as exc:
            self.flags.append(f"{name}: {exc}")
        except Exception as exc:  # noqa: BLE001 — a survey must go on; the flag says what happened
            self.flags.append(f"{name}: unexpected {type(exc).__name__}: {exc}")
        return (np.nan, np.nan) if name in ("sky fit", "spf") else np.nan

    @cached_property
    def sky_fit(self) -> tuple[float, float]:
        """``(mu, sigma)`` of the Gaussian fitted to the sky-pixel histogram (NaN if it failed)."""
        return self._guard("sky fit", lambda: fit_sky_gaussian(self.residual[self.sky]))

    @property
    def sky_sigma(self) -> float:
        return self.sky_fit[1]

    @cached_property
    def _spf(self) -> tuple[float, float]:
        mu, sigma = self.sky_fit
        if not np.isfinite(sigma):
            return (np.nan, np.nan)
        return self._guard("spf", lambda: spf_parts(self.residual, self.goi, mu, sigma, self.nsigma))

    @property
    def spf_pos(self) -> float:
        return self._spf[0]

    @property
    def spf_neg(self) -> float:
        return self._spf[1]

    @property
    def spf(self) -> float:
        return self._spf[0] - self._spf[1]

    @cached_property
    def bumpiness(self) -> float:
        if not np.isfinite(self.sky_sigma):
            return np.nan
        return self._guard("bumpiness", lambda: bumpiness(self.residual, self.model, self.goi, self.sky_sigma, self.box))

    @cached_property
    def rff(self) -> float:
        if not np.isfinite(self.sky_sigma):
            return np.nan
        return self._guard("rff", lambda: rff(self.residual, self.model, self.goi, self.sky_sigma, self.rff_absolute))

    @cached_property
    def goi_model_flux(self) -> float:
        """Sum of the model over the GOI (image units)."""
        return float(self.model[self.goi].sum())

    @property
    def spf_norm(self) -> float:
        """SPF over the GOI's model flux (NaN when that is not positive)."""
        flux = self.goi_model_flux
        return self.spf / flux if flux > 0 else np.nan

    def as_dict(self) -> dict[str, float]:
        """Every metric keyed by its catalog column (:data:`METRIC_COLUMNS`)."""
        if not self.goi.any():
            self.flags.append("metrics: empty GOI")
            return {c: np.nan for c in METRIC_COLUMNS}
        return {c: float(getattr(self, c)) for c in METRIC_COLUMNS}
