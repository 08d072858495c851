"""Fit one PSF-convolved Sérsic profile plus a flat sky to a galaxy image, as GALFIT does.

The fit is a bounded trust-region least-squares fit (:func:`scipy.optimize.least_squares`,
``method="trf"``) of ``(XC, YC, MAG, RE, N, AR, PA, SKY)`` in GALFIT's conventions (see
:mod:`core.fitting.sersic`). What it does for one image:

1. Non-finite pixels and the user's mask are excluded. The PSF is checked, recentred when its
   centroid is off the array's centre, and normalised (:func:`core.fitting.psf.prepare_psf`).
2. The sky level and rms are estimated from sigma-clipped pixels, sources are detected with SEP
   (or taken from the given segmentation map), and the galaxy of interest (GOI) is the source
   nearest the target (``target``, else ``init["XC"], init["YC"]``, else the image centre), a
   source being at its light's peak and at its segment's centroid, whichever is nearer
   (:func:`core.segmentation.sources_near`). When no source lies within
   ``target_radius`` px of the target, the image is not fitted (:class:`SersicFitError`): the
   fit would settle on whatever lies nearby and look fine. Every other segment, grown by
   ``mask_grow`` pixels, is masked; the GOI and the sky are fitted.
3. Initial values come from the GOI's light moments (centroid, axis ratio, orientation), its
   half-light radius, its concentration ``r90/r50`` (mapped to a Sérsic index) and its flux.
4. The fit runs in a box around the galaxy (the whole stamp for a typical 100×100 stamp of a
   resolved galaxy); the model is rendered on the box plus a margin, convolved by FFT with the
   PSF's transform computed once, and compared with the data weighted by the noise map (the
   sky rms where none is given). Derivatives are analytic (rendered with the model and
   convolved in the same FFT call). The optimiser's models and derivatives are computed in
   float32 (about twice as fast; ~1e-6 of the peak), the returned model in float64. When ``init``
   gives all seven Sérsic parameters, the moment-based guess (3.) is skipped.
5. Errors are the square roots of the diagonal of the covariance ``(JᵀJ)⁻¹ × χ²_ν``. A parameter
   at one of its bounds (within 0.1 % of it), or every free parameter of a fit that did not
   converge, is flagged ``"problem"`` (GALFIT's ``*value*``); a parameter held with ``fixed=`` is
   ``"fixed"``.
6. What makes the fit one not to trust as it is goes into :attr:`SersicFit.flags`
   (:data:`FIT_FLAGS`), each with a sentence in :attr:`SersicFit.notes`: a parameter at its
   bound (``n_at_bound``, ``re_at_bound``, ``ar_at_bound``, ``mag_at_bound``, ``centre_at_box``),
   ``not_converged``, an Rₑ beyond the fitted region's half-width (``re_beyond_box``: half the
   model's light, and so Rₑ, n and the total magnitude, are an extrapolation), an n or Rₑ whose
   error exceeds :data:`MAX_REL_ERROR` of its value (``poorly_constrained``), a fitted centre in
   a masked pixel (``centre_in_mask``: a neighbour or a bad pixel) or off the image
   (``centre_off_image``), farther than ``target_radius`` from the target
   (``centre_off_target``), or a second source within ``target_radius`` of it
   (``ambiguous_target``).

The returned model (:attr:`SersicFit.model`), like GALFIT's model HDU, **includes the sky**, so the
residual GALFIT would write is ``image - model`` (:attr:`SersicFit.residual`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sep
from astropy.stats import mad_std
from scipy import ndimage
from scipy.optimize import least_squares
from scipy.special import gammaincinv
from threadpoolctl import ThreadpoolController

from core.errors import ResxError
from core.fitting.psf import PSF_TOL, PreparedPSF, PSFError, prepare_psf
from core.fitting.sersic import PSFConvolver, SersicRenderer, _normalised_psf, refinement_levels
from core.segmentation import SegmentationError, detect, find_goi, sources_near

log = logging.getLogger(__name__)

__all__ = ["FIT_FLAGS", "FIT_PARAMS", "TARGET_RADIUS", "SersicFit", "SersicFitError", "fit_sersic",
           "fit_to_block"]

#: Fitted parameters, in the order of the internal parameter vector.
FIT_PARAMS = ("XC", "YC", "MAG", "RE", "N", "AR", "PA", "SKY")
_NONLINEAR = ("XC", "YC", "RE", "N", "AR", "PA")

#: Default bounds of the shape parameters (position and magnitude bounds follow the initial values).
N_BOUNDS = (0.2, 8.0)
RE_MIN = 0.25  # px
#: Convergence tolerances of the optimiser: a relative change of the cost (χ²/2) of 1e-5 is
#: Δχ² ≈ 0.1 for a 100×100 stamp, far below the 1σ change (Δχ² = 1).
FTOL = 1e-5
XTOL = 1e-5
AR_MIN = 0.05  # ar is fitted in [AR_MIN, 1/AR_MIN]; ar > 1 is turned into ar < 1 with pa + 90
#: A parameter within this fraction of (1 + |bound|) of a bound is "at" it (the trust-region
#: iterates stay strictly inside the bounds, so one that runs into a bound stops just short of it).
BOUND_RTOL = 1e-3
#: An n or Rₑ with a larger relative error is flagged ``poorly_constrained``.
MAX_REL_ERROR = 0.5
#: Default distance (px) within which a source's centre must lie from the target.
TARGET_RADIUS = 5.0
#: The flags :attr:`SersicFit.flags` may hold.
FIT_FLAGS = ("not_converged", "n_at_bound", "re_at_bound", "ar_at_bound", "mag_at_bound", "centre_at_box",
             "re_beyond_box", "poorly_constrained", "centre_in_mask", "centre_off_image", "centre_off_target",
             "ambiguous_target")
_BOUND_FLAGS = {"N": "n_at_bound", "RE": "re_at_bound", "AR": "ar_at_bound", "MAG": "mag_at_bound",
                "XC": "centre_at_box", "YC": "centre_at_box"}


#: Found once (threadpool_limits() would scan the loaded libraries at every fit, ~5 ms).
_THREADPOOLS: ThreadpoolController | None = None


def _one_blas_thread():
    global _THREADPOOLS
    if _THREADPOOLS is None:
        _THREADPOOLS = ThreadpoolController()
    return _THREADPOOLS.limit(limits=1, user_api="blas")


class SersicFitError(ResxError, ValueError):
    """An image that cannot be fitted (no valid pixels, no galaxy found, bad PSF...)."""


@dataclass
class SersicFit:
    """The result of :func:`fit_sersic`.

    Attributes
    ----------
    params : dict of str -> core.io.galfit.GalfitParameter
        ``"XC" "YC" "MAG" "RE" "N" "AR" "PA" "SKY"`` with values, errors and flags, in GALFIT's
        conventions (XC, YC 1-based; RE px along the major axis; AR <= 1; PA degrees in
        (-90, 90], counter-clockwise from +y), the same dictionary as ``read_block(...).params``.
    model : numpy.ndarray
        PSF-convolved Sérsic model **plus the sky**, on the whole image (as GALFIT's model HDU).
    residual : numpy.ndarray
        ``image - model``.
    sky : float
        Fitted sky level (image units).
    chi2nu : float
        Reduced chi-square over the fitted pixels.
    converged : bool
        The optimiser met a convergence criterion (not the evaluation limit).
    message : str
        The optimiser's message.
    nfev : int
        Model evaluations used (function evaluations; each Jacobian costs up to 6 more).
    mask : numpy.ndarray of bool
        Pixels excluded from the fit (bad pixels, user mask, neighbours).
    segmap : numpy.ndarray of int
        Segmentation map used (0 = sky).
    goi_label : int
        Label of the galaxy's own segment in ``segmap`` (0 when none was found).
    box : tuple of int
        ``(y0, y1, x0, x1)``: numpy slice of the fitted region.
    sky_rms : float
        Estimated rms of the sky pixels.
    init : dict of str -> float
        Initial values used.
    flags : tuple of str
        What makes this fit one not to trust as it is (:data:`FIT_FLAGS`); empty for a good fit.
    notes : dict of str -> str
        A sentence for each flag (e.g. ``"N at its bound (8)"``).
    target : (float, float) or None
        The position the galaxy was looked for at, 1-based (x, y).
    target_distance : float
        From the target to the chosen source's centre, px (NaN without a target check).
    psf : PreparedPSF or None
        The PSF as used and what was done to it (offset, recentring, normalisation).
    """

    params: dict[str, Any]
    model: np.ndarray
    residual: np.ndarray
    sky: float
    chi2nu: float
    converged: bool
    message: str
    nfev: int
    mask: np.ndarray
    segmap: np.ndarray
    goi_label: int
    box: tuple[int, int, int, int]
    sky_rms: float
    init: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)
    target: tuple[float, float] | None = None
    target_distance: float = math.nan
    psf: PreparedPSF | None = None

    def value(self, name: str) -> float:
        """The fitted value of parameter ``name``."""
        return float(self.params[name].value)


def _galfit_parameter():
    # core.io.galfit is another module of the project; imported lazily so rendering works without it.
    from core.io.galfit import GalfitParameter

    return GalfitParameter


# -- initial estimates -------------------------------------------------------------------------

_N_GRID = np.linspace(0.2, 8.0, 200)
_C_GRID = (gammaincinv(2 * _N_GRID, 0.9) / gammaincinv(2 * _N_GRID, 0.5)) ** _N_GRID


def _n_from_concentration(c: float) -> float:
    """Sérsic index whose r90/r50 (of the unconvolved, circular profile) is ``c``."""
    if not np.isfinite(c):
        return 2.0
    return float(np.interp(c, _C_GRID, _N_GRID))


def _sky_stats(image: np.ndarray, bad: np.ndarray) -> tuple[float, float]:
    # 3σ clipping about the median, 5 iterations, as astropy's sigma_clipped_stats(sigma=3,
    # maxiters=5) (whose per-call overhead is most of a fit's set-up time on a small stamp).
    good = image[~bad]
    for _ in range(5):
        median = np.median(good)
        std = good.std()
        keep = np.abs(good - median) <= 3.0 * std
        if keep.all() or not keep.any():
            break
        good = good[keep]
    return float(np.median(good)), float(good.std())


def _initial_guess(data: np.ndarray, goi: np.ndarray, fitmask: np.ndarray, cx: float, cy: float,
                   zeropoint: float, rms: float) -> dict[str, float]:
    """Moments of the GOI segment (or of a small disc at the centre when there is none)."""
    ny, nx = data.shape
    if not goi.any():
        yy, xx = np.mgrid[:ny, :nx]
        goi = ((xx - cx) ** 2 + (yy - cy) ** 2 <= 9.0) & ~fitmask
    w = np.where(goi, np.clip(data, 0.0, None), 0.0)
    total = w.sum()
    yy, xx = np.nonzero(goi)
    wv = w[yy, xx]
    if total <= 0:
        mx, my = cx, cy
        ar, pa = 1.0, 0.0
    else:
        mx, my = (wv * xx).sum() / total, (wv * yy).sum() / total
        cxx = (wv * (xx - mx) ** 2).sum() / total
        cyy = (wv * (yy - my) ** 2).sum() / total
        cxy = (wv * (xx - mx) * (yy - my)).sum() / total
        evals, evecs = np.linalg.eigh(np.array([[cxx, cxy], [cxy, cyy]]))
        ar = float(np.sqrt(max(evals[0], 1e-6) / max(evals[1], 1e-6)))
        ex, ey = evecs[:, 1]
        pa = float(np.degrees(np.arctan2(-ex, ey)))
    flux = float(data[goi].sum())
    if not flux > 0:
        flux = max(float(total), 10 * rms, 1e-30)
    # Half-light and 90 % radii (circular apertures; neighbours masked).
    masked = np.ascontiguousarray(np.where(fitmask & ~goi, 0.0, data), dtype=np.float64)
    rmax = float(max(np.sqrt(goi.sum() / np.pi) * 3.0, 5.0))
    try:
        (r50, r90), _ = sep.flux_radius(masked, np.array([mx]), np.array([my]), np.array([rmax]),
                                        np.array([0.5, 0.9]), normflux=np.array([flux]), subpix=5)
        r50, r90 = float(np.ravel(r50)[0]), float(np.ravel(r90)[0])
    except Exception:  # pragma: no cover - sep rarely fails here
        r50, r90 = math.nan, math.nan
    if not (np.isfinite(r50) and r50 > 0):
        r50, r90 = 2.0, math.nan
    n = float(np.clip(_n_from_concentration(r90 / r50), 0.5, 6.0))
    ar = float(np.clip(ar, 0.1, 1.0))
    return {
        "XC": mx + 1.0,
        "YC": my + 1.0,
        "MAG": float(zeropoint - 2.5 * np.log10(flux)),
        "RE": float(max(r50 / np.sqrt(ar), 0.5)),
        "N": n,
        "AR": ar,
        "PA": pa,
    }


# -- the model on the fitted box ---------------------------------------------------------------


class _BoxModel:
    """PSF-convolved Sérsic on a box of the image, with the PSF transform computed once."""

    def __init__(self, psf: np.ndarray, box: tuple[int, int, int, int], zeropoint: float):
        y0, y1, x0, x1 = box
        by, bx = y1 - y0, x1 - x0
        psf = _normalised_psf(psf)
        ky, kx = psf.shape
        # Light from outside the box scatters into it: render a margin of up to 10 px.
        self.pad = int(min(max(ky, kx) // 2, 10))
        py, px = by + 2 * self.pad, bx + 2 * self.pad
        # Offsets beyond the padded box never connect two of its pixels: crop the PSF (already
        # normalised, so the cropped wings' light is not put back into the core).
        cy, cx = ky // 2, kx // 2
        hy, hx = min(cy, py - 1), min(cx, px - 1)
        psf = psf[cy - hy: cy + min(ky - cy, py), cx - hx: cx + min(kx - cx, px)]
        self.convolver = PSFConvolver(psf, (py, px), normalize=False, margin=self.pad)
        self.renderer = SersicRenderer((py, px), zeropoint)
        self.renderer32 = SersicRenderer((py, px), zeropoint, dtype=np.float32)
        self.shape = (py, px)
        self.origin = (y0 - self.pad, x0 - self.pad)  # numpy index of the padded box's first pixel
        self.box = box
        self.zeropoint = zeropoint

    def galaxy(self, xc, yc, mag, re, n, ar, pa, grad: bool = False,
               levels=None, single: bool = False) -> np.ndarray:
        """The convolved model on the box; with ``grad`` an (8, by, bx) stack: the model and its
        derivatives with respect to XC, YC, MAG, RE, N, AR, PA. ``single``: rendered and
        convolved in float32 (the optimiser's iterations), else float64 (the final model)."""
        oy, ox = self.origin
        renderer = self.renderer32 if single else self.renderer
        img = renderer.render(xc - ox, yc - oy, mag, re, n, ar, pa, grad=grad, levels=levels)
        conv = self.convolver.convolve_stack(img)
        p = self.pad
        return conv[..., p: conv.shape[-2] - p, p: conv.shape[-1] - p]


def _fit_box(cx: float, cy: float, goi: np.ndarray, init: dict[str, float], shape, psf_shape,
             box_factor: float) -> tuple[int, int, int, int]:
    """Square box centred on the galaxy: box_factor × its extent, at least 20 px half-width."""
    ny, nx = shape
    if goi.any():
        yy, xx = np.nonzero(goi)
        extent = float(np.sqrt(((xx - cx) ** 2 + (yy - cy) ** 2).max()))
    else:
        extent = 0.0
    half = max(box_factor * extent, 4.0 * init["RE"], 20.0) + max(psf_shape) / 4
    half = int(math.ceil(half))
    i, j = int(round(cx)), int(round(cy))
    return max(j - half, 0), min(j + half + 1, ny), max(i - half, 0), min(i + half + 1, nx)


# -- the fit -------------------------------------------------------------------------------------


def fit_sersic(
    image: np.ndarray,
    psf: np.ndarray,
    mask: np.ndarray | None = None,
    sigma: np.ndarray | float | None = None,
    zeropoint: float = 25.9463,
    init: Mapping[str, float] | None = None,
    segmap: np.ndarray | None = None,
    *,
    fixed: Iterable[str] = (),
    detect_thresh: float = 1.5,
    minarea: int = 5,
    deblend_cont: float = 0.01,
    mask_grow: int = 2,
    box_factor: float = 2.0,
    max_nfev: int = 200,
    exptime: float = 1.0,
    gain: float | None = None,
    sampling: str = "adaptive",
    target: tuple[float, float] | None = None,
    target_radius: float | None = TARGET_RADIUS,
    psf_tol: float | None = PSF_TOL,
) -> SersicFit:
    """Fit one PSF-convolved Sérsic profile plus a flat sky, neighbours masked.

    Parameters
    ----------
    image : (ny, nx) array
        The galaxy image (the galaxy at the centre unless ``target`` or ``init`` say where).
    psf : 2-D array
        PSF image, centred at ``(ky//2, kx//2)`` (recentred here when it is not: ``psf_tol``);
        normalised to unit sum here. ``np.ones((1, 1))`` for no PSF.
    mask : (ny, nx) array, optional
        Bad pixels (nonzero/True = excluded). Non-finite pixels are always excluded.
    sigma : (ny, nx) array or float, optional
        Noise (1σ) per pixel. Default: the rms of the sky pixels, uniform (no Poisson term; fine
        for faint galaxies on a sky-dominated HST background).
    zeropoint : float
        Magnitude zero point (default 25.9463, WFC3/F160W AB).
    init : mapping, optional
        Initial values of any of ``"XC" "YC" "MAG" "RE" "N" "AR" "PA" "SKY"`` (XC, YC 1-based);
        the rest are estimated from the image. XC, YC also say which galaxy to fit.
    segmap : (ny, nx) int array, optional
        Segmentation map (0 = sky). Default: SEP detection at ``detect_thresh`` × sky rms.
    fixed : iterable of str
        Parameters held at their initial value (flagged ``"fixed"``).
    detect_thresh, minarea, deblend_cont : optional
        SEP detection settings when no ``segmap`` is given.
    mask_grow : int
        Neighbour segments are grown by this many pixels before masking (default 2).
    box_factor : float
        The fitted box has a half-width of ``box_factor`` × the GOI segment's extent (at least
        20 px and 4 initial Rₑ), clipped to the image.
    max_nfev : int
        Limit on model evaluations; reaching it means "not converged".
    exptime : float
        As GALFIT, magnitudes refer to ``flux / exptime``: ``mag = zeropoint - 2.5 log10(flux /
        exptime)`` (default 1: images in count rates).
    gain : float, optional
        Electrons per image unit. When given and ``sigma`` is not, the noise map includes the
        galaxy's Poisson noise, ``sqrt(rms² + max(image - sky, 0) / gain)``, as GALFIT's own
        sigma image does; default: sky rms only.
    sampling : {"adaptive", "full"}
        Central sub-sampling of the model: ``"adaptive"`` (default) as fine as the current RE and
        N need (:func:`core.fitting.sersic.refinement_levels`), ``"full"`` always
        :data:`core.fitting.sersic.DEFAULT_LEVELS` (slower; the same sampling as ``sersic_image``).
    target : (float, float), optional
        Where the galaxy is, 1-based FITS pixels (x, y) as GALFIT's; default ``init``'s XC, YC,
        else the image centre.
    target_radius : float or None
        A source's centre must lie within this many px of the target (default
        :data:`TARGET_RADIUS`), else :class:`SersicFitError`; the fitted centre farther than this
        from it is flagged ``centre_off_target``. None: no check, the GOI is the segment under the
        target or the nearest within ``max(3, 5 % of the image)`` px (what the simulated survey
        uses: its galaxy is at ``init`` by construction, detected or not).
    psf_tol : float or None
        Recentre the PSF when its centroid is more than this many px off (default
        :data:`core.fitting.psf.PSF_TOL`); None: never.

    Returns
    -------
    SersicFit

    Raises
    ------
    SersicFitError
        No valid pixels, a bad PSF, a bad noise map, no source near the target, the target off the
        image, or too few pixels to fit.

    Examples
    --------
    >>> from core.fitting.sersic import sersic_image, convolve_psf
    >>> y, x = np.mgrid[:25, :25]
    >>> psf = np.exp(-((x - 12) ** 2 + (y - 12) ** 2) / (2 * 1.27**2))
    >>> img = convolve_psf(sersic_image((64, 64), 32.5, 32.0, 21.0, 5.0, 2.0, 0.6, 30.0, 25.0), psf)
    >>> fit = fit_sersic(img, psf, sigma=np.full(img.shape, 1e-3), zeropoint=25.0)
    >>> round(fit.value("N"), 2), round(fit.value("RE"), 2)
    (2.0, 5.0)
    """
    t0 = time.perf_counter()
    GalfitParameter = _galfit_parameter()
    if sampling not in ("adaptive", "full"):
        raise SersicFitError(f"sampling must be 'adaptive' or 'full', got {sampling!r}")
    adaptive = sampling == "adaptive"
    if not exptime > 0:
        raise SersicFitError(f"exptime must be positive, got {exptime}")
    zeropoint = zeropoint + 2.5 * math.log10(exptime)
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise SersicFitError(f"image must be 2-D, got shape {image.shape}")
    try:
        prepared = psf if isinstance(psf, PreparedPSF) else prepare_psf(psf, psf_tol)
    except PSFError as exc:
        raise SersicFitError(f"bad PSF: {exc}") from exc
    psf = prepared.array
    ny, nx = image.shape
    bad = ~np.isfinite(image)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != image.shape:
            raise SersicFitError(f"mask shape {mask.shape} differs from the image's {image.shape}")
        bad |= mask.astype(bool)
    sigma_map = None
    if sigma is not None:
        sigma_map = np.broadcast_to(np.asarray(sigma, dtype=np.float64), image.shape)
        bad |= ~(np.isfinite(sigma_map) & (sigma_map > 0))
    if bad.all():
        raise SersicFitError("no valid pixels (all masked or non-finite)")
    init = dict(init or {})
    unknown = set(init) - set(FIT_PARAMS)
    fixed = set(fixed)
    unknown |= fixed - set(FIT_PARAMS)
    if unknown:
        raise SersicFitError(f"unknown parameters {sorted(unknown)}; known: {FIT_PARAMS}")
    missing_fixed = fixed - set(init) - {"SKY"}
    if missing_fixed:
        raise SersicFitError(f"fixed parameters need an initial value: {sorted(missing_fixed)}")
    data = np.where(bad, 0.0, image)

    # Sky level and rms; detection; the galaxy's segment and the neighbours' mask.
    sky0, rms = _sky_stats(image, bad)
    if not rms > 0:  # a noiseless image
        rms = 1e-4 * float(np.abs(data - sky0).max() or 1.0)
    if segmap is None:
        try:
            _, segmap = detect(data - sky0, rms=rms, thresh=detect_thresh, minarea=minarea, mask=bad,
                               deblend_cont=deblend_cont)
        except SegmentationError as exc:
            raise SersicFitError(str(exc)) from exc
        # Re-estimate the sky from source-free pixels.
        sky_pix = ~bad & ~ndimage.binary_dilation(segmap > 0, iterations=3)
        if sky_pix.sum() > 50:
            sky0 = float(np.median(image[sky_pix]))
            rms_sky = float(mad_std(image[sky_pix]))
            if rms_sky > 0:
                rms = rms_sky
    else:
        segmap = np.asarray(segmap)
        if segmap.shape != image.shape:
            raise SersicFitError(f"segmentation map shape {segmap.shape} differs from the image's "
                                 f"{image.shape}")
        segmap = segmap.astype(np.int32)
    if target is not None:
        cx, cy = float(target[0]) - 1.0, float(target[1]) - 1.0
    else:
        cx = init["XC"] - 1.0 if "XC" in init else (nx - 1) / 2.0
        cy = init["YC"] - 1.0 if "YC" in init else (ny - 1) / 2.0
    if not (np.isfinite(cx) and np.isfinite(cy)):
        raise SersicFitError(f"target ({cx + 1}, {cy + 1}) is not a position")
    notes: dict[str, str] = {}
    target_distance = math.nan
    what = "the target" if target is not None or "XC" in init else "the image centre"
    if target_radius is None:
        label, _ = find_goi(segmap, cx, cy, search_radius=max(3.0, 0.05 * min(nx, ny)))
    else:
        if not (-0.5 <= cx <= nx - 0.5 and -0.5 <= cy <= ny - 0.5):
            raise SersicFitError(f"{what} ({cx + 1:.2f}, {cy + 1:.2f}) [1-based] is off the {nx}x{ny} image")
        near, nearest = sources_near(segmap, np.where(bad, 0.0, data - sky0), cx, cy, target_radius)
        if not near:
            where = (f"; the nearest source, at ({nearest[2] + 1:.1f}, {nearest[3] + 1:.1f}), is "
                     f"{nearest[1]:.1f} px away" if nearest else "; no source was detected")
            raise SersicFitError(
                f"no source within {target_radius:g} px of {what} ({cx + 1:.2f}, {cy + 1:.2f}) "
                f"[1-based]{where}: give the galaxy's position (--target X,Y) or a larger "
                "--target-radius")
        label, target_distance = near[0]
        if len(near) > 1:
            notes["ambiguous_target"] = (
                f"{len(near)} sources within {target_radius:g} px of {what} (at "
                + ", ".join(f"{d:.1f}" for _, d in near) + " px); fitted the nearest")
    goi = segmap == label if label > 0 else np.zeros(image.shape, bool)
    neighbours = (segmap > 0) & ~goi
    if mask_grow > 0 and neighbours.any():
        neighbours = ndimage.binary_dilation(neighbours, iterations=mask_grow) & ~goi
    fitmask = bad | neighbours

    if all(p in init for p in FIT_PARAMS[:7]):  # nothing left to estimate from the image
        guess = {}
    else:
        guess = _initial_guess(data - sky0, goi, fitmask, cx, cy, zeropoint, rms)
    guess["SKY"] = sky0
    guess.update({k: float(v) for k, v in init.items()})
    if sigma_map is None:
        if gain is not None and gain > 0:
            sigma_map = np.sqrt(rms**2 + np.clip(data - guess["SKY"], 0.0, None) / gain)
        else:
            sigma_map = np.full(image.shape, rms)

    # The fitted box.
    box = _fit_box(guess["XC"] - 1.0, guess["YC"] - 1.0, goi, guess, image.shape, psf.shape,
                   box_factor)
    y0, y1, x0, x1 = box
    use = ~fitmask[y0:y1, x0:x1]
    free = [p for p in FIT_PARAMS if p not in fixed]
    if use.sum() <= len(free) + 1:
        raise SersicFitError(f"too few unmasked pixels to fit ({int(use.sum())})")
    dbox = image[y0:y1, x0:x1][use]
    wbox = 1.0 / sigma_map[y0:y1, x0:x1][use]
    model = _BoxModel(psf, box, zeropoint)

    # Parameter vector, bounds.
    def _bounds(name: str, v: float) -> tuple[float, float]:
        if name in ("XC", "YC"):
            return v - 10.0, v + 10.0
        if name == "MAG":
            return v - 6.0, v + 8.0
        if name == "RE":
            return RE_MIN, 5.0 * max(nx, ny)
        if name == "N":
            return N_BOUNDS
        if name == "AR":
            return AR_MIN, 1.0 / AR_MIN
        return -np.inf, np.inf

    x0_full = np.array([guess[p] for p in FIT_PARAMS], dtype=np.float64)
    lo = np.array([_bounds(p, guess[p])[0] for p in free])
    hi = np.array([_bounds(p, guess[p])[1] for p in free])
    with np.errstate(invalid="ignore"):
        inner_lo = np.where(np.isfinite(lo), lo + 1e-6 * (1 + np.abs(lo)), lo)
        inner_hi = np.where(np.isfinite(hi), hi - 1e-6 * (1 + np.abs(hi)), hi)
    x_start = np.clip(np.array([guess[p] for p in free]), inner_lo, inner_hi)
    idx = {p: FIT_PARAMS.index(p) for p in FIT_PARAMS}
    cache: dict[str, Any] = {"x": None, "gal": None}

    def full(x: np.ndarray) -> np.ndarray:
        v = x0_full.copy()
        for k, p in enumerate(free):
            v[idx[p]] = x[k]
        return v

    def levels_at(v: np.ndarray):
        return refinement_levels(v[3], v[4]) if adaptive else None

    def galaxy(v: np.ndarray, grad: bool = False, single: bool = True) -> np.ndarray:
        # The optimiser's models and derivatives in float32 (2x cheaper, ~1e-6 of the peak);
        # the returned model in float64.
        return model.galaxy(*v[:7], grad=grad, levels=levels_at(v), single=single)

    def gal_at(x: np.ndarray) -> np.ndarray:
        if cache["x"] is None or not np.array_equal(cache["x"], x):
            cache["x"], cache["gal"] = x.copy(), galaxy(full(x))
        return cache["gal"]

    def resid(x: np.ndarray) -> np.ndarray:
        v = full(x)
        return (dbox - gal_at(x)[use] - v[7]) * wbox

    shape_cols = [k for k, p in enumerate(free) if p != "SKY"]
    shape_channels = [1 + idx[p] for p in free if p != "SKY"]
    sky_col = free.index("SKY") if "SKY" in free else None
    minus_wbox = -wbox

    def jac(x: np.ndarray) -> np.ndarray:
        # Analytic derivatives of the profile (sampled as the model), convolved with the PSF.
        stack = galaxy(full(x), grad=True)
        cache["x"], cache["gal"] = x.copy(), stack[0]
        J = np.empty((dbox.size, len(free)))
        J[:, shape_cols] = (stack[:, use][shape_channels] * minus_wbox).T
        if sky_col is not None:
            J[:, sky_col] = minus_wbox
        return J

    # One BLAS thread: the trust-region SVD of a tall, thin Jacobian is many times slower with
    # threads competing for the cores (and parallelism belongs to the Dask layer, per galaxy).
    with np.errstate(over="ignore", under="ignore", invalid="ignore"), \
            _one_blas_thread():
        res = least_squares(resid, x_start, jac=jac, bounds=(lo, hi), method="trf", x_scale="jac",
                            ftol=FTOL, xtol=XTOL, gtol=1e-8, max_nfev=max_nfev)
    best = full(res.x)
    dof = max(dbox.size - len(free), 1)
    chi2nu = float(2.0 * res.cost / dof)
    converged = bool(res.status > 0)

    # Errors: covariance × reduced chi-square.
    J = res.jac
    try:
        cov = np.linalg.pinv(J.T @ J) * chi2nu
        err_free = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    except np.linalg.LinAlgError:
        err_free = np.full(len(free), np.nan)
    errors = dict.fromkeys(FIT_PARAMS, math.nan)
    for k, p in enumerate(free):
        errors[p] = float(err_free[k])
    at_bound = {p for k, p in enumerate(free)
                if res.active_mask[k] != 0
                or (np.isfinite(lo[k]) and res.x[k] - lo[k] <= BOUND_RTOL * (1 + abs(lo[k])))
                or (np.isfinite(hi[k]) and hi[k] - res.x[k] <= BOUND_RTOL * (1 + abs(hi[k])))}

    values = {p: float(best[idx[p]]) for p in FIT_PARAMS}
    # ar > 1: the same ellipse with the axes swapped.
    if values["AR"] > 1.0:
        ar = values["AR"]
        e_re, e_ar = errors["RE"], errors["AR"]
        values["RE"] *= ar
        values["AR"] = 1.0 / ar
        values["PA"] += 90.0
        errors["AR"] = e_ar / ar**2
        errors["RE"] = values["RE"] * math.hypot(e_re / (values["RE"] / ar), e_ar / ar)
    values["PA"] = float(-((-values["PA"] + 90.0) % 180.0) + 90.0)  # (-90, 90]

    params = {}
    for p in FIT_PARAMS:
        if p in fixed:
            params[p] = GalfitParameter(values[p], math.nan, "fixed")
        elif p in at_bound or not converged or not np.isfinite(values[p]):
            params[p] = GalfitParameter(values[p], errors[p], "problem")
        else:
            params[p] = GalfitParameter(values[p], errors[p], "free")

    # What makes the fit one not to trust as it is.
    if not converged:
        notes["not_converged"] = f"the optimiser stopped before converging ({res.message})"
    for p in sorted(at_bound, key=FIT_PARAMS.index):
        k = free.index(p)
        side = lo[k] if res.x[k] - lo[k] < hi[k] - res.x[k] else hi[k]
        if p in ("XC", "YC"):
            notes["centre_at_box"] = (f"the centre ran to the edge of its ±10 px box ({p} = {values[p]:.2f}; "
                                      f"started at {x0_full[idx[p]]:.2f})")
        elif p in _BOUND_FLAGS:
            notes[_BOUND_FLAGS[p]] = f"{p} at its bound ({side:.4g})"
    half = min(y1 - y0, x1 - x0) / 2.0
    if values["RE"] > half and "re_at_bound" not in notes:
        notes["re_beyond_box"] = (f"RE ({values['RE']:.1f} px) is beyond the fitted region's half-width "
                                  f"({half:.1f} px): RE, N and MAG are extrapolated")
    loose = [f"{p} = {values[p]:.3g} ± {errors[p]:.2g}" for p in ("N", "RE")
             if p in free and p not in at_bound and not errors[p] <= MAX_REL_ERROR * abs(values[p])]
    if loose:
        notes["poorly_constrained"] = f"{', '.join(loose)}: the data hardly constrain the profile"
    ix, iy = int(np.floor(values["XC"] - 0.5)), int(np.floor(values["YC"] - 0.5))
    if not (0 <= ix < nx and 0 <= iy < ny):
        notes["centre_off_image"] = f"the fitted centre ({values['XC']:.2f}, {values['YC']:.2f}) is off the image"
    elif fitmask[iy, ix]:
        kind = "a bad or masked pixel" if bad[iy, ix] else "a masked neighbour"
        notes["centre_in_mask"] = (f"the fitted centre ({values['XC']:.2f}, {values['YC']:.2f}) lies on {kind}")
    if target_radius is not None:
        moved = math.hypot(values["XC"] - 1.0 - cx, values["YC"] - 1.0 - cy)
        if moved > target_radius:
            notes["centre_off_target"] = (f"the fitted centre is {moved:.1f} px from {what} "
                                          f"({cx + 1:.2f}, {cy + 1:.2f})")
    flags = tuple(f for f in FIT_FLAGS if f in notes)

    # The model of the whole image (GALFIT's model HDU includes the sky).
    if box == (0, ny, 0, nx):
        gal_full = galaxy(best, single=False)
    else:
        gal_full = _BoxModel(psf, (0, ny, 0, nx), zeropoint).galaxy(*best[:7],
                                                                  levels=levels_at(best))
    full_model = gal_full + values["SKY"]
    log.debug("fit_sersic: %s in %.3f s, %d evaluations, chi2nu %.3f, %s", box,
              time.perf_counter() - t0, res.nfev, chi2nu, res.message)
    return SersicFit(
        params=params,
        model=full_model,
        residual=image - full_model,
        sky=values["SKY"],
        chi2nu=chi2nu,
        converged=converged,
        message=str(res.message),
        nfev=int(res.nfev),
        mask=fitmask,
        segmap=segmap,
        goi_label=label,
        box=box,
        sky_rms=float(rms),
        init={p: float(guess[p]) for p in FIT_PARAMS},
        flags=flags,
        notes={f: notes[f] for f in flags},
        target=(cx + 1.0, cy + 1.0),
        target_distance=float(target_distance),
        psf=prepared,
    )


def fit_to_block(
    image: np.ndarray,
    psf: np.ndarray,
    out_path: str | Path,
    *,
    extra_header: Mapping[str, Any] | None = None,
    input_header: Mapping[str, Any] | None = None,
    input_name: str = "input.fits",
    **kwargs: Any,
) -> SersicFit:
    """Fit ``image`` with :func:`fit_sersic` and write the result as a GALFIT-format block.

    The block (via :func:`core.io.galfit.write_block`) holds the input (non-finite pixels written as
    0), the model including the sky (as GALFIT's), the residual ``input - model``, the Sérsic
    parameters and the sky with "+/-" errors and flags (``*value*`` for a parameter at a bound),
    ``MAGZPT`` and ``CHI2NU``. The model header also says what was done: ``FITSECT`` (GALFIT's
    key) and ``FITBOX``, the region fitted, ``[x1:x2,y1:y2]`` 1-based inclusive; ``FITFLAGS``
    (:attr:`SersicFit.flags`, comma-separated, '' for none); ``TARGETX``/``TARGETY`` and
    ``TARGDIST`` (the target and its distance to the source's centre); ``PSFDX``/``PSFDY``
    (the PSF's centroid offset, px) and ``PSFSHIFT`` (recentred or not); ``EXPTIME`` when not 1.

    Parameters
    ----------
    image, psf : 2-D arrays
    out_path : str or Path
        The block file to write.
    extra_header : mapping, optional
        More model-header cards.
    input_header : mapping, optional
        More input-HDU cards (the image's WCS, ``BUNIT``...).
    input_name : str
        Image name recorded in the input HDU's ``OBJECT``.
    **kwargs
        Passed to :func:`fit_sersic` (``mask``, ``sigma``, ``zeropoint``, ``init``, ``segmap``,
        ``target`` ...).

    Returns
    -------
    SersicFit
    """
    from core.io.galfit import write_block

    fit = fit_sersic(image, psf, **kwargs)
    zeropoint = kwargs.get("zeropoint", 25.9463)
    header = {}
    if kwargs.get("exptime", 1.0) != 1.0:
        header["EXPTIME"] = (float(kwargs["exptime"]), "magnitudes refer to flux / EXPTIME")
    data = np.where(np.isfinite(image), image, 0.0)
    y0, y1, x0, x1 = fit.box
    section = f"[{x0 + 1}:{x1},{y0 + 1}:{y1}]"
    header.update({
        "FITTER": ("resx fit", "single Sersic + sky, scipy least_squares"),
        "NFEV": (fit.nfev, "model evaluations"),
        "CONVERGE": (fit.converged, "optimiser converged"),
        "SKYRMS": (fit.sky_rms, "sky rms estimated from the image"),
        "NMASKED": (int(fit.mask.sum()), "pixels excluded (bad, neighbours)"),
        "FITBOX": (section, "region fitted (1-based)"),
        "FITFLAGS": (",".join(fit.flags), "resx fit: reasons not to trust the fit"),
    })
    if fit.target is not None:
        header["TARGETX"] = (round(fit.target[0], 3), "target x, 1-based")
        header["TARGETY"] = (round(fit.target[1], 3), "target y, 1-based")
    if math.isfinite(fit.target_distance):
        header["TARGDIST"] = (round(fit.target_distance, 3), "target to source centre [px]")
    if fit.psf is not None:
        header["PSFDX"] = (round(fit.psf.dx, 3), "PSF centroid - centre, x [px]")
        header["PSFDY"] = (round(fit.psf.dy, 3), "PSF centroid - centre, y [px]")
        header["PSFSHIFT"] = (fit.psf.shifted, "PSF recentred before convolving")
    header.update(dict(extra_header or {}))
    write_block(out_path, data, fit.model, data - fit.model, params=fit.params,
                zeropoint=zeropoint, extra_header=header, chi2nu=fit.chi2nu,
                input_name=input_name, fitsect=section, input_header=input_header)
    return fit
