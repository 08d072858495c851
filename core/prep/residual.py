"""Object-only residuals (paper §3.1): the galaxy of interest's residual on resampled real sky.

* :func:`resample_sky` — a contiguous sky image tiled from randomly drawn ``block`` x ``block``
  (5 x 5) px blocks that are entirely source-free, so the pixel-to-pixel correlation of the noise
  survives (seeded per galaxy).
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

__all__ = ["PrepError", "cutout", "cutout_origin", "object_only", "resample_sky"]


class PrepError(ResxError, ValueError):
    """A galaxy that cannot be prepared; the message says why (recorded in the catalog)."""


def resample_sky(
    images: np.ndarray | Sequence[np.ndarray],
    sky: np.ndarray,
    shape: tuple[int, int],
    block: int = 5,
    rng: np.random.Generator | int | Sequence[int] | None = None,
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
    out = []
    for img in images:
        blocks = np.asarray(img)[rows, cols]  # (nby*nbx, b, b)
        tiled = blocks.reshape(nby, nbx, b, b).transpose(0, 2, 1, 3).reshape(nby * b, nbx * b)
        out.append(np.ascontiguousarray(tiled[:ny, :nx]))
    return out, b


def object_only(residual: np.ndarray, goi: np.ndarray, sky: np.ndarray) -> np.ndarray:
    """``GOI * residual + sky * (1 - GOI)``: the galaxy's residual in a sea of real sky."""
    return np.where(np.asarray(goi, dtype=bool), residual, sky)


def cutout_origin(x: float, y: float, size: int) -> tuple[int, int]:
    """Row and column of the first pixel of the ``size`` x ``size`` cutout centred on (x, y).

    (x, y) are 0-based; the centroid's pixel lands at index ``size // 2`` of the cutout on both
    axes (the centre for odd sizes, the pixel just after it for even ones).
    """
    return int(np.floor(y + 0.5)) - size // 2, int(np.floor(x + 0.5)) - size // 2


def cutout(image: np.ndarray, x: float, y: float, size: int, fill: np.ndarray | float = 0.0) -> tuple[np.ndarray, bool]:
    """A ``size`` x ``size`` cutout of ``image`` centred on the 0-based centroid (x, y).

    Pixels that fall off the image come from ``fill`` (an array of the cutout's shape, e.g.
    resampled sky, or a number).

    Returns
    -------
    stamp : numpy.ndarray
    padded : bool
        Whether any pixel came from ``fill``.
    """
    ny, nx = image.shape
    y0, x0 = cutout_origin(x, y, size)
    ya, yb, xa, xb = max(0, y0), min(ny, y0 + size), max(0, x0), min(nx, x0 + size)
    padded = not (ya == y0 and xa == x0 and yb == y0 + size and xb == x0 + size)
    if not padded:
        return image[y0 : y0 + size, x0 : x0 + size].copy(), False
    out = np.empty((size, size), dtype=np.result_type(image.dtype, np.asarray(fill).dtype))
    out[...] = fill
    if ya < yb and xa < xb:
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] = image[ya:yb, xa:xb]
    return out, True
