"""What an image header says about its units, exposure time, zeropoint, pixel scale and sky coordinates.

Each function returns a value and the reason for it (the header key used, or why none was), so
the fitter can write both into its block and the user can check them.

Magnitudes follow GALFIT: ``mag = ZP - 2.5 log10(flux / EXPTIME)``, with ``flux`` in image units.

* **Exposure time** (:func:`exposure_time`): ``--exptime`` when given; else 1 when ``BUNIT`` is
  a rate (``electrons/s``, ``e-/s``, ``ELECTRONS/S``, ``electron / s``, ``counts/s``, ``DN/s``,
  ``cps``..., case and spaces ignored) or a surface brightness (``MJy/sr``): such images are
  already per second, and their ``EXPTIME`` key (drizzled HST images keep one) must not divide
  them again; else the header's ``EXPTIME`` (GALFIT's rule; counts, electrons, ADU, or no
  ``BUNIT``); else 1.
* **Zeropoint** (:func:`zeropoint`), of ``flux / EXPTIME`` as above: ``--zeropoint``; else the
  first of ``MAGZPT`` (GALFIT's), ``MAGZP``, ``ZP``; else HST's ``PHOTFLAM`` and ``PHOTPLAM``
  as an **AB** zeropoint, ``-2.5 log10(PHOTFLAM) - 5 log10(PHOTPLAM) - 2.408`` (Sirianni et al.
  2005; for e⁻/s, which ``PHOTFLAM`` is "per"); else for ``BUNIT = MJy/sr`` with JWST's
  ``PIXAR_SR``, the AB zeropoint ``-2.5 log10(PIXAR_SR × 10⁶ / 3631)``; else a default. HST's
  ``PHOTZPT`` (always -21.10) is the zeropoint of the ST magnitude of a flux *density*, not of
  the pixel values: it is never used as one (a fit with it would be ~47 mag off).
* **Pixel scale** (:func:`pixel_scale`), arcsec per pixel, in every header given (a block's
  input, model and primary headers; whoever wrote the block): the celestial WCS read from its
  keywords (CD matrix, or PC × CDELT, or CDELT; the geometric mean of the two axes); else a
  :data:`SCALE_KEYS` keyword; values outside 1e-4–3600″ are not pixel scales.
* **Units and storage**: :func:`image_unit` (``BUNIT``), :func:`pixel_type` (a float type, or an
  integer type with its ``BSCALE``/``BZERO``, which astropy applies on reading).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
from astropy.io import fits

__all__ = [
    "SCALE_KEYS",
    "ZEROPOINT_KEYS",
    "bunit_kind",
    "celestial_wcs",
    "exposure_time",
    "image_unit",
    "pixel_scale",
    "pixel_type",
    "positive_value",
    "zeropoint",
]

#: Header keys read as a zeropoint of ``flux / EXPTIME``, in this order.
ZEROPOINT_KEYS = ("MAGZPT", "MAGZP", "ZP")
_COUNTS = {"electron", "electrons", "e", "e-", "count", "counts", "adu", "adus", "dn", "photon", "photons",
           "cts"}


def bunit_kind(bunit: Any) -> str:
    """What a ``BUNIT`` value means for magnitudes.

    Returns
    -------
    str
        ``"rate"`` (per second: ``e-/s``, ``electrons/s``, ``ELECTRONS/S``, ``electron / s``,
        ``counts/s``, ``DN/s``, ``cps``, ``e-.s**-1``...), ``"surface brightness"`` (``MJy/sr``),
        ``"counts"`` (``ELECTRONS``, ``counts``, ``ADU``, ``DN``), ``"none"`` (absent or blank) or
        ``"unknown"``.

    Examples
    --------
    >>> [bunit_kind(b) for b in ("ELECTRONS/S", "electron / s", "e-/s", "Counts/sec", "ELECTRONS", "MJy/sr", "")]
    ['rate', 'rate', 'rate', 'rate', 'counts', 'surface brightness', 'none']
    """
    if bunit is None:
        return "none"
    text = re.sub(r"\s+", "", str(bunit)).lower()
    if not text:
        return "none"
    if text in ("cps", "cts/s") or re.search(r"(/s|/sec|/second|s\*\*-1|s\^-1|s-1)$", text):
        return "rate"
    if text.replace("(", "").replace(")", "") in ("mjy/sr", "mjysr-1", "mjy.sr**-1", "mjysr**-1"):
        return "surface brightness"
    if text in _COUNTS:
        return "counts"
    return "unknown"


def positive_value(header: fits.Header, key: str) -> float | None:
    """``header[key]`` as a float when it is a positive finite number, else None."""
    try:
        value = float(header[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def exposure_time(header: fits.Header, override: float | None = None) -> tuple[float, str]:
    """The ``EXPTIME`` magnitudes divide by, and why.

    Parameters
    ----------
    header : astropy.io.fits.Header
    override : float, optional
        The user's value (``--exptime``); must be positive.

    Returns
    -------
    exptime : float
    source : str
        E.g. ``"BUNIT 'ELECTRONS/S' is a rate: EXPTIME 68952 not applied"``.

    Raises
    ------
    ValueError
        A non-positive ``override``.
    """
    if override is not None:
        if not (math.isfinite(override) and override > 0):
            raise ValueError(f"exposure time must be positive, got {override}")
        return float(override), "--exptime"
    bunit = header.get("BUNIT")
    kind = bunit_kind(bunit)
    key = positive_value(header, "EXPTIME")
    if kind in ("rate", "surface brightness"):
        note = f": EXPTIME {key:g} not applied" if key else ""
        return 1.0, f"BUNIT '{str(bunit).strip()}' is a {kind}{note}"
    if key is not None:
        why = "" if kind == "counts" else (" (no BUNIT)" if kind == "none" else
                                           f" (BUNIT '{str(bunit).strip()}' not recognised)")
        return key, f"EXPTIME header key{why}"
    return 1.0, "no EXPTIME key"


def zeropoint(header: fits.Header, override: float | None = None,
              default: float | None = None) -> tuple[float | None, str]:
    """The magnitude zeropoint of ``flux / EXPTIME``, and where it came from.

    Parameters
    ----------
    header : astropy.io.fits.Header
    override : float, optional
        The user's value (``--zeropoint``).
    default : float, optional
        Returned when neither ``override`` nor the header gives one.

    Returns
    -------
    zeropoint : float or None
        None only when nothing gave one and ``default`` is None.
    source : str
        ``"--zeropoint"``, ``"MAGZPT"``, ``"PHOTFLAM, PHOTPLAM (AB)"``, ``"PIXAR_SR (AB)"`` or
        ``"default"`` (with the reason).
    """
    if override is not None:
        return float(override), "--zeropoint"
    for key in ZEROPOINT_KEYS:
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            return value, key
    flam, plam = positive_value(header, "PHOTFLAM"), positive_value(header, "PHOTPLAM")
    if flam and plam:
        return -2.5 * math.log10(flam) - 5.0 * math.log10(plam) - 2.408, "PHOTFLAM, PHOTPLAM (AB)"
    pixar = positive_value(header, "PIXAR_SR")
    if pixar and bunit_kind(header.get("BUNIT")) == "surface brightness":
        return -2.5 * math.log10(pixar * 1e6 / 3631.0), "PIXAR_SR (AB, MJy/sr)"
    why = "no zeropoint in the header"
    if "PHOTZPT" in header:
        why += " (PHOTZPT is the ST zeropoint of a flux density, not of the pixel values)"
    return (None if default is None else float(default)), f"default: {why}"


def celestial_wcs(header: fits.Header):
    """The header's celestial WCS (astropy ``WCS`` of 2 axes), or None when it has none."""
    from astropy.io.fits.verify import VerifyWarning
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            warnings.simplefilter("ignore", VerifyWarning)  # old non-standard cards, fixed on reading
            wcs = WCS(header, naxis=2)
    except Exception:  # noqa: BLE001 - a malformed WCS is no WCS
        return None
    return wcs if wcs.has_celestial else None


#: Header keywords holding a pixel scale in arcsec/px, in order of trust. (PLATESCL is last: some
#: observatories write a telescope's plate scale in arcsec/mm under that name.)
SCALE_KEYS = ("PIXSCALE", "PIXSCAL1", "PIXELSCL", "SECPIX", "PLATESCL")
#: Scales outside this range (arcsec/px) are not taken to be pixel scales.
_PLAUSIBLE = (1e-4, 3600.0)


#: Celestial axis types (the first four letters of CTYPEn).
_CELESTIAL = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT", "SLON", "SLAT", "HPLN", "HPLT")
#: Degrees per unit of CUNITn.
_UNITS = {"": 1.0, "DEG": 1.0, "ARCMIN": 1 / 60, "ARCSEC": 1 / 3600, "MAS": 1 / 3.6e6, "RAD": 180 / math.pi}


def _wcs_scale(header: fits.Header) -> tuple[float, str] | None:
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
            how = "CD matrix"
        else:
            how = "PC, CDELT" if any(f"PC{i}_{j}" in header for i in (1, 2) for j in (1, 2)) else "CDELT"
            pc = np.array([[float(header.get(f"PC{i}_{j}", 1.0 if i == j else 0.0)) for j in (1, 2)]
                           for i in (1, 2)])
            m = np.diag([float(header.get("CDELT1", 1.0)), float(header.get("CDELT2", 1.0))]) @ pc
    except (KeyError, TypeError, ValueError):
        return None
    value = math.sqrt(abs(np.linalg.det(m)) * units[0] * units[1]) * 3600.0
    return (value, f"WCS ({how})") if math.isfinite(value) and value > 0 else None


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
        ``"WCS (CD matrix)"``, ``"WCS (PC, CDELT)"``, ``"WCS (CDELT)"``, the keyword used
        (``"PIXSCALE"``...), or ``""``.

    Examples
    --------
    >>> h = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -1.6667e-5,
    ...                  "CD2_2": 1.6667e-5, "CRVAL1": 3.58, "CRVAL2": -30.39})
    >>> scale, source = pixel_scale(h)
    >>> round(scale, 4), source
    (0.06, 'WCS (CD matrix)')
    >>> pixel_scale(fits.Header({"PIXSCALE": 0.03}), h)
    (0.03, 'PIXSCALE')
    >>> pixel_scale(fits.Header())
    (nan, '')
    """
    for header in headers:
        if header is None:
            continue
        found = _wcs_scale(header)
        if found is not None and _PLAUSIBLE[0] <= found[0] <= _PLAUSIBLE[1]:
            return found
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
