"""The stamp's geometry: how much sky a cutout covers, and its resampling to the networks' size.

The paper's cutouts are 50 x 50 px of WFC3/IR at 0.06"/px: 3" on a side. Images at other scales
(ACS 0.03", NIRCam 0.031"/0.063", Euclid VIS 0.1") give comparable stamps when the cutout is
defined on the sky and resampled to the networks' input size:

* :func:`cutout_side` — the cutout's side in native pixels from config ``prep.cutout_size`` and
  ``prep.cutout_unit``: arcsec (through the pixel scale; ``prep.cutout`` native px when the scale
  is unknown), native px, or units of the fitted Re.
* :func:`resample_matrix` / :func:`resample_region` — flux-conserving resampling of a native
  region onto ``m`` x ``m`` stamp pixels by exact area overlap: stamp pixel ``j`` covers native
  pixels ``[j w, (j + 1) w)`` with ``w = side / m``, and takes the flux of each native pixel in
  proportion to the overlapping length on each axis (a separable area-weighted rebinning, the
  axis-aligned case of reproject's ``reproject_exact``; reproject is not a dependency). The flux
  inside the footprint is conserved exactly; at ``w = 1`` it is the identity (a 0.06"/px image
  gives the paper's stamps pixel for pixel); ``w < 1`` (upsampling a coarse image) spreads each
  native pixel over the stamp pixels it overlaps.

The residual metrics (SPF, Bumpiness, RFF) are measured on the native pixels
(:mod:`core.prep.metrics`), never on the resampled stamps: resampling correlates the noise.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from core.prep.residual import cut_region

__all__ = ["CutoutSide", "cut_and_resample", "cutout_side", "resample_matrix", "resample_region", "stamp_origin"]

#: The smallest cutout side, native px.
MIN_SIDE = 4.0


class CutoutSide(NamedTuple):
    """The cutout's side in native pixels and, when the unit asked for could not be used, why."""

    side: float
    note: str = ""


def cutout_side(size: float, unit: str, *, stamp: int, pixel_scale: float = math.nan,
                re: float = math.nan) -> CutoutSide:
    """The cutout's side in native pixels.

    Parameters
    ----------
    size : float
        Config ``prep.cutout_size``.
    unit : {"arcsec", "px", "re"}
        Config ``prep.cutout_unit``.
    stamp : int
        Config ``prep.cutout`` (the stamps' side): the fallback side, in native px, when the
        pixel scale (for arcsec) or Re (for re) is unknown.
    pixel_scale : float
        arcsec/px (NaN when unknown).
    re : float
        The fitted effective radius, native px (NaN when unknown).

    Returns
    -------
    CutoutSide
        ``(side, note)``; at least :data:`MIN_SIDE` px.

    Examples
    --------
    >>> cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.06)
    CutoutSide(side=50.0, note='')
    >>> cutout_side(3.0, "arcsec", stamp=50, pixel_scale=0.03).side
    100.0
    >>> cutout_side(3.0, "arcsec", stamp=50).note
    'pixel scale unknown: cutout of 50 native px instead of 3 arcsec (set prep.pixel_scale)'
    >>> cutout_side(10, "re", stamp=50, re=4.2).side
    42.0
    """
    if unit == "px":
        side, note = float(size), ""
    elif unit == "arcsec":
        if math.isfinite(pixel_scale) and pixel_scale > 0:
            side, note = float(size) / pixel_scale, ""
        else:
            side, note = float(stamp), (f"pixel scale unknown: cutout of {stamp} native px instead of "
                                        f"{size:g} arcsec (set prep.pixel_scale)")
    elif unit == "re":
        if math.isfinite(re) and re > 0:
            side, note = float(size) * re, ""
        else:
            side, note = float(stamp), f"no fitted Re: cutout of {stamp} native px instead of {size:g} Re"
    else:
        raise ValueError(f"prep.cutout_unit must be arcsec, px or re, not {unit!r}")
    return CutoutSide(max(round(side, 2), MIN_SIDE), note)  # 0.01 px: no sliver of a pixel from rounding


def stamp_origin(x: float, y: float, side: float) -> tuple[int, int]:
    """Row and column of the first native pixel of a cutout of ``side`` px around 0-based (x, y).

    The cutout starts at a pixel edge, ``floor(side / 2)`` pixels before the centroid's pixel, so
    the centroid lies within half a native pixel of the cutout's centre; for an integer side it
    is :func:`core.prep.residual.cutout_origin` (the centroid's pixel at index ``side // 2``).
    """
    half = math.floor(side / 2)
    return int(np.floor(y + 0.5)) - half, int(np.floor(x + 0.5)) - half


def resample_matrix(side: float, m: int) -> np.ndarray:
    """The ``m`` x ``ceil(side)`` overlap matrix of :func:`resample_region` (one axis).

    Entry ``[j, k]`` is the length of native pixel ``k`` (``[k, k + 1)``) inside stamp pixel
    ``j`` (``[j w, (j + 1) w)``, ``w = side / m``); each native pixel's column sums to the part of
    it inside the cutout (1 except for a partial last pixel), so flux is conserved.

    Examples
    --------
    >>> resample_matrix(4, 2)
    array([[1., 1., 0., 0.],
           [0., 0., 1., 1.]])
    >>> resample_matrix(3, 3).tolist() == np.eye(3).tolist()
    True
    """
    n = int(math.ceil(side - 1e-9))
    w = side / m
    lo = np.arange(m)[:, None] * w
    hi = lo + w
    k = np.arange(n)[None, :]
    return np.clip(np.minimum(hi, k + 1) - np.maximum(lo, k), 0.0, None)


def resample_region(region: np.ndarray, side: float, m: int, *, mean: bool = False) -> np.ndarray:
    """Resample the first ``side`` x ``side`` native px of ``region`` onto ``m`` x ``m`` pixels.

    Parameters
    ----------
    region : numpy.ndarray
        ``(ceil(side), ceil(side))`` native pixels (a cutout, padded where it ran off the image).
    side : float
        The cutout's side, native px (may be fractional: the last row and column count in part).
    m : int
        The stamp's side.
    mean : bool
        Return the area-weighted mean of the native pixels under each stamp pixel (for masks)
        instead of their summed flux (for images; the default).

    Returns
    -------
    numpy.ndarray
        ``(m, m)`` float64. The sum over the stamp equals the flux inside the footprint.

    Examples
    --------
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> resample_region(img, 4, 2)
    array([[10., 18.],
           [42., 50.]])
    >>> float(resample_region(img, 4, 3).sum()) == float(img.sum())
    True
    """
    a = resample_matrix(side, m)
    n = a.shape[1]
    region = np.asarray(region, dtype=np.float64)
    if region.shape != (n, n):
        raise ValueError(f"a cutout of side {side:g} px needs a {n}x{n} region, got {region.shape}")
    out = a @ region @ a.T
    if mean:
        out /= (side / m) ** 2
    return out


def cut_and_resample(image: np.ndarray, x: float, y: float, side: float, m: int,
                     fill: np.ndarray | float = 0.0, *, mean: bool = False) -> tuple[np.ndarray, bool]:
    """:func:`resample_region` of the cutout of ``side`` native px around 0-based (x, y).

    ``fill`` supplies the pixels off the image (an array of the ``ceil(side)`` square region's
    shape, or a number). Returns the ``(m, m)`` stamp and whether it was padded.
    """
    y0, x0 = stamp_origin(x, y, side)
    n = int(math.ceil(side - 1e-9))
    region, padded = cut_region(image, y0, x0, n, n, fill)
    return resample_region(region, side, m, mean=mean), padded
