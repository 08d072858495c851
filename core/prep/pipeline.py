"""Object-only residual stamps and residual metrics, per galaxy (paper §3.1, §3.3), at survey scale.

The science is a handful of plain functions on arrays, composed by :func:`prep_galaxy`:

1. :func:`extract_segments` — SEP background + extraction on the **original (input) image**, as
   the paper does (§3.3: "we identify sources in the original image"): a 2-D tophat filter kernel
   of radius 5 px, a threshold of 0.75 x the global background rms, a minimum area of 7 px, and
   the segmentation map. The residual is a poor detection image (the galaxy is subtracted, so
   its segment would shrink to its residual structure); the masks found on the original are then
   applied to the residual.
2. :func:`goi_mask` — the segment under the GALFIT centroid (the nearest segment within
   ``goi_search_radius`` px when that pixel is unsegmented; :class:`PrepError` if none).
3. :func:`sky_mask` — pixels in no segment.
4. :func:`resample_sky` — a contiguous sky image tiled from randomly drawn ``sky_block`` x
   ``sky_block`` (5 x 5) px blocks that are entirely source-free, so the pixel-to-pixel
   correlation of the noise survives (seeded per galaxy).
5. :func:`object_only` — ``GOI * residual + sky * (1 - GOI)``.
6. :func:`cutout` — a ``cutout`` x ``cutout`` (50 x 50) stamp whose pixel ``size // 2`` (both axes)
   holds the GALFIT centroid; where it runs off the image it is padded with resampled sky
   (model with the fitted sky level, GOI mask with 0) and flagged ``cutout_padded``.
7. :class:`core.prep.metrics.ResidualMetrics` — sky sigma, SPF (+ parts), Bumpiness, RFF over the GOI
   of the **full** GALFIT image (not only the cutout, so light beyond the cutout counts).

:func:`prep_workspace` maps this over a workspace's catalog with Dask (:mod:`core.parallel`): one
task per chunk of the stamp store, each task writing only its own chunk. Every task also writes a
small journal file (``WORKSPACE/prep/chunk_*.json``); the driver merges results into the catalog
as tasks finish and at the end, so an interrupted run resumes where it stopped.

Bad input (a missing or truncated block, a missing HDU, NaN/inf pixels, a centroid off the image,
no segment under the centroid, an all-zero residual, an extraction that fails) gives that galaxy
``prep_status = "error"`` and a ``prep_message`` naming the problem; the batch goes on. Smaller
problems (a padded cutout, a failed metric) give ``"flagged"``. Big-endian (FITS-native) or
non-contiguous arrays are converted, not refused.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sep
from astropy.table import Column, Table

from core.errors import ResxError
from core.io.stamps import STAMP_KINDS, StampStore
from core.prep.metrics import METRIC_COLUMNS, ResidualMetrics
from core.workspace.config import DEFAULT_CONFIG

log = logging.getLogger(__name__)

PREP_STATUSES = ("pending", "ok", "flagged", "error")
FINISHED = ("ok", "flagged", "error")
JOURNAL_DIR = "prep"

# SEP's default pixel stack (300 000) and deblending sub-object limit (1024) overflow on crowded
# or low-threshold images. We raise them step by step up to these caps before giving up.
MAX_PIXSTACK = 10_000_000
MAX_SUB_OBJECTS = 16_384


class PrepError(ResxError, ValueError):
    """A galaxy that cannot be prepared; the message says why (recorded in the catalog)."""


# -- the science, on arrays ---------------------------------------------------------------------


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


def extract_segments(
    image: np.ndarray,
    *,
    kernel_radius: float = 5.0,
    thresh: float = 0.75,
    minarea: int = 7,
    deblend_nthresh: int = 32,
    deblend_cont: float = 0.005,
) -> tuple[np.ndarray, np.ndarray, float]:
    """SEP background subtraction and source extraction with a segmentation map.

    Parameters
    ----------
    image : numpy.ndarray
        2-D detection image (the original image, sky included).
    kernel_radius : float
        Radius of the tophat filter kernel, px.
    thresh : float
        Detection threshold in units of the global background rms.
    minarea : int
        Minimum number of pixels of a source.
    deblend_nthresh, deblend_cont : int, float
        SEP's deblending parameters.

    Returns
    -------
    objects : numpy.ndarray
        SEP's structured array of sources.
    segmap : numpy.ndarray of int32
        0 for sky, ``k`` for pixels of ``objects[k - 1]``.
    rms : float
        The global background rms.

    Raises
    ------
    PrepError
        When extraction fails even after raising SEP's pixel-stack and sub-object limits.
    """
    data = as_sep_array(image)
    try:
        bkg = sep.Background(data)
    except Exception as exc:
        raise PrepError(f"SEP background estimation failed: {exc}") from exc
    sub = data - bkg.back()
    rms = float(bkg.globalrms)
    if not rms > 0:
        raise PrepError("SEP background rms is zero: the input image is constant")
    kernel = tophat_kernel(float(kernel_radius))
    while True:
        try:
            objects, segmap = sep.extract(
                sub, thresh, err=rms, minarea=int(minarea), filter_kernel=kernel,
                deblend_nthresh=int(deblend_nthresh), deblend_cont=float(deblend_cont),
                segmentation_map=True,
            )
            return objects, np.asarray(segmap, dtype=np.int32), rms
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
            raise PrepError(f"SEP extraction failed: {text}") from exc


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
        When the centroid's pixel is unsegmented, take the segment of the nearest segmented pixel
        within this distance, px.

    Returns
    -------
    mask : numpy.ndarray of bool
    label : int
        The segment number.
    distance : float
        Distance from the centroid's pixel to the segment, px (0 when under it).

    Raises
    ------
    PrepError
        The centroid is off the image, or no segment lies within ``search_radius``.
    """
    ny, nx = segmap.shape
    ix, iy = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    if not (0 <= ix < nx and 0 <= iy < ny):
        raise PrepError(f"centroid ({x + 1:.2f}, {y + 1:.2f}) [1-based] is off the {nx}x{ny} image")
    label = int(segmap[iy, ix])
    distance = 0.0
    if label == 0:
        r = int(np.ceil(search_radius))
        y0, y1, x0, x1 = max(0, iy - r), min(ny, iy + r + 1), max(0, ix - r), min(nx, ix + r + 1)
        win = segmap[y0:y1, x0:x1]
        yy, xx = np.nonzero(win)
        if yy.size:
            d = np.hypot(yy + y0 - iy, xx + x0 - ix)
            k = int(np.argmin(d))
            if d[k] <= search_radius:
                label, distance = int(win[yy[k], xx[k]]), float(d[k])
        if label == 0:
            raise PrepError(
                f"no segment under the centroid ({x + 1:.2f}, {y + 1:.2f}) [1-based] "
                f"or within {search_radius:g} px of it"
            )
    return segmap == label, label, distance


def sky_mask(segmap: np.ndarray) -> np.ndarray:
    """Source-free pixels: ``True`` where the segmentation map is 0."""
    return np.asarray(segmap) == 0


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


def galaxy_seed(seed: int, galaxy_id: str) -> list[int]:
    """A per-galaxy seed: the run's seed and a stable hash of the id (independent of chunking)."""
    return [int(seed), zlib.crc32(str(galaxy_id).encode())]


@dataclass
class PrepResult:
    """The prepared stamps and metrics of one galaxy.

    Attributes
    ----------
    stamps : dict of str -> numpy.ndarray
        ``size`` x ``size`` cutouts keyed by :data:`core.io.stamps.STAMP_KINDS`.
    metrics : dict of str -> float
        Keyed by :data:`core.prep.metrics.METRIC_COLUMNS`.
    status : str
        ``"ok"`` or ``"flagged"``.
    messages : list of str
        Flags and notes.
    padded : bool
        Whether the cutout ran off the image.
    segmap, goi, sky, sky_image : numpy.ndarray
        Full-frame intermediate products (segmentation map, masks, resampled sky).
    """

    stamps: dict[str, np.ndarray]
    metrics: dict[str, float]
    status: str = "ok"
    messages: list[str] = field(default_factory=list)
    padded: bool = False
    segmap: np.ndarray | None = None
    goi: np.ndarray | None = None
    sky: np.ndarray | None = None
    sky_image: np.ndarray | None = None

    @property
    def message(self) -> str:
        return "; ".join(self.messages)


def _check_images(images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    shape = None
    out = {}
    for name, img in images.items():
        if img is None:
            raise PrepError(f"missing {name} image")
        a = np.asarray(img)
        if a.ndim != 2 or a.size == 0:
            raise PrepError(f"the {name} image is not a 2-D image (shape {a.shape})")
        if shape is not None and a.shape != shape:
            raise PrepError(f"the {name} image has shape {a.shape}, the input image {shape}")
        shape = a.shape
        if a.dtype.kind not in "fiu":
            raise PrepError(f"the {name} image has non-numeric data ({a.dtype})")
        a = as_sep_array(a)  # native byte order, contiguous, float64
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise PrepError(f"the {name} image has {bad} non-finite pixel(s) (NaN/inf)")
        out[name] = a
    if not np.any(out["residual"]):
        raise PrepError("the residual image is all zero")
    return out


def prep_galaxy(
    input: np.ndarray,
    model: np.ndarray,
    residual: np.ndarray,
    xc: float,
    yc: float,
    *,
    seed: int | Sequence[int] = 0,
    config: Mapping[str, Any] | None = None,
    sky_level: float = 0.0,
) -> PrepResult:
    """Object-only stamps and residual metrics of one galaxy (paper §3.1, §3.3).

    Parameters
    ----------
    input, model, residual : numpy.ndarray
        The GALFIT block's images (same 2-D shape; any float/int dtype and byte order).
    xc, yc : float
        GALFIT centroid, **1-based** FITS pixels (as in the block header and the catalog's
        ``gf_xc``, ``gf_yc``).
    seed : int or sequence of int
        Seed of the sky resampling (:func:`galaxy_seed` makes one per galaxy).
    config : mapping, optional
        The ``prep`` section of the configuration (defaults: ``DEFAULT_CONFIG["prep"]``).
    sky_level : float
        GALFIT's fitted sky level, subtracted from the model for the metrics (the model HDU
        includes the sky component).

    Returns
    -------
    PrepResult

    Raises
    ------
    PrepError
        Bad input: mismatched or non-2-D images, NaN/inf pixels, an all-zero residual, a centroid
        off the image, a failed extraction, or no segment under the centroid.
    """
    cfg = {**DEFAULT_CONFIG["prep"], **(config or {})}
    imgs = _check_images({"input": input, "model": model, "residual": residual})
    data, mod, res = imgs["input"], imgs["model"], imgs["residual"]
    ny, nx = data.shape
    x, y = float(xc) - 1.0, float(yc) - 1.0
    if not (np.isfinite(x) and np.isfinite(y)):
        raise PrepError(f"centroid ({xc}, {yc}) is not finite")
    if not (-0.5 <= x < nx - 0.5 and -0.5 <= y < ny - 0.5):
        raise PrepError(f"centroid ({xc:.2f}, {yc:.2f}) [1-based] is off the {nx}x{ny} image")

    _, segmap, _ = extract_segments(
        data, kernel_radius=cfg["kernel_radius"], thresh=cfg["thresh"], minarea=cfg["minarea"],
        deblend_nthresh=cfg["deblend_nthresh"], deblend_cont=cfg["deblend_cont"],
    )
    goi, _, dist = goi_mask(segmap, x, y, cfg["goi_search_radius"])
    sky = sky_mask(segmap)
    messages: list[str] = []
    flagged = False
    if dist > 0:
        messages.append(f"GOI is the nearest segment, {dist:.1f} px from the centroid")
    if np.count_nonzero(sky) < 25:
        raise PrepError(f"only {np.count_nonzero(sky)} sky pixels: the image is covered by sources")

    rng = np.random.default_rng(seed)
    block = int(cfg["sky_block"])
    (sky_img,), used = resample_sky([res], sky, (ny, nx), block, rng)
    if used < block:
        flagged = True
        messages.append(f"no source-free {block}x{block} block; sky resampled from {used}x{used} blocks")
    obj = object_only(res, goi, sky_img)

    size = int(cfg["cutout"])
    y0, x0 = cutout_origin(x, y, size)
    padded = y0 < 0 or x0 < 0 or y0 + size > ny or x0 + size > nx
    if padded:
        (fill_in, fill_res), _ = resample_sky([data, res], sky, (size, size), used, rng)
        flagged = True
        messages.append(f"cutout runs off the {nx}x{ny} image: padded with resampled sky")
    else:
        fill_in = fill_res = 0.0
    stamps = {
        "original": cutout(data, x, y, size, fill_in)[0],
        "model": cutout(mod, x, y, size, float(sky_level))[0],
        "residual": cutout(res, x, y, size, fill_res)[0],
        "object_only": cutout(obj, x, y, size, fill_res)[0],
        "goi_mask": cutout(goi.astype(np.uint8), x, y, size, 0)[0],
    }

    rm = ResidualMetrics(res, mod - float(sky_level), goi, sky, rff_absolute=bool(cfg.get("rff_absolute", False)))
    metrics = rm.as_dict()
    if rm.flags:
        flagged = True
        messages.extend(rm.flags)
    return PrepResult(
        stamps=stamps, metrics=metrics, status="flagged" if flagged else "ok", messages=messages,
        padded=padded, segmap=segmap, goi=goi, sky=sky, sky_image=sky_img,
    )


# -- one galaxy from its GALFIT block, and one chunk of the workspace ---------------------------


def _blank_result(row: int, galaxy_id: str) -> dict[str, Any]:
    return {"row": row, "id": galaxy_id, "status": "error", "message": "", "padded": False,
            **{c: float("nan") for c in METRIC_COLUMNS}}


def prep_block(path: str | Path, xc: float | None, yc: float | None, *, seed, config: Mapping[str, Any] | None = None) -> PrepResult:
    """:func:`prep_galaxy` on a GALFIT block file (centroid from the catalog, else the header)."""
    from core.io.galfit import read_block

    block = read_block(path)
    if xc is None or not np.isfinite(xc):
        xc = block.value("XC")
    if yc is None or not np.isfinite(yc):
        yc = block.value("YC")
    sky_level = block.value("SKY") if "SKY" in block.params else 0.0
    return prep_galaxy(block.input, block.model, block.residual, xc, yc, seed=seed, config=config,
                       sky_level=sky_level if np.isfinite(sky_level) else 0.0)


def _journal_path(root: Path, start: int) -> Path:
    return Path(root) / JOURNAL_DIR / f"chunk_{start:010d}.json"


def prep_chunk(
    root: str,
    start: int,
    stop: int,
    items: list[tuple[int, str, str, float, float]],
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Prepare the galaxies ``items`` of stamp chunk ``[start, stop)`` and write that chunk.

    This is the unit of parallel work. ``items`` are ``(row, id, block path, gf_xc, gf_yc)`` of the
    rows to (re)do; other rows of the chunk keep their stored stamps. Per-galaxy problems become
    ``"error"`` results; the function never raises for one galaxy. The chunk's results are also
    journaled to ``root/prep/chunk_<start>.json`` (after the stamps are written) so that an
    interrupted run can be resumed.

    Returns
    -------
    list of dict
        One result per item: ``row, id, status, message, padded`` and the metric columns.
    """
    root = Path(root)
    results = []
    try:
        store = StampStore.open(root / "stamps.zarr")
        n = stop - start
        todo_all = len(items) == n
        buffers = {
            k: (np.zeros((n, store.size, store.size), np.uint8) if k == "goi_mask"
                else np.full((n, store.size, store.size), np.nan, np.float32))
            if todo_all else store.read(k, slice(start, stop)).copy()
            for k in STAMP_KINDS
        }
        for row, gid, path, xc, yc in items:
            res = _blank_result(row, gid)
            p = Path(path)
            if not p.is_absolute():
                p = root / p
            try:
                out = prep_block(p, xc, yc, seed=galaxy_seed(config.get("seed", 0), gid), config=config)
            except ValueError as exc:  # PrepError, GalfitBlockError
                res["message"] = str(exc) if str(p) in str(exc) else f"{p}: {exc}"
                for k in STAMP_KINDS:
                    buffers[k][row - start] = 0 if k == "goi_mask" else np.nan
            except Exception as exc:  # noqa: BLE001 — one galaxy never stops the batch
                log.exception("unexpected error preparing %s", gid)
                res["message"] = f"{p}: unexpected {type(exc).__name__}: {exc}"
                for k in STAMP_KINDS:
                    buffers[k][row - start] = 0 if k == "goi_mask" else np.nan
            else:
                for k in STAMP_KINDS:
                    buffers[k][row - start] = out.stamps[k]
                res.update(status=out.status, message=out.message, padded=out.padded, **out.metrics)
            results.append(res)
        for k in STAMP_KINDS:
            store.write(k, start, buffers[k])
    except Exception as exc:  # noqa: BLE001 — e.g. the store cannot be written
        log.exception("chunk %d-%d failed", start, stop)
        results = []
        for row, gid, path, _, _ in items:
            res = _blank_result(row, gid)
            res["message"] = f"chunk {start}-{stop - 1} failed: {type(exc).__name__}: {exc}"
            results.append(res)
    journal = _journal_path(root, start)
    journal.parent.mkdir(exist_ok=True)
    tmp = journal.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"start": start, "stop": stop, "results": results}))
    os.replace(tmp, journal)
    return results


# -- the workspace ------------------------------------------------------------------------------


def _ensure_columns(cat: Table) -> None:
    n = len(cat)
    if "prep_status" not in cat.colnames:
        cat["prep_status"] = Column(["pending"] * n, dtype="U8")
    if "prep_message" not in cat.colnames:
        cat["prep_message"] = Column([""] * n, dtype="U1")
    for c in METRIC_COLUMNS:
        if c not in cat.colnames:
            cat[c] = np.full(n, np.nan)
    if "cutout_padded" not in cat.colnames:
        cat["cutout_padded"] = np.zeros(n, dtype=bool)
    if "split" not in cat.colnames:
        cat["split"] = Column([""] * n, dtype="U8")


class _CatalogUpdater:
    """Holds the catalog's prep columns in memory and writes the catalog atomically."""

    def __init__(self, ws, cat: Table):
        self.ws, self.cat = ws, cat
        self.status = [str(s).strip() or "pending" for s in cat["prep_status"]]
        self.message = [str(s) for s in cat["prep_message"]]
        self.metrics = {c: np.array(cat[c], dtype=np.float64) for c in METRIC_COLUMNS}
        self.padded = np.array(cat["cutout_padded"], dtype=bool)
        self.ids = [str(i) for i in cat["id"]]
        self.last_write = time.monotonic()

    def apply(self, results: list[dict[str, Any]]) -> None:
        for r in results:
            i = int(r["row"])
            if i >= len(self.ids) or self.ids[i] != str(r["id"]):
                log.warning("ignoring a stale prep result for %s (row %d)", r["id"], i)
                continue
            self.status[i], self.message[i], self.padded[i] = r["status"], r["message"], bool(r["padded"])
            for c in METRIC_COLUMNS:
                self.metrics[c][i] = r[c]

    def table(self) -> Table:
        cat = self.cat
        cat["prep_status"] = Column(self.status, dtype=str)
        cat["prep_message"] = Column([m or "" for m in self.message], dtype=str)
        for c in METRIC_COLUMNS:
            cat[c] = self.metrics[c]
        cat["cutout_padded"] = self.padded
        return cat

    def write(self) -> None:
        self.ws.write_catalog(self.table())
        self.last_write = time.monotonic()


def _merge_journal(root: Path, updater: _CatalogUpdater) -> int:
    n = 0
    for path in sorted((root / JOURNAL_DIR).glob("chunk_*.json")):
        try:
            updater.apply(json.loads(path.read_text())["results"])
            n += 1
        except Exception as exc:  # noqa: BLE001
            log.warning("skipping unreadable prep journal %s: %s", path, exc)
    return n


def _clear_journal(root: Path) -> None:
    d = root / JOURNAL_DIR
    if d.is_dir():
        for path in d.glob("chunk_*"):
            path.unlink(missing_ok=True)
        try:
            d.rmdir()
        except OSError:
            pass


def assign_split(ws, cat: Table) -> Table:
    """Fill the catalog's ``split`` column (:func:`core.learn.augment.split_sample`, config ``split``).

    Galaxies flagged for fit quality or whose prep failed are ``"excluded"``.
    """
    from core.learn.augment import split_sample

    cfg = {**DEFAULT_CONFIG["split"], **ws.config.get("split", {})}
    labels = np.array([str(c).strip() for c in cat["catalog_class"]]) if "catalog_class" in cat.colnames \
        else np.full(len(cat), "")
    fq = np.array(cat["fit_quality"], dtype=bool) if "fit_quality" in cat.colnames else np.zeros(len(cat), bool)
    failed = np.array([str(s).strip() == "error" for s in cat["prep_status"]])
    cat["split"] = Column(split_sample(labels, fq | failed, cfg["test_fraction"], cfg["seed"]), dtype="U8")
    return cat


def prep_workspace(ws, scheduler: Any = None, workers: int | None = None, redo: bool = False,
                   progress: bool = True, write_every: float = 30.0) -> Table:
    """Prepare every pending galaxy of a workspace (stamps, metrics, split), in parallel.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace or path
        The workspace (its catalog needs ``id``, ``block``, ``gf_xc``, ``gf_yc``).
    scheduler : None, str or distributed.Client
        Where to run (:func:`core.parallel.run_tasks`): ``None`` for the local scheduler.
    workers : int, optional
        Local workers (default one per core).
    redo : bool
        Redo every galaxy, even those already prepared (also when the cutout size changed).
    progress : bool
        Show a progress bar.
    write_every : float
        Seconds between intermediate catalog writes while chunks finish.

    Returns
    -------
    astropy.table.Table
        The updated catalog (also written to the workspace).
    """
    from core.parallel import describe_scheduler, run_tasks
    from core.workspace.workspace import Workspace

    if not hasattr(ws, "read_catalog"):
        ws = Workspace.open(ws)
    root = Path(ws.root)
    cfg = {**DEFAULT_CONFIG["prep"], **ws.config.get("prep", {})}
    size, chunk = int(cfg["cutout"]), int(cfg["chunk"])
    cat = ws.read_catalog()
    missing = [c for c in ("id", "block") if c not in cat.colnames]
    if missing:
        from core.workspace.workspace import WorkspaceError

        raise WorkspaceError(f"{ws.catalog_path} lacks the column(s) {missing}")
    _ensure_columns(cat)
    n = len(cat)

    store = None
    if ws.stamps_path.exists():
        try:
            store = StampStore.open(ws.stamps_path)
        except OSError:
            store = None
    if store is None or store.n != n or store.size != size or store.chunk != min(chunk, max(n, 1)):
        if store is not None:
            log.warning("stamp store %s does not match the catalog/config (n=%d, size=%d): rebuilding it",
                        ws.stamps_path, n, size)
        store = StampStore.create(ws.stamps_path, n, size, chunk)
        redo = True
    if redo:
        _clear_journal(root)
        cat["prep_status"] = Column(["pending"] * n, dtype="U8")

    updater = _CatalogUpdater(ws, cat)
    if _merge_journal(root, updater):
        log.info("resumed: merged the journal of an interrupted run")
    todo = [i for i in range(n) if updater.status[i] not in FINISHED]
    xs = np.array(cat["gf_xc"], dtype=float) if "gf_xc" in cat.colnames else np.full(n, np.nan)
    ys = np.array(cat["gf_yc"], dtype=float) if "gf_yc" in cat.colnames else np.full(n, np.nan)
    blocks = [str(b).strip() for b in cat["block"]]
    tasks, weights = [], []
    by_chunk: dict[int, list] = {}
    for i in todo:
        by_chunk.setdefault(i // store.chunk, []).append((i, updater.ids[i], blocks[i], float(xs[i]), float(ys[i])))
    for k, items in sorted(by_chunk.items()):
        start = k * store.chunk
        tasks.append((str(root), start, min(start + store.chunk, n), items, cfg))
        weights.append(len(items))
    log.info("prep: %d of %d galaxies to do in %d chunk(s) on the %s", len(todo), n, len(tasks),
             describe_scheduler(scheduler, workers))

    def on_result(_: int, results: list[dict[str, Any]]) -> None:
        updater.apply(results)
        if time.monotonic() - updater.last_write > write_every:
            updater.write()

    run_tasks(prep_chunk, tasks, scheduler=scheduler, workers=workers, on_result=on_result,
              progress=progress, desc="prep", unit="galaxy", weights=weights)
    cat = assign_split(ws, updater.table())
    ws.write_catalog(cat)
    _clear_journal(root)
    return cat


# -- the command line ---------------------------------------------------------------------------


def prep_report(cat: Table) -> str:
    """A readable report: counts per status and every flagged or failed galaxy with its message."""
    status = np.array([str(s).strip() for s in cat["prep_status"]]) if "prep_status" in cat.colnames \
        else np.full(len(cat), "pending")
    lines = ["prep status: " + ", ".join(f"{s} {int(np.sum(status == s))}" for s in PREP_STATUSES)]
    bad = np.nonzero((status == "flagged") | (status == "error"))[0]
    if len(bad):
        width = max(len(str(cat["id"][i])) for i in bad)
        lines.append(f"{'id':<{width}}  {'status':<7}  message")
        for i in bad:
            lines.append(f"{str(cat['id'][i]):<{width}}  {status[i]:<7}  {str(cat['prep_message'][i])}")
    else:
        lines.append("no galaxy was flagged or failed.")
    return "\n".join(lines)
