"""Source extraction with SEP and the galaxy of interest (GOI): one module for the fitter and prep.

* :func:`detect` — ``sep.extract`` with a segmentation map, raising SEP's pixel-stack and
  deblending limits step by step when a crowded or low-threshold image overflows them (SEP's
  defaults, 300 000 pixels and 1024 sub-objects, are too small for large cutouts at the paper's
  0.75 σ threshold).
* :func:`extract_segments` — SEP's background model, then :func:`detect` with the paper's
  parameters (§3.3: a 2-D tophat filter kernel of radius 5 px, 0.75 × the global background rms,
  a minimum area of 7 px). Prep runs it on the original image.
* :func:`find_goi` — the segment under a position, else the nearest one within a search radius;
  :func:`goi_mask` is the same as a mask, raising :class:`SegmentationError` when there is none.
* :func:`sources_near` — the sources whose centres lie within a radius of a target (the fitter's
  check that there is a galaxy where it was asked to fit one).
* :func:`sky_mask` — pixels in no segment.

Positions are **0-based** numpy pixel coordinates (column ``x``, row ``y``): GALFIT's 1-based
``XC, YC`` minus 1.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import sep

from core.errors import ResxError

__all__ = [
    "MAX_PIXSTACK",
    "MAX_SUB_OBJECTS",
    "SegmentationError",
    "as_sep_array",
    "detect",
    "extract_segments",
    "find_goi",
    "goi_mask",
    "sky_mask",
    "sources_near",
    "tophat_kernel",
]

log = logging.getLogger(__name__)

#: Caps up to which :func:`detect` raises SEP's pixel stack and deblending sub-object limit.
MAX_PIXSTACK = 10_000_000
MAX_SUB_OBJECTS = 16_384

#: ``filter_kernel`` value meaning "SEP's own default kernel" (3×3 pyramid).
SEP_DEFAULT_KERNEL = "sep-default"


class SegmentationError(ResxError, ValueError):
    """No usable segmentation: SEP failed, or no segment lies at the galaxy's position."""


def as_sep_array(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous, native-byte-order float64 array, which SEP accepts.

    SEP refuses big-endian data (FITS' native ``>f4``), non-contiguous views, float16 and int64.
    """
    return np.ascontiguousarray(image, dtype=np.float64)


@lru_cache(maxsize=8)
def tophat_kernel(radius: float) -> np.ndarray:
    """The 2-D tophat (disk) filter kernel of ``radius`` px, normalised to unit sum."""
    from astropy.convolution import Tophat2DKernel

    kernel = Tophat2DKernel(radius).array
    return np.ascontiguousarray(kernel / kernel.sum(), dtype=np.float64)


def detect(
    image: np.ndarray,
    *,
    rms: float,
    thresh: float,
    minarea: int,
    mask: np.ndarray | None = None,
    filter_kernel: np.ndarray | str | None = SEP_DEFAULT_KERNEL,
    deblend_nthresh: int = 32,
    deblend_cont: float = 0.005,
) -> tuple[np.ndarray, np.ndarray]:
    """Detect sources on a background-subtracted image; SEP's objects and segmentation map.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image with the background subtracted.
    rms : float
        Noise per pixel; the threshold is ``thresh * rms``.
    thresh : float
        Detection threshold in units of ``rms``.
    minarea : int
        Minimum number of pixels of a source.
    mask : numpy.ndarray of bool, optional
        Pixels to ignore.
    filter_kernel : numpy.ndarray, None or ``SEP_DEFAULT_KERNEL``
        Matched filter (None: no filtering; default: SEP's 3×3 kernel).
    deblend_nthresh, deblend_cont : int, float
        SEP's deblending parameters.

    Returns
    -------
    objects : numpy.ndarray
        SEP's structured array of sources.
    segmap : numpy.ndarray of int32
        0 for sky, ``k`` for pixels of ``objects[k - 1]``.

    Raises
    ------
    SegmentationError
        When extraction fails even after raising SEP's pixel-stack and sub-object limits.
    """
    data = as_sep_array(image)
    kwargs = {} if isinstance(filter_kernel, str) else {"filter_kernel": filter_kernel}
    if mask is not None:
        kwargs["mask"] = np.ascontiguousarray(mask, dtype=bool)
    while True:
        try:
            objects, segmap = sep.extract(data, float(thresh), err=float(rms), minarea=int(minarea),
                                          deblend_nthresh=int(deblend_nthresh), deblend_cont=float(deblend_cont),
                                          segmentation_map=True, **kwargs)
            return objects, np.asarray(segmap, dtype=np.int32)
        except Exception as exc:
            text = str(exc)
            if "pixel buffer full" in text and sep.get_extract_pixstack() < MAX_PIXSTACK:
                sep.set_extract_pixstack(min(MAX_PIXSTACK, sep.get_extract_pixstack() * 4))
                log.debug("raised SEP pixstack to %d", sep.get_extract_pixstack())
                continue
            if "deblending overflow" in text and sep.get_sub_object_limit() < MAX_SUB_OBJECTS:
                sep.set_sub_object_limit(min(MAX_SUB_OBJECTS, sep.get_sub_object_limit() * 4))
                log.debug("raised SEP sub-object limit to %d", sep.get_sub_object_limit())
                continue
            raise SegmentationError(f"SEP extraction failed: {text}") from exc


def extract_segments(
    image: np.ndarray,
    *,
    kernel_radius: float = 5.0,
    thresh: float = 0.75,
    minarea: int = 7,
    deblend_nthresh: int = 32,
    deblend_cont: float = 0.005,
) -> tuple[np.ndarray, np.ndarray, float]:
    """SEP background subtraction and source extraction with a segmentation map (paper §3.3).

    Parameters
    ----------
    image : numpy.ndarray
        2-D detection image (the original image, sky included).
    kernel_radius : float
        Radius of the tophat filter kernel, px.
    thresh, minarea, deblend_nthresh, deblend_cont
        As :func:`detect`; the threshold is in units of the global background rms.

    Returns
    -------
    objects, segmap
        As :func:`detect`.
    rms : float
        The global background rms.

    Raises
    ------
    SegmentationError
        When the background cannot be estimated, the image is constant, or extraction fails.
    """
    data = as_sep_array(image)
    try:
        bkg = sep.Background(data)
    except Exception as exc:
        raise SegmentationError(f"SEP background estimation failed: {exc}") from exc
    rms = float(bkg.globalrms)
    if not rms > 0:
        raise SegmentationError("SEP background rms is zero: the input image is constant")
    objects, segmap = detect(data - bkg.back(), rms=rms, thresh=thresh, minarea=minarea,
                             filter_kernel=tophat_kernel(float(kernel_radius)),
                             deblend_nthresh=deblend_nthresh, deblend_cont=deblend_cont)
    return objects, segmap, rms


def find_goi(segmap: np.ndarray, x: float, y: float, search_radius: float = 3.0) -> tuple[int, float]:
    """The segment under ``(x, y)``, or the nearest one within ``search_radius`` px.

    Parameters
    ----------
    segmap : numpy.ndarray of int
        Segmentation map (0 = sky).
    x, y : float
        Position, 0-based (column, row).
    search_radius : float
        When the position's pixel is unsegmented (or off the image), take the segment of the
        nearest segmented pixel within this distance of the position's pixel, px.

    Returns
    -------
    label : int
        The segment number; 0 when there is none.
    distance : float
        From the position's pixel to the segment, px (0 under it; NaN when there is none).

    Examples
    --------
    >>> seg = np.zeros((9, 9), int); seg[2:4, 6:8] = 5
    >>> find_goi(seg, 6.2, 2.9), find_goi(seg, 4.0, 3.0), find_goi(seg, 0.0, 8.0)
    ((5, 0.0), (5, 2.0), (0, nan))
    """
    ny, nx = segmap.shape
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    if 0 <= ix < nx and 0 <= iy < ny and segmap[iy, ix] > 0:
        return int(segmap[iy, ix]), 0.0
    r = int(np.ceil(search_radius))
    y0, y1, x0, x1 = max(0, iy - r), min(ny, iy + r + 1), max(0, ix - r), min(nx, ix + r + 1)
    if y0 < y1 and x0 < x1:
        win = segmap[y0:y1, x0:x1]
        yy, xx = np.nonzero(win > 0)
        if yy.size:
            d = np.hypot(yy + y0 - iy, xx + x0 - ix)
            k = int(np.argmin(d))
            if d[k] <= search_radius:
                return int(win[yy[k], xx[k]]), float(d[k])
    return 0, float("nan")


def goi_mask(segmap: np.ndarray, x: float, y: float, search_radius: float = 3.0) -> tuple[np.ndarray, int, float]:
    """The galaxy-of-interest mask: the segment under the centroid, or the nearest one.

    Parameters
    ----------
    segmap : numpy.ndarray of int
        Segmentation map (0 = sky).
    x, y : float
        Centroid in **0-based** numpy pixel coordinates (column, row); GALFIT's 1-based
        ``XC, YC`` minus 1.
    search_radius : float
        See :func:`find_goi`.

    Returns
    -------
    mask : numpy.ndarray of bool
    label : int
        The segment number.
    distance : float
        Distance from the centroid's pixel to the segment, px (0 when under it).

    Raises
    ------
    SegmentationError
        The centroid is off the image, or no segment lies within ``search_radius``.
    """
    ny, nx = segmap.shape
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    if not (0 <= ix < nx and 0 <= iy < ny):
        raise SegmentationError(f"centroid ({x + 1:.2f}, {y + 1:.2f}) [1-based] is off the {nx}x{ny} image")
    label, distance = find_goi(segmap, x, y, search_radius)
    if label == 0:
        raise SegmentationError(f"no segment under the centroid ({x + 1:.2f}, {y + 1:.2f}) [1-based] "
                                f"or within {search_radius:g} px of it")
    return segmap == label, label, distance


def sources_near(segmap: np.ndarray, image: np.ndarray, x: float, y: float,
                 radius: float) -> tuple[list[tuple[int, float]], tuple[int, float, float, float] | None]:
    """The sources whose centres lie within ``radius`` px of ``(x, y)``, nearest first.

    A source is at its peak (the brightest pixel of its segment in the image smoothed by a
    Gaussian of σ = 1 px: a galaxy's nucleus, wherever a lopsided halo or an attached neighbour
    puts the centroid) and at its centroid (flux-weighted over its segment, negative pixels as 0;
    a clumpy galaxy's centre): its distance is the nearer of the two. Distances are from the
    position itself, not from its pixel.

    Parameters
    ----------
    segmap : numpy.ndarray of int
        Segmentation map (0 = sky).
    image : numpy.ndarray
        The image, background subtracted (the weights of the centroids).
    x, y : float
        Position, 0-based (column, row).
    radius : float
        Search radius, px.

    Returns
    -------
    near : list of (label, distance)
        The sources within ``radius``, nearest first (empty when none).
    nearest : (label, distance, x, y) or None
        The nearest source at any distance, with the position (peak or centroid, 0-based) the
        distance is to; None without sources.

    Examples
    --------
    >>> seg = np.zeros((20, 20), int); seg[2:5, 2:5] = 1; seg[10:13, 14:17] = 2
    >>> near, nearest = sources_near(seg, np.ones((20, 20)), 15.0, 11.5, 3.0)
    >>> near, nearest
    ([(2, 0.5)], (2, 0.5, 15.0, 11.0))
    """
    from scipy import ndimage

    segmap = np.asarray(segmap)
    labels = np.unique(segmap[segmap > 0])
    if labels.size == 0:
        return [], None
    weights = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float64)), 0.0, None)
    flux = np.asarray(ndimage.sum(weights, segmap, labels))
    yy, xx = np.indices(segmap.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.asarray(ndimage.sum(weights * xx, segmap, labels)) / flux
        cy = np.asarray(ndimage.sum(weights * yy, segmap, labels)) / flux
    flat = ~(flux > 0)
    if flat.any():  # no positive flux: the geometric centre
        cx[flat] = np.asarray(ndimage.mean(xx, segmap, labels[flat]))
        cy[flat] = np.asarray(ndimage.mean(yy, segmap, labels[flat]))
    smooth = ndimage.gaussian_filter(np.nan_to_num(np.asarray(image, dtype=np.float64)), 1.0)
    peaks = np.array(ndimage.maximum_position(smooth, segmap, labels), dtype=np.float64).reshape(-1, 2)
    d_centroid = np.hypot(cx - x, cy - y)
    d_peak = np.hypot(peaks[:, 1] - x, peaks[:, 0] - y)
    use_peak = d_peak < d_centroid
    px, py = np.where(use_peak, peaks[:, 1], cx), np.where(use_peak, peaks[:, 0], cy)
    d = np.minimum(d_centroid, d_peak)
    order = np.argsort(d, kind="stable")
    near = [(int(labels[k]), float(d[k])) for k in order if d[k] <= radius]
    k = int(order[0])
    return near, (int(labels[k]), float(d[k]), float(px[k]), float(py[k]))


def sky_mask(segmap: np.ndarray) -> np.ndarray:
    """Source-free pixels: ``True`` where the segmentation map is 0."""
    return np.asarray(segmap) == 0
