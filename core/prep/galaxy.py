"""One galaxy's prep: object-only stamps and residual metrics from its three GALFIT images.

:func:`prep_galaxy` composes the plain functions of :mod:`core.segmentation`,
:mod:`core.prep.residual`, :mod:`core.prep.stamp` and :mod:`core.prep.metrics`:

1. SEP background + extraction on the **original (input) image**, as the paper does (§3.3: "we
   identify sources in the original image"): a 2-D tophat filter kernel of radius 5 px, a
   threshold of 0.75 x the global background rms, a minimum area of 7 px, and the segmentation
   map. The residual is a poor detection image (the galaxy is subtracted, so its segment would
   shrink to its residual structure); the masks found on the original are then applied to the
   residual.
2. The GOI: the segment under the GALFIT centroid (the nearest segment within
   ``goi_search_radius`` px when that pixel is unsegmented; an error if none). A neighbour's
   fitted centre (another component of the block) inside that segment flags a blend.
3. The sky: pixels in no segment, resampled in 5 x 5 px blocks. Where the background has a
   gradient, blocks drawn from elsewhere leave seams; so the sky is also resampled after
   subtracting SEP's smooth background of the sky pixels (``sky_background_box`` px meshes,
   added back where each block lands), from the same draws, and that version is kept when its
   seam ratio (:func:`core.prep.residual.seam_ratio`) is lower by more than :data:`SEAM_GAIN`
   (a flat sky keeps the plain resampling: the background model's own noise is not added to
   it). The seam ratio kept is recorded (``sky_seam``) and flagged above ``seam_max``.
4. The object-only residual ``GOI * residual + sky * (1 - GOI)`` and the cutouts centred on the
   centroid: ``cutout_size`` in ``cutout_unit`` (3 arcsec by default, through the pixel scale;
   ``cutout`` native px when it is unknown), resampled to ``cutout`` x ``cutout`` (50 x 50) stamp
   pixels conserving flux (:mod:`core.prep.stamp`). Where a cutout runs off the image it is
   padded with resampled sky (model with the fitted sky level, GOI mask with 0) and flagged
   ``cutout_padded``. The stamp's sky sigma is measured again after resampling
   (``stamp_sigma``, for scaling and display). A GOI with more than ``goi_outside_max`` of its
   model flux outside the cutout (a galaxy larger than the cutout) or covering more than
   ``goi_fill_max`` of it is flagged.
5. :class:`core.prep.metrics.ResidualMetrics` — sky sigma, SPF (+ parts), Bumpiness, RFF over the
   GOI of the **full** GALFIT image on its native pixels (not only the cutout, so light beyond
   the cutout counts; not on the resampled stamp, whose noise resampling correlates).

:func:`prep_block` does the same from a GALFIT block file. Problems the result cannot stand
behind set ``status = "flagged"`` with a code in :attr:`PrepResult.flags` (:data:`FLAG_CODES`)
and a sentence in :attr:`PrepResult.messages`; notes that change nothing (a GOI found as the
nearest segment, an unknown pixel scale) are messages only.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.prep.metrics import ResidualMetrics
from core.prep.residual import PrepError, cut_region, object_only, resample_sky, seam_ratio, sky_background
from core.prep.stamp import cutout_side, resample_region, stamp_origin
from core.segmentation import SegmentationError, as_sep_array, extract_segments, goi_mask, sky_mask
from core.workspace.config import DEFAULT_CONFIG

__all__ = ["FLAG_CODES", "GEOMETRY_COLUMNS", "PrepResult", "galaxy_seed", "prep_block", "prep_galaxy"]

#: What each flag of :attr:`PrepResult.flags` means (``prep_flags`` in the catalog; the ingest's
#: ``goi_component_*`` flags join them there).
FLAG_CODES: dict[str, str] = {
    "goi_component_far": "no Sersic component of the block lies within catalog.goi_radius of the target",
    "goi_component_ambiguous": "two Sersic components lie within catalog.goi_radius of the target",
    "goi_blend": "another fitted component's centre lies inside the GOI segment",
    "goi_off_stamp": "galaxy larger than the cutout: its GOI segment holds model flux outside the stamp",
    "goi_fills_stamp": "the GOI segment covers nearly the whole stamp",
    "cutout_padded": "the cutout runs off the image: padded with resampled sky",
    "sky_small_blocks": "no source-free sky_block x sky_block block: sky resampled from smaller ones",
    "sky_seams": "the resampled sky shows block seams (sky_seam > seam_max)",
    "metric_failed": "a residual metric could not be measured",
}

#: Per-galaxy geometry written by :func:`prep_galaxy` (catalog columns).
GEOMETRY_COLUMNS: tuple[str, ...] = ("pixel_scale", "cutout_px", "cutout_arcsec", "stamp_sigma", "sky_seam",
                                     "goi_outside", "goi_fill")


def galaxy_seed(seed: int, galaxy_id: str) -> list[int]:
    """A per-galaxy seed: the run's seed and a stable hash of the id (independent of chunking)."""
    return [int(seed), zlib.crc32(str(galaxy_id).encode())]


@dataclass
class PrepResult:
    """The prepared stamps and metrics of one galaxy.

    Attributes
    ----------
    stamps : dict of str -> numpy.ndarray
        ``size`` x ``size`` stamps keyed by :data:`core.io.stamps.STAMP_KINDS`.
    metrics : dict of str -> float
        Keyed by :data:`core.prep.metrics.METRIC_COLUMNS`.
    status : str
        ``"ok"`` or ``"flagged"``.
    messages : list of str
        Flags and notes, in words.
    flags : list of str
        Codes of :data:`FLAG_CODES`; ``status`` is ``"flagged"`` exactly when there is one.
    padded : bool
        Whether the cutout ran off the image.
    scale_source : str
        Where the pixel scale came from: ``"config"`` (``prep.pixel_scale``), the header key
        (``"WCS"``, ``"PIXSCALE"``, ... by :func:`prep_block`), or ``""`` (unknown / given).
    geometry : dict of str -> float
        Keyed by :data:`GEOMETRY_COLUMNS`: the pixel scale used (arcsec/px, NaN when unknown),
        the cutout's side in native px and in arcsec, the resampled stamp's sky sigma, the sky's
        seam ratio, the share of the GOI's model flux outside the cutout, the share of the
        cutout the GOI covers.
    segmap, goi, sky, sky_image : numpy.ndarray
        Full-frame intermediate products (segmentation map, masks, resampled sky).
    """

    stamps: dict[str, np.ndarray]
    metrics: dict[str, float]
    status: str = "ok"
    messages: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    padded: bool = False
    scale_source: str = ""
    geometry: dict[str, float] = field(default_factory=dict)
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


def _stamp_sigma(stamp: np.ndarray, goi: np.ndarray) -> float:
    """Sky sigma of a resampled stamp, for scaling and display: 1.4826 x the median absolute
    deviation of its pixels outside the GOI (robust to the interlopers' sky; NaN with fewer than
    4 such pixels)."""
    pixels = np.asarray(stamp, dtype=np.float64)[~goi]
    if pixels.size < 4:
        return float("nan")
    return float(1.4826 * np.median(np.abs(pixels - np.median(pixels))))


def _backgrounds(images: list[np.ndarray], sky: np.ndarray, box: int, messages: list[str]) -> list | None:
    """SEP's smooth sky background of each image, or ``None`` (box 0, or SEP failed: noted)."""
    if box <= 0:
        return None
    try:
        return [sky_background(img, sky, box) for img in images]
    except PrepError as exc:
        messages.append(f"{exc}; sky resampled without a background model")
        return None


#: The background-subtracted sky is kept only when its seam ratio is lower than the plain one's by
#: more than this (the background model's own noise, ~0.13 sigma on 8 px meshes, is then not
#: added to a flat sky).
SEAM_GAIN = 0.05


def _full_sky(res: np.ndarray, sky: np.ndarray, goi: np.ndarray, block: int, box: int,
              rng: np.random.Generator, messages: list[str]):
    """The resampled sky of the whole frame: ``(sky image, block used, seam ratio, background)``.

    With ``box > 0`` the sky is resampled twice from the same draws — as it is, and with SEP's
    smooth background subtracted and added back — and the background version is kept where it
    has fewer seams (by :data:`SEAM_GAIN`); the background returned is ``None`` otherwise.
    """
    bkg = _backgrounds([res], sky, box, messages)
    if bkg is None:
        (plain,), used = resample_sky([res], sky, res.shape, block, rng)
        return plain, used, seam_ratio(plain, used, where=~goi) if used > 1 else float("nan"), None
    # one call, so both versions come from the same draws (and the generator moves on as without)
    (plain, smooth), used = resample_sky([res, res], sky, res.shape, block, rng, backgrounds=[None, bkg[0]])
    if used == 1:
        return plain, used, float("nan"), None
    seam, seam_bkg = seam_ratio(plain, used, where=~goi), seam_ratio(smooth, used, where=~goi)
    if np.isfinite(seam) and np.isfinite(seam_bkg) and seam_bkg < seam - SEAM_GAIN:
        return smooth, used, seam_bkg, bkg
    return plain, used, seam, None


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
    pixel_scale: float = math.nan,
    re: float = math.nan,
    neighbours: Sequence[tuple[int, float, float]] = (),
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
    pixel_scale : float
        arcsec/px of the images (NaN: unknown; config ``pixel_scale`` overrides it).
    re : float
        The fitted effective radius, px (for ``cutout_unit = "re"``).
    neighbours : sequence of (number, x, y)
        The block's other fitted components (1-based centres): one inside the GOI segment flags
        a blend.

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
    flags: list[str] = []

    def flag(code: str, text: str) -> None:
        flags.append(code)
        messages.append(text)

    if dist > 0:
        messages.append(f"GOI is the nearest segment, {dist:.1f} px from the centroid")
    if np.count_nonzero(sky) < 25:
        raise PrepError(f"only {np.count_nonzero(sky)} sky pixels: the image is covered by sources")
    inside = [(k, nx_, ny_) for k, nx_, ny_ in neighbours
              if 0 <= round(ny_ - 1) < ny and 0 <= round(nx_ - 1) < nx and goi[round(ny_ - 1), round(nx_ - 1)]]
    if inside:
        where = ", ".join(f"{k} at ({px:.1f}, {py:.1f})" for k, px, py in inside)
        flag("goi_blend", f"the GOI segment also holds fitted component(s) {where}: a blend")

    rng = np.random.default_rng(seed)
    block = int(cfg["sky_block"])
    box = int(cfg["sky_background_box"])
    sky_img, used, seam, res_bkg = _full_sky(res, sky, goi, block, box, rng, messages)
    if used < block:
        flag("sky_small_blocks", f"no source-free {block}x{block} block; sky resampled from {used}x{used} blocks")
    if np.isfinite(seam) and seam > float(cfg["seam_max"]):
        flag("sky_seams", f"the resampled sky shows block seams (edge/inside pixel differences {seam:.2f} > "
                          f"{float(cfg['seam_max']):g})")
    obj = object_only(res, goi, sky_img)

    # the cutout: its side in native px, and its resampling to the stamp
    override = cfg.get("pixel_scale") is not None
    scale = float(cfg["pixel_scale"]) if override else float(pixel_scale)
    if not (np.isfinite(scale) and scale > 0):
        scale = float("nan")
    size = int(cfg["cutout"])
    side, note = cutout_side(float(cfg["cutout_size"]), str(cfg["cutout_unit"]), stamp=size,
                             pixel_scale=scale, re=float(re))
    if note:
        messages.append(note)
    n = int(math.ceil(side - 1e-9))
    y0, x0 = stamp_origin(x, y, side)
    padded = y0 < 0 or x0 < 0 or y0 + n > ny or x0 + n > nx
    if padded:
        bkgs = _backgrounds([data, res], sky, box, messages) if res_bkg is not None else None
        (fill_in, fill_res), _ = resample_sky([data, res], sky, (n, n), used, rng, backgrounds=bkgs,
                                              origin=(y0, x0))
        flag("cutout_padded", f"cutout runs off the {nx}x{ny} image: padded with resampled sky")
    else:
        fill_in = fill_res = 0.0

    def stamp(image: np.ndarray, fill, mean: bool = False) -> np.ndarray:
        region, _ = cut_region(image, y0, x0, n, n, fill)
        return resample_region(region, side, size, mean=mean)

    goi_stamp = stamp(goi.astype(np.float64), 0.0, mean=True) >= 0.5
    stamps = {
        "original": stamp(data, fill_in),
        "model": stamp(mod, float(sky_level)),
        "residual": stamp(res, fill_res),
        "object_only": stamp(obj, fill_res),
        "goi_mask": goi_stamp.astype(np.uint8),
    }

    # the GOI against the cutout: larger than it, or filling it
    footprint = np.zeros((ny, nx), bool)
    footprint[max(0, y0):max(0, y0 + n), max(0, x0):max(0, x0 + n)] = True
    light = np.clip(mod - float(sky_level), 0.0, None) * goi
    total = float(light.sum())
    outside = float(light[~footprint].sum()) / total if total > 0 else float(np.mean(~footprint[goi]))
    covered = float(np.count_nonzero(goi & footprint)) / (side * side)
    label = f"{side * scale:.2f} arcsec ({side:.0f} px)" if np.isfinite(scale) else f"{side:.0f} px"
    if outside > float(cfg["goi_outside_max"]):
        flag("goi_off_stamp", f"galaxy larger than the cutout: {100 * outside:.0f}% of the GOI's model flux lies "
                              f"outside the {label} stamp")
    if covered > float(cfg["goi_fill_max"]):
        flag("goi_fills_stamp", f"the GOI segment covers {100 * covered:.0f}% of the {label} stamp")

    rm = ResidualMetrics(res, mod - float(sky_level), goi, sky, rff_absolute=bool(cfg["rff_absolute"]))
    metrics = rm.as_dict()
    if rm.flags:
        flag("metric_failed", "; ".join(rm.flags))
    geometry = {
        "pixel_scale": scale, "cutout_px": side, "cutout_arcsec": side * scale,
        "stamp_sigma": _stamp_sigma(stamps["object_only"], goi_stamp), "sky_seam": seam,
        "goi_outside": outside, "goi_fill": covered,
    }
    return PrepResult(
        stamps=stamps, metrics=metrics, status="flagged" if flags else "ok", messages=messages, flags=flags,
        padded=padded, scale_source="config" if override else "", geometry=geometry, segmap=segmap, goi=goi, sky=sky, sky_image=sky_img,
    )


def prep_block(path: str | Path, xc: float | None, yc: float | None, *, seed, config: Mapping[str, Any] | None = None,
               component: int | None = None, pixel_scale: float | None = None, scale_source: str = "") -> PrepResult:
    """:func:`prep_galaxy` on a GALFIT block file.

    Parameters
    ----------
    path : str or Path
        The block.
    xc, yc : float or None
        The centroid (1-based); ``None`` or NaN: the galaxy's component in the header.
    seed, config
        As :func:`prep_galaxy`.
    component : int, optional
        The galaxy's GALFIT component (the catalog's ``gf_component``); default: the one
        :func:`core.io.galfit.read_block` chooses (nearest the block centre). The others are the
        neighbours.
    pixel_scale : float, optional
        arcsec/px (as the catalog read it at ingest); default: from the block's headers
        (:func:`core.io.calibration.pixel_scale`). Config ``prep.pixel_scale`` overrides both.
    scale_source : str
        Where ``pixel_scale`` came from (recorded in :attr:`PrepResult.scale_source`).
    """
    from core.io.calibration import pixel_scale as header_scale
    from core.io.galfit import read_block

    block = read_block(path, component=component if component is not None and component > 0 else None)
    if xc is None or not np.isfinite(xc):
        xc = block.value("XC")
    if yc is None or not np.isfinite(yc):
        yc = block.value("YC")
    if pixel_scale is None or not np.isfinite(pixel_scale):
        h = block.headers
        pixel_scale, scale_source = header_scale(h["input"], h["model"], h["primary"])
    sky_level = block.value("SKY") if "SKY" in block.params else 0.0
    neighbours = [(c.number, *c.position) for c in block.neighbours]
    result = prep_galaxy(block.input, block.model, block.residual, xc, yc, seed=seed, config=config,
                         sky_level=sky_level if np.isfinite(sky_level) else 0.0, pixel_scale=pixel_scale,
                         re=block.value("RE"), neighbours=neighbours)
    if result.scale_source != "config":
        result.scale_source = scale_source if np.isfinite(result.geometry["pixel_scale"]) else ""
    return result
