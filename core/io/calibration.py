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
* **Pixel scale** (:func:`pixel_scale`), arcsec per pixel: ``--pixscale``; else the celestial
  WCS (CD matrix, or PC × CDELT; the geometric mean of the two axes); else a ``PIXSCALE``,
  ``PIXSCAL1``, ``PIXELSCL`` or ``SECPIX`` key (arcsec).
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

from astropy.io import fits

__all__ = [
    "ZEROPOINT_KEYS",
    "PIXSCALE_KEYS",
    "bunit_kind",
    "celestial_wcs",
    "exposure_time",
    "pixel_scale",
    "positive_value",
    "zeropoint",
]

#: Header keys read as a zeropoint of ``flux / EXPTIME``, in this order.
ZEROPOINT_KEYS = ("MAGZPT", "MAGZP", "ZP")
#: Header keys read as a pixel scale in arcsec when there is no celestial WCS, in this order.
PIXSCALE_KEYS = ("PIXSCALE", "PIXSCAL1", "PIXELSCL", "SECPIX")

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


def pixel_scale(header: fits.Header, override: float | None = None) -> tuple[float | None, str]:
    """The pixel scale in arcsec per pixel, and where it came from.

    Returns
    -------
    scale : float or None
        None when neither ``override``, a celestial WCS nor a scale key gives one.
    source : str
        ``"--pixscale"``, ``"WCS (CD matrix)"``, ``"WCS (PC, CDELT)"``, ``"WCS (CDELT)"``, the
        key's name, or ``"unknown"``.

    Examples
    --------
    >>> h = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -1.6667e-5, "CD2_2": 1.6667e-5})
    >>> scale, source = pixel_scale(h)
    >>> round(scale, 4), source
    (0.06, 'WCS (CD matrix)')
    """
    if override is not None:
        return float(override), "--pixscale"
    wcs = celestial_wcs(header)
    if wcs is not None:
        from astropy.wcs.utils import proj_plane_pixel_scales

        scales = proj_plane_pixel_scales(wcs.celestial)  # in the axes' units (deg)
        units = [str(u) for u in wcs.celestial.wcs.cunit]
        factor = {"deg": 3600.0, "arcmin": 60.0, "arcsec": 1.0, "": 3600.0}
        if all(u in factor for u in units) and all(s > 0 for s in scales):
            value = math.sqrt(scales[0] * factor[units[0]] * scales[1] * factor[units[1]])
            if "CD1_1" in header or "CD2_2" in header:
                how = "CD matrix"
            elif "PC1_1" in header or "PC2_2" in header:
                how = "PC, CDELT"
            else:
                how = "CDELT"
            return value, f"WCS ({how})"
    for key in PIXSCALE_KEYS:
        value = positive_value(header, key)
        if value is not None:
            return value, key
    return None, "unknown"
