"""What a FITS header says about its pixels: the pixel scale, the units, the storage type.

Whoever wrote a block — GALFIT (which copies the input image's header, WCS included, into the
block's input HDU), ``resx fit``, another fitter — the same keys are read, in every header given:

* :func:`pixel_scale` — arcsec per pixel from a celestial WCS (``CD``, ``PC`` + ``CDELT`` or
  ``CDELT``), else from a scale keyword
  (:data:`SCALE_KEYS`: ``PIXSCALE``, ``PIXSCAL1``, ``PIXELSCL``, ``SECPIX``, ``PLATESCL``), in
  arcsec/px;
* :func:`image_unit` — ``BUNIT`` (``"ELECTRONS/S"``, ``"electron / s"``, ``"counts"``...);
* :func:`pixel_type` — how the pixels are stored: a float type, or an integer type with its
  ``BSCALE``/``BZERO`` (astropy applies them on reading, so the pixels arrive in physical units).
"""

from __future__ import annotations

import math

import numpy as np
from astropy.io import fits

__all__ = ["SCALE_KEYS", "image_unit", "pixel_scale", "pixel_type"]

#: Header keywords holding a pixel scale in arcsec/px, in order of trust. (PLATESCL is last: some
#: observatories write a telescope's plate scale in arcsec/mm under that name.)
SCALE_KEYS = ("PIXSCALE", "PIXSCAL1", "PIXELSCL", "SECPIX", "PLATESCL")
#: Scales outside this range (arcsec/px) are not taken to be pixel scales.
_PLAUSIBLE = (1e-4, 3600.0)


#: Celestial axis types (the first four letters of CTYPEn).
_CELESTIAL = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT", "HPLN", "HPLT")
#: Degrees per unit of CUNITn.
_UNITS = {"": 1.0, "DEG": 1.0, "ARCMIN": 1 / 60, "ARCSEC": 1 / 3600, "MAS": 1 / 3.6e6, "RAD": 180 / math.pi}


def _wcs_scale(header: fits.Header) -> float | None:
    """sqrt(|det|) of the celestial pixel-to-sky matrix (``CD``, else ``PC`` x ``CDELT``, else
    ``CDELT``), arcsec/px: the geometric mean of the two axes' scales, as
    :func:`astropy.wcs.utils.proj_plane_pixel_scales` gives them (read from the keywords directly:
    building a WCS per block would cost milliseconds at ingest)."""
    types = [str(header.get(f"CTYPE{i}", "")).strip().upper()[:4] for i in (1, 2)]
    if not all(t in _CELESTIAL for t in types):
        return None
    try:
        units = [_UNITS[str(header.get(f"CUNIT{i}", "")).strip().upper()] for i in (1, 2)]
        if any(f"CD{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
            m = np.array([[float(header.get(f"CD{i}_{j}", 0.0)) for j in (1, 2)] for i in (1, 2)])
        else:
            pc = np.array([[float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) for j in (1, 2)]
                           for i in (1, 2)])
            m = np.diag([float(header.get("CDELT1", 1.0)), float(header.get("CDELT2", 1.0))]) @ pc
    except (KeyError, TypeError, ValueError):
        return None
    value = math.sqrt(abs(np.linalg.det(m)) * units[0] * units[1]) * 3600.0
    return value if math.isfinite(value) and value > 0 else None


def pixel_scale(*headers: fits.Header | None) -> tuple[float, str]:
    """The pixel scale in arcsec/px, and where it came from.

    Parameters
    ----------
    *headers : astropy.io.fits.Header or None
        Headers to look in, in order (e.g. a block's input, model and primary headers); each is
        tried for a celestial WCS, then for a scale keyword. ``None`` entries are skipped.

    Returns
    -------
    scale : float
        arcsec per pixel (the geometric mean of the two axes for a WCS); NaN when no header says.
    source : str
        ``"WCS"``, the keyword used (``"PIXSCALE"``...), or ``""``.

    Examples
    --------
    >>> h = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -1.6667e-5,
    ...                  "CD2_2": 1.6667e-5, "CRVAL1": 3.58, "CRVAL2": -30.39})
    >>> scale, source = pixel_scale(h)
    >>> round(scale, 4), source
    (0.06, 'WCS')
    >>> pixel_scale(fits.Header({"PIXSCALE": 0.03}), h)
    (0.03, 'PIXSCALE')
    >>> pixel_scale(fits.Header())
    (nan, '')
    """
    for header in headers:
        if header is None:
            continue
        value = _wcs_scale(header)
        if value is not None and _PLAUSIBLE[0] <= value <= _PLAUSIBLE[1]:
            return value, "WCS"
        for key in SCALE_KEYS:
            try:
                value = float(header[key]) if key in header else math.nan
            except (TypeError, ValueError):
                continue
            if _PLAUSIBLE[0] <= abs(value) <= _PLAUSIBLE[1]:
                return abs(value), key
    return math.nan, ""


def image_unit(*headers: fits.Header | None) -> str:
    """The first non-empty ``BUNIT`` among ``headers`` (``""`` when none says)."""
    for header in headers:
        if header is not None and str(header.get("BUNIT", "")).strip():
            return str(header["BUNIT"]).strip()
    return ""


def pixel_type(header: fits.Header) -> str:
    """How an image HDU stores its pixels, e.g. ``"float32"`` or ``"int16 (BSCALE 0.01, BZERO 0)"``.

    Integer pixels are read as float64 in physical units (``BSCALE * stored + BZERO``, which
    astropy applies); the text says which scaling was applied.

    Examples
    --------
    >>> pixel_type(fits.Header({"BITPIX": -32}))
    'float32'
    >>> pixel_type(fits.Header({"BITPIX": 16, "BSCALE": 0.5, "BZERO": 100.0}))
    'int16 (BSCALE 0.5, BZERO 100)'
    >>> pixel_type(fits.Header({"BITPIX": 16, "BZERO": 32768}))
    'uint16 (BZERO 32768)'
    """
    bitpix = int(header.get("BITPIX", -32))
    if bitpix < 0:
        return f"float{-bitpix}"
    bscale, bzero = float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))
    unsigned = bscale == 1.0 and bitpix > 8 and bzero == 2 ** (bitpix - 1)
    name = f"uint{bitpix}" if unsigned or bitpix == 8 else f"int{bitpix}"
    parts = [f"BSCALE {bscale:g}"] if bscale != 1.0 else []
    if bzero != 0.0 or parts:
        parts.append(f"BZERO {bzero:g}")
    return f"{name} ({', '.join(parts)})" if parts else name
