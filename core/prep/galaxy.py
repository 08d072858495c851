"""One galaxy's prep: object-only stamps and residual metrics from its three GALFIT images.

:func:`prep_galaxy` composes the plain functions of :mod:`core.segmentation`,
:mod:`core.prep.residual` and :mod:`core.prep.metrics`:

1. SEP background + extraction on the **original (input) image**, as the paper does (§3.3: "we
   identify sources in the original image"): a 2-D tophat filter kernel of radius 5 px, a
   threshold of 0.75 x the global background rms, a minimum area of 7 px, and the segmentation
   map. The residual is a poor detection image (the galaxy is subtracted, so its segment would
   shrink to its residual structure); the masks found on the original are then applied to the
   residual.
2. The GOI: the segment under the GALFIT centroid (the nearest segment within
   ``goi_search_radius`` px when that pixel is unsegmented; an error if none).
3. The sky: pixels in no segment, resampled in 5 x 5 px blocks.
4. The object-only residual ``GOI * residual + sky * (1 - GOI)`` and the ``cutout`` x ``cutout``
   (50 x 50) stamps centred on the centroid; where a stamp runs off the image it is padded with
   resampled sky (model with the fitted sky level, GOI mask with 0) and flagged ``cutout_padded``.
5. :class:`core.prep.metrics.ResidualMetrics` — sky sigma, SPF (+ parts), Bumpiness, RFF over the
   GOI of the **full** GALFIT image (not only the cutout, so light beyond the cutout counts).

:func:`prep_block` does the same from a GALFIT block file.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.prep.metrics import ResidualMetrics
from core.prep.residual import PrepError, cutout, cutout_origin, object_only, resample_sky
from core.segmentation import SegmentationError, as_sep_array, extract_segments, goi_mask, sky_mask
from core.workspace.config import DEFAULT_CONFIG

__all__ = ["PrepResult", "galaxy_seed", "prep_block", "prep_galaxy"]


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

    try:
        _, segmap, _ = extract_segments(
            data, kernel_radius=cfg["kernel_radius"], thresh=cfg["thresh"], minarea=cfg["minarea"],
            deblend_nthresh=cfg["deblend_nthresh"], deblend_cont=cfg["deblend_cont"],
        )
        goi, _, dist = goi_mask(segmap, x, y, cfg["goi_search_radius"])
    except SegmentationError as exc:
        raise PrepError(str(exc)) from exc
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
