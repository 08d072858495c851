"""Object-only residuals (paper §3.1): the galaxy of interest's residual on resampled real sky.

* :func:`resample_sky` — a contiguous sky image tiled from randomly drawn ``block`` x ``block``
  (5 x 5) px blocks that are entirely source-free, so the pixel-to-pixel correlation of the noise
  survives (seeded per galaxy). Where the background has a gradient (a cluster's intracluster
  light, a bright neighbour's wings, a model that over-subtracts beyond the segment) blocks
  drawn from elsewhere do not match where they land, and the tiled sky shows seams: given a
  smooth background model (:func:`sky_background`, SEP's), it is subtracted before the blocks
  are drawn and added back at their destination. :func:`seam_ratio` measures the seams.
* :func:`object_only` — ``GOI * residual + sky * (1 - GOI)``.
* :func:`cutout` — a ``size`` x ``size`` stamp whose pixel ``size // 2`` (both axes) holds the
  centroid; where it runs off the image it is padded with ``fill``.

The segmentation they start from (SEP on the original image, the GOI segment, the sky pixels)
is :mod:`core.segmentation`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import ResxError

__all__ = ["PrepError", "cut_region", "cutout", "cutout_origin", "object_only", "resample_sky", "seam_ratio",
           "sky_background"]


class PrepError(ResxError, ValueError):
    """A galaxy that cannot be prepared; the message says why (recorded in the catalog)."""


def sky_background(image: np.ndarray, sky: np.ndarray, box: int) -> np.ndarray:
    """SEP's smooth background of ``image`` from its sky pixels (:class:`sep.Background`).

    Parameters
    ----------
    image : numpy.ndarray
        2-D image (e.g. the residual).
    sky : numpy.ndarray of bool
        Source-free pixels; the others are masked from the estimate (SEP interpolates over them).
    box : int
        Side of SEP's background mesh, px (filtered over 3 x 3 meshes). Small meshes follow a
        steep gradient; 8 px (the default of config ``prep.sky_background_box``) brings the seams
        of the real images in ``../shared/data`` to <= 1.5 (``tests/benchmarks/bench_sky.py``).

    Returns
    -------
    numpy.ndarray
        The background, same shape as ``image``.

    Raises
    ------
    PrepError
        When SEP cannot estimate it (e.g. too few sky pixels).
    """
    import sep

    data = np.ascontiguousarray(image, dtype=np.float64)
    mask = np.ascontiguousarray(~np.asarray(sky, dtype=bool))
    b = max(2, min(int(box), *data.shape))
    try:
        return np.asarray(sep.Background(data, mask=mask, bw=b, bh=b, fw=3, fh=3).back(), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - SEP raises plain Exceptions
        raise PrepError(f"SEP background of the sky failed: {exc}") from exc


def resample_sky(
    images: np.ndarray | Sequence[np.ndarray],
    sky: np.ndarray,
    shape: tuple[int, int],
    block: int = 5,
    rng: np.random.Generator | int | Sequence[int] | None = None,
    *,
    backgrounds: Sequence[np.ndarray | None] | None = None,
    origin: tuple[int, int] = (0, 0),
) -> tuple[list[np.ndarray], int]:
    """Tile a contiguous sky image from randomly drawn source-free ``block`` x ``block`` blocks.

    Every block is drawn (with replacement) among the positions where all ``block**2`` pixels are
    sky, so the small-scale pixel-to-pixel correlation of the noise survives. Several images
    (e.g. the original and the residual) are resampled at the same block positions.

    Parameters
    ----------
    images : array or sequence of arrays
        2-D images of the same shape as ``sky``.
    sky : numpy.ndarray of bool
        Source-free pixels.
    shape : (ny, nx)
        Shape of the sky image to build.
    block : int
        Side of the blocks, px. If no fully source-free block exists, smaller blocks are tried
        (down to single pixels); the block side used is returned.
    rng : numpy.random.Generator or seed
        Random generator (or a seed for :func:`numpy.random.default_rng`).
    backgrounds : sequence of arrays or None, optional
        A smooth background per image (:func:`sky_background`; ``None`` for none): subtracted
        from the blocks where they are drawn and added back where they land, so a gradient
        leaves no seams.
    origin : (row, col)
        The image pixel of the output's first pixel (output pixel ``(i, j)`` lies on image pixel
        ``(row + i, col + j)``): where the background is added back. Off the image (a cutout's
        padding) the background's nearest edge value is used. Default ``(0, 0)``: the output
        covers the image.

    Returns
    -------
    skies : list of numpy.ndarray
        One ``shape`` array per input image.
    block_used : int

    Raises
    ------
    PrepError
        When there is no sky pixel at all.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images = [images]
    images = list(images)
    backgrounds = list(backgrounds) if backgrounds is not None else [None] * len(images)
    if len(backgrounds) != len(images):
        raise ValueError(f"{len(images)} images but {len(backgrounds)} backgrounds")
    sky = np.asarray(sky, dtype=bool)
    ny, nx = shape
    for b in range(int(block), 0, -1):
        if sky.shape[0] < b or sky.shape[1] < b:
            continue
        # integral image: number of sky pixels in every b x b window, keyed by its top-left pixel
        s = np.zeros((sky.shape[0] + 1, sky.shape[1] + 1), np.int32)
        np.cumsum(np.cumsum(sky, axis=0, dtype=np.int32), axis=1, out=s[1:, 1:])
        count = s[b:, b:] - s[:-b, b:] - s[b:, :-b] + s[:-b, :-b]
        cy, cx = np.nonzero(count == b * b)
        if cy.size:
            break
    else:
        raise PrepError("no sky pixel: every pixel belongs to a source")
    nby, nbx = -(-ny // b), -(-nx // b)
    pick = rng.integers(0, cy.size, size=nby * nbx)
    d = np.arange(b)
    rows = cy[pick][:, None, None] + d[None, :, None]
    cols = cx[pick][:, None, None] + d[None, None, :]
    iy = np.clip(origin[0] + np.arange(ny), 0, sky.shape[0] - 1)
    ix = np.clip(origin[1] + np.arange(nx), 0, sky.shape[1] - 1)
    out = []
    for img, bkg in zip(images, backgrounds):
        img = np.asarray(img)
        source = img if bkg is None else img - bkg
        blocks = source[rows, cols]  # (nby*nbx, b, b)
        tiled = blocks.reshape(nby, nbx, b, b).transpose(0, 2, 1, 3).reshape(nby * b, nbx * b)[:ny, :nx]
        if bkg is not None:
            tiled = tiled + np.asarray(bkg)[np.ix_(iy, ix)]
        out.append(np.ascontiguousarray(tiled))
    return out, b


def seam_ratio(image: np.ndarray, block: int = 5, where: np.ndarray | None = None) -> float:
    """How blocky a tiled sky is: mean |pixel difference| across block edges over that inside blocks.

    Differences of horizontally and vertically adjacent pixels are split into those that cross
    a ``block`` boundary of the tiling (pixel ``k`` and ``k + 1`` with ``(k + 1) % block == 0``)
    and those inside a block. About 1 for white noise; a little more for correlated noise
    (drizzled images: neighbours inside a block are correlated, across an edge they are not);
    far more where blocks drawn from different background levels meet.

    Parameters
    ----------
    image : numpy.ndarray
        A tiled sky (:func:`resample_sky`, tiled from pixel 0).
    block : int
        The block side it was tiled with.
    where : numpy.ndarray of bool, optional
        Count only pairs whose both pixels are here (e.g. where the sky is used).

    Returns
    -------
    float
        NaN when there are no pairs of either kind.

    Examples
    --------
    >>> steps = np.repeat(np.repeat(np.arange(16.0).reshape(4, 4), 5, 0), 5, 1)
    >>> seam_ratio(steps + np.random.default_rng(0).normal(0, 0.1, steps.shape)) > 10
    True
    """
    img = np.asarray(image, dtype=np.float64)
    ok = np.ones(img.shape, bool) if where is None else np.asarray(where, dtype=bool)
    sums = np.zeros(4)  # across: sum of |diff|, pairs; inside: sum of |diff|, pairs
    for axis in (0, 1):
        diff = np.abs(np.diff(img, axis=axis))
        pair = ok[:-1] & ok[1:] if axis == 0 else ok[:, :-1] & ok[:, 1:]
        weighted = diff * pair
        edge = (np.arange(img.shape[axis] - 1) + 1) % block == 0
        index = (edge, slice(None)) if axis == 0 else (slice(None), edge)
        inner = (~edge, slice(None)) if axis == 0 else (slice(None), ~edge)
        sums += (weighted[index].sum(), pair[index].sum(), weighted[inner].sum(), pair[inner].sum())
    if sums[1] == 0 or sums[3] == 0 or not sums[2] > 0:
        return float("nan")
    return float((sums[0] / sums[1]) / (sums[2] / sums[3]))


def object_only(residual: np.ndarray, goi: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """``GOI * residual + sky * (1 - GOI)``: the galaxy's residual in a sea of real sky."""
    return np.where(np.asarray(goi, dtype=bool), residual, sky)


def cutout_origin(x: float, y: float, size: int) -> tuple[int, int]:
    """Row and column of the first pixel of the ``size`` x ``size`` cutout centred on (x, y).

    (x, y) are 0-based; the centroid's pixel lands at index ``size // 2`` of the cutout on both
    axes (the centre for odd sizes, the pixel just after it for even ones).
    """
    return int(np.floor(y + 0.5)) - size // 2, int(np.floor(x + 0.5)) - size // 2


def cut_region(image: np.ndarray, y0: int, x0: int, ny: int, nx: int,
               fill: np.ndarray | float = 0.0) -> tuple[np.ndarray, bool]:
    """The ``ny`` x ``nx`` region of ``image`` whose first pixel is ``(y0, x0)``.

    Pixels that fall off the image come from ``fill`` (an array of the region's shape, e.g.
    resampled sky, or a number).

    Returns
    -------
    region : numpy.ndarray
    padded : bool
        Whether any pixel came from ``fill``.
    """
    h, w = image.shape
    ya, yb, xa, xb = max(0, y0), min(h, y0 + ny), max(0, x0), min(w, x0 + nx)
    padded = not (ya == y0 and xa == x0 and yb == y0 + ny and xb == x0 + nx)
    if not padded:
        return image[y0 : y0 + ny, x0 : x0 + nx].copy(), False
    out = np.empty((ny, nx), dtype=np.result_type(image.dtype, np.asarray(fill).dtype))
    out[...] = fill
    if ya < yb and xa < xb:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = image[ya:yb, xa:xb]
    return out, True


def cutout(image: np.ndarray, x: float, y: float, size: int, fill: np.ndarray | float = 0.0) -> tuple[np.ndarray, bool]:
    """:func:`cut_region` of ``size`` x ``size`` px centred on the 0-based centroid (x, y)
    (:func:`cutout_origin`): ``(stamp, padded)``."""
    y0, x0 = cutout_origin(x, y, size)
    return cut_region(image, y0, x0, size, size, fill)
