"""Fit a list of galaxies: one GALFIT-format block each, and a summary table merged across runs.

:func:`fit_images` is what ``resx fit`` runs. For each :class:`core.fitting.jobs.FitJob` it

1. reads the image HDU (a selector chooses one of a multi-extension file; several image HDUs and
   no selector is that image's error, listing them), its sigma or weight map and mask;
2. reads the units and calibration from the header (:mod:`core.io.calibration`): the exposure
   time magnitudes divide by (none for images in e⁻/s or MJy/sr), the zeropoint (``--zeropoint``,
   ``MAGZPT``/``MAGZP``/``ZP``, HST's ``PHOTFLAM``/``PHOTPLAM`` as AB), the pixel scale (WCS or
   ``PIXSCALE``); and the noise's Poisson term (``GAIN`` × ``NCOMBINE`` for counts, as GALFIT;
   ``EXPTIME`` for e⁻/s);
3. reads and prepares its PSF once per file (:func:`core.fitting.psf.prepare_psf`: checked,
   recentred, normalised; ``"none"``: no PSF);
4. places the target (``--target`` / ``x, y`` in pixels; ``--radec`` / ``ra, dec`` through the
   WCS; default the image centre) and fits with :func:`core.fitting.fit.fit_to_block`, which
   refuses an image with no source within ``target_radius`` px of the target;
5. records a row: ``status`` is ``"ok"``, ``"flagged"`` (a block was written, but ``fit_flags``
   says why not to trust it as it is: a parameter at its bound, a centre in a masked
   neighbour...) or ``"error"`` (no block; ``message`` says why). One bad image never stops the
   batch.

``fit_summary.ecsv`` in the output folder is **merged** with the one already there: a rerun on
some images replaces their rows (by ``id``, the block's name) and keeps the others. An image that
now fails loses the block an earlier run wrote for it, so the folder and the summary agree.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from astropy.table import Table

from core.errors import ResxError
from core.fitting.fit import FIT_PARAMS, TARGET_RADIUS, SersicFitError, fit_to_block
from core.fitting.jobs import FitJob, block_name, check_unique, job_id
from core.fitting.psf import PSF_TOL, PreparedPSF, PSFError, delta_psf, prepare_psf
from core.io import calibration
from core.io.images import read_fits_image

__all__ = ["DEFAULT_ZEROPOINT", "SUMMARY_COLUMNS", "SUMMARY_FILE", "block_name", "fit_images"]

log = logging.getLogger(__name__)

SUMMARY_FILE = "fit_summary.ecsv"
#: Zeropoint used when neither the job, ``--zeropoint`` nor the header gives one (WFC3/F160W AB).
DEFAULT_ZEROPOINT = 25.9463

_TEXT = ("id", "image", "hdu", "block", "status", "fit_flags", "message", "target_source", "psf",
         "noise", "bunit", "exptime_source", "zp_source", "pixscale_source", "fitted_at")
#: The summary's columns, in order: text columns, numbers, and each parameter's value, error, flag.
SUMMARY_COLUMNS = (
    "id", "image", "hdu", "block", "status", "fit_flags", "message",
    "target_x", "target_y", "target_source", "target_dist",
    "psf", "psf_dx", "psf_dy", "psf_shifted", "noise",
    "bunit", "exptime", "exptime_source", "zeropoint", "zp_source", "pixscale", "pixscale_source",
    "chi2nu", *[c for p in FIT_PARAMS for c in (p.lower(), p.lower() + "_err", p.lower() + "_flag")],
    "fitted_at")


def _ascii(text: Any) -> str:
    """Header values must be ASCII: other characters as backslash escapes."""
    return str(text).encode("ascii", "backslashreplace").decode("ascii")


class _PSFs:
    """PSF files read and prepared once each; a bad one is that job's error (and every job's
    that names it), not the batch's."""

    def __init__(self, tol: float | None):
        self.tol = tol
        self.cache: dict[str, PreparedPSF | Exception] = {}

    def get(self, spec: str) -> PreparedPSF:
        if spec not in self.cache:
            try:
                array = delta_psf() if spec.lower() == "none" else read_fits_image(spec).data
                prepared = prepare_psf(array, self.tol)
                if prepared.shifted:
                    log.info("PSF %s: %s", spec, prepared.describe())
                self.cache[spec] = prepared
            except (ResxError, PSFError) as exc:
                self.cache[spec] = exc
        got = self.cache[spec]
        if isinstance(got, Exception):
            raise SersicFitError(f"PSF: {got}" if spec in str(got) else f"PSF {spec}: {got}") from got
        return got


_WCS_KEYS = ("WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2",
             "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2",
             "CROTA2", "LONPOLE", "LATPOLE", "RADESYS", "EQUINOX")
_COPIED_KEYS = ("BUNIT", "EXPTIME", "GAIN", "NCOMBINE", "TELESCOP", "INSTRUME", "DETECTOR", "FILTER",
                "PHOTFLAM", "PHOTPLAM", "PHOTZPT", "PHOTMJSR", "PIXAR_SR")


def _input_cards(header) -> dict[str, Any]:
    """The image header's cards GALFIT's input HDU would carry: its WCS and photometric keys."""
    cards = {}
    for key in _WCS_KEYS + _COPIED_KEYS:
        if key in header:
            value = header[key]
            if isinstance(value, str):
                value = _ascii(value)
            elif not isinstance(value, (int, float, bool, np.integer, np.floating, np.bool_)):
                continue
            cards[key] = value
    return cards


def _gain(header, kind: str, exptime_key: float | None) -> tuple[float | None, str]:
    """Electrons per image unit for the Poisson term of the noise, and how it was found."""
    gain = calibration.positive_value(header, "GAIN")
    bunit = str(header.get("BUNIT", "")).lower()
    if kind == "rate":
        if exptime_key is None:
            return None, "sky rms (a rate image without EXPTIME: no Poisson term)"
        if "e" in bunit.replace("/s", "").replace("sec", ""):  # electron(s)/s, e-/s
            return exptime_key, f"sky rms + Poisson (EXPTIME {exptime_key:g} e- per e-/s)"
        if gain is not None:
            return gain * exptime_key, f"sky rms + Poisson (GAIN x EXPTIME = {gain * exptime_key:g})"
        return None, "sky rms (no GAIN for a count-rate image)"
    if kind == "surface brightness":
        return None, "sky rms"
    if gain is not None:
        ncomb = calibration.positive_value(header, "NCOMBINE") or 1.0
        return gain * ncomb, f"sky rms + Poisson (GAIN x NCOMBINE = {gain * ncomb:g})"
    return None, "sky rms"


def _target(job: FitJob, header, default_source: str) -> tuple[tuple[float, float] | None, str]:
    if job.target is not None:
        return (float(job.target[0]), float(job.target[1])), job.target_source or "--target"
    if job.radec is not None:
        wcs = calibration.celestial_wcs(header)
        if wcs is None:
            raise SersicFitError(f"RA, Dec ({job.radec[0]:.6f}, {job.radec[1]:.6f}) given but the image "
                                 "has no celestial WCS: give the position in pixels (--target X,Y)")
        x, y = wcs.celestial.all_world2pix([[job.radec[0], job.radec[1]]], 0)[0]
        if not (np.isfinite(x) and np.isfinite(y)):
            raise SersicFitError(f"RA, Dec ({job.radec[0]:.6f}, {job.radec[1]:.6f}) has no pixel position "
                                 "in the image's WCS")
        return (float(x) + 1.0, float(y) + 1.0), job.target_source or "--radec"
    return None, default_source


def _noise(job: FitJob, shape) -> tuple[np.ndarray | None, np.ndarray | None, str | None]:
    """(sigma map, extra bad pixels, description) from the job's sigma or weight map."""
    if job.sigma and job.weight:
        raise SersicFitError("give a sigma map or a weight map, not both")
    if job.sigma:
        sigma = read_fits_image(job.sigma).data
        if sigma.shape != shape:
            raise SersicFitError(f"sigma map shape {sigma.shape} differs from the image's {shape}")
        return sigma, None, f"sigma map {Path(job.sigma).name}"
    if job.weight:
        weight = read_fits_image(job.weight).data
        if weight.shape != shape:
            raise SersicFitError(f"weight map shape {weight.shape} differs from the image's {shape}")
        bad = ~(np.isfinite(weight) & (weight > 0))
        if bad.all():
            raise SersicFitError(f"weight map {job.weight} has no positive weight")
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.where(bad, np.inf, 1.0 / np.sqrt(np.where(bad, 1.0, weight)))
        return sigma, bad, f"weight map {Path(job.weight).name} (sigma = 1/sqrt(w), w <= 0 masked)"
    return None, None, None


def _fit_one(job: FitJob, block: Path, psfs: _PSFs, default_psf: str | None, options: dict) -> dict:
    row: dict[str, Any] = {}
    image = read_fits_image(job.image)
    header = image.header
    row["hdu"] = image.label
    row["bunit"] = _ascii(str(header.get("BUNIT", "")).strip())
    try:
        exptime, exp_source = calibration.exposure_time(
            header, job.exptime if job.exptime is not None else options["exptime"])
    except ValueError as exc:
        raise SersicFitError(str(exc)) from None
    zp_override = job.zeropoint if job.zeropoint is not None else options["zeropoint"]
    zp, zp_source = calibration.zeropoint(header, zp_override, DEFAULT_ZEROPOINT)
    if zp_source.startswith("default"):
        zp_source = f"{zp_source}; {DEFAULT_ZEROPOINT} (WFC3/F160W AB) used"
    if options["pixscale"] is not None:
        scale, scale_source = float(options["pixscale"]), "--pixscale"
    else:
        scale, scale_source = calibration.pixel_scale(header)
    row.update(exptime=exptime, exptime_source=exp_source, zeropoint=zp, zp_source=zp_source,
               pixscale=scale, pixscale_source=scale_source or "unknown")

    psf_spec = job.psf or default_psf
    if not psf_spec:
        raise SersicFitError("no PSF: give --psf FILE (or --psf none), or a psf column in the targets table")
    row["psf"] = psf_spec
    psf = psfs.get(psf_spec)
    row.update(psf_dx=psf.dx, psf_dy=psf.dy, psf_shifted=psf.shifted)

    sigma, bad_weight, noise = _noise(job, image.data.shape)
    mask = None
    if job.mask:
        mask = read_fits_image(job.mask).data
        if mask.shape != image.data.shape:
            raise SersicFitError(f"mask shape {mask.shape} differs from the image's {image.data.shape}")
        mask = mask != 0
    if bad_weight is not None:
        mask = bad_weight if mask is None else (mask | bad_weight)
    gain = None
    if sigma is None:
        gain, noise = _gain(header, calibration.bunit_kind(header.get("BUNIT")),
                            calibration.positive_value(header, "EXPTIME"))
    row["noise"] = noise
    target, target_source = _target(job, header, "image centre")
    row["target_source"] = target_source

    model_header = {
        "DATAIN": (_ascii(job.image), "input image"),
        "PSF": (_ascii(psf_spec), "PSF image"),
        "SIGMA": (_ascii(job.sigma or job.weight or "none"), "noise: " + ("weight map" if job.weight else
                                                                          "sigma map" if job.sigma else "none")),
        "MASK": (_ascii(job.mask or "none"), "bad-pixel mask"),
        "BUNIT": (row["bunit"], "units of the input image"),
        "EXPTIME": (float(exptime), "used: mag = MAGZPT - 2.5 log10(flux / EXPTIME)"),
        "EXPSRC": (_ascii(exp_source), "where EXPTIME came from"),
        "ZPSOURCE": (_ascii(zp_source), "where MAGZPT came from"),
        "NOISE": (_ascii(noise), "noise model"),
        "TGTSRC": (_ascii(target_source), "where the target came from"),
    }
    if math.isfinite(scale):
        model_header["PIXSCALE"] = (float(scale), "[arcsec/pixel] pixel scale")
    model_header["PSCALSRC"] = (_ascii(scale_source or "unknown"), "where PIXSCALE came from")
    fit = fit_to_block(image.data, psf, block, sigma=sigma, mask=mask, zeropoint=zp, exptime=exptime,
                       gain=gain, target=target, target_radius=options["target_radius"],
                       input_name=_ascii(Path(image.path).name), extra_header=model_header,
                       input_header=_input_cards(header))
    y0, y1, x0, x1 = fit.box
    row.update(target_x=fit.target[0], target_y=fit.target[1], target_dist=fit.target_distance,
               chi2nu=fit.chi2nu, fit_flags=",".join(fit.flags),
               status="flagged" if fit.flags else "ok",
               message="; ".join(fit.notes[f] for f in fit.flags))
    for p in FIT_PARAMS:
        row[p.lower()] = fit.params[p].value
        row[p.lower() + "_err"] = fit.params[p].error
        row[p.lower() + "_flag"] = fit.params[p].flag
    return row


def _jobs(images, sigmas, masks, weights) -> list[FitJob]:
    n = len(images)
    lists = {"sigma": sigmas, "mask": masks, "weight": weights}
    for what, values in lists.items():
        if values is not None and len(values) != n:
            raise SersicFitError(f"give one {what} map per image ({n}), or none")
    jobs = []
    for k, item in enumerate(images):
        job = item if isinstance(item, FitJob) else FitJob(image=str(item))
        for what, values in lists.items():
            if values is not None and values[k] is not None and getattr(job, what) is None:
                setattr(job, what, str(values[k]))
        jobs.append(job)
    return jobs


def fit_images(
    images: Sequence[str | Path | FitJob],
    psf: str | Path | None,
    out: str | Path,
    *,
    sigmas: Sequence[str | Path | None] | None = None,
    masks: Sequence[str | Path | None] | None = None,
    weights: Sequence[str | Path | None] | None = None,
    zeropoint: float | None = None,
    exptime: float | None = None,
    pixscale: float | None = None,
    target_radius: float | None = TARGET_RADIUS,
    psf_tol: float | None = PSF_TOL,
    progress: bool = True,
) -> Table:
    """Fit every image; write ``<id>_block.fits`` per galaxy and merge ``fit_summary.ecsv`` in ``out``.

    Parameters
    ----------
    images : sequence of path or FitJob
        FITS images (``file.fits[N]``, ``[EXTNAME]`` or ``[EXTNAME,EXTVER]`` choose an HDU), or
        jobs saying more (target, PSF, noise... per image; :class:`core.fitting.jobs.FitJob`).
    psf : path, "none" or None
        The PSF of every job that names none; ``"none"`` for no PSF. None: every job names one.
    out : path
        Output folder (created).
    sigmas, masks, weights : sequence of path or None, optional
        One noise map / bad-pixel mask (nonzero = masked) / inverse-variance weight map
        (``sigma = 1/sqrt(w)``, ``w <= 0`` masked) per image, or None; a job's own wins.
    zeropoint, exptime : float, optional
        Override the header's (a job's own wins); see :mod:`core.io.calibration`.
    pixscale : float, optional
        Pixel scale, arcsec, written into the blocks (default: the WCS or header's).
    target_radius : float or None
        A source's centre must lie within this many px of the target (default 5).
    psf_tol : float or None
        Recentre a PSF whose centroid is more than this many px off (default 0.1).
    progress : bool
        A progress bar for more than one image.

    Returns
    -------
    astropy.table.Table
        This run's rows (:data:`SUMMARY_COLUMNS`): ``status`` "ok" | "flagged" | "error",
        ``fit_flags``, ``message``, what was read (HDU, units, exposure time, zeropoint, pixel
        scale and where each came from), the target, the PSF's offset, and each parameter's value,
        error and flag. ``fit_summary.ecsv`` holds these merged with earlier runs' rows.

    Raises
    ------
    core.errors.ResxError
        When the default PSF cannot be read or used, or two jobs would write one block (nothing
        is fitted then).
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(list(images), sigmas, masks, weights)
    check_unique(jobs, "resx fit")
    psfs = _PSFs(psf_tol)
    default_psf = None if psf is None else str(psf)
    if default_psf is not None and any(j.psf is None for j in jobs):
        psfs.get(default_psf)  # a bad default PSF stops the run before any fit
    options = {"zeropoint": zeropoint, "exptime": exptime, "pixscale": pixscale,
               "target_radius": target_radius}
    rows = []
    try:
        for job in tqdm(jobs, desc="fit", unit="image", disable=not progress or len(jobs) < 2):
            block = out / f"{job.name}_block.fits"
            row = {"id": job.name, "image": job.image, "block": block.name, "status": "ok", "message": ""}
            try:
                row.update(_fit_one(job, block, psfs, default_psf, options))
            except Exception as exc:  # noqa: BLE001 - one bad image never stops the batch
                msg = str(exc) if str(job.image) in str(exc) else f"{job.image}: {exc}"
                if not isinstance(exc, ResxError):
                    msg = f"{msg} ({type(exc).__name__})"
                    log.debug("fit failed", exc_info=True)
                if block.exists():
                    block.unlink()
                    msg += f" (the earlier {block.name} was removed)"
                row.update(status="error", message=msg, block="")
                log.warning("fit failed: %s", msg)
            row["fitted_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            rows.append(row)
    finally:  # an interrupted run keeps the rows of what it fitted
        if rows:
            _merge_summary(out / SUMMARY_FILE, rows)
    return _table(rows)


def _table(rows: list[dict]) -> Table:
    def value(r: dict, c: str):
        v = r.get(c)
        if v is None or np.ma.is_masked(v):
            return "" if c in _TEXT or c.endswith("_flag") else (False if c == "psf_shifted" else np.nan)
        return v

    table = Table(rows=[[value(r, c) for c in SUMMARY_COLUMNS] for r in rows] or None, names=SUMMARY_COLUMNS,
                  dtype=None if rows else [str if c in _TEXT or c.endswith("_flag") else float
                                           for c in SUMMARY_COLUMNS])
    table.meta["comments"] = ["resx fit: one row per galaxy; merged across runs by id"]
    return table


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on ``path.lock`` while the summary is read, merged and written (POSIX)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _merge_summary(path: Path, rows: list[dict]) -> None:
    """Replace the rows of these ids in the summary at ``path`` (keeping the others), atomically."""
    with _locked(path):
        old: list[dict] = []
        if path.exists():
            try:
                prev = Table.read(path, format="ascii.ecsv")
                old = [{c: prev[c][i] for c in prev.colnames} for i in range(len(prev))]
                for r in old:  # a summary of an older version: no id column
                    if not str(r.get("id", "") or ""):
                        r["id"] = job_id(str(r.get("image", "")))
            except Exception as exc:  # noqa: BLE001 - keep the unreadable file, start a new one
                backup = path.with_name(path.name + ".unreadable")
                os.replace(path, backup)
                log.warning("%s could not be read (%s); kept as %s, a new summary started", path, exc,
                            backup.name)
        new = {r["id"]: r for r in rows}
        merged = [new.pop(str(r.get("id", "")), r) for r in old]
        merged.extend(r for r in rows if r["id"] in new)
        table = _table(merged)
        tmp = path.with_name(path.name + ".tmp")
        table.write(tmp, format="ascii.ecsv", overwrite=True)
        os.replace(tmp, path)
