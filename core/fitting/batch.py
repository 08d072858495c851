"""Fit a list of image files: one GALFIT-format block each, and a summary table.

:func:`fit_images` is what ``resx fit`` runs: for each image it reads the image (and its sigma
map and mask when given), fits it with :func:`core.fitting.fit.fit_to_block`, and records a row
of ``fit_summary.ecsv``. A failed image is recorded with its message and the batch goes on.

As GALFIT does, the image header's ``EXPTIME`` (magnitudes refer to flux / EXPTIME) and
``GAIN`` × ``NCOMBINE`` (Poisson noise in the sigma map when no sigma map is given) are used
when present.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.table import Table

from core.fitting.fit import FIT_PARAMS, SersicFitError, fit_to_block
from core.fitting.sersic import _normalised_psf
from core.io.images import read_image

__all__ = ["SUMMARY_FILE", "block_name", "fit_images"]

log = logging.getLogger(__name__)

SUMMARY_FILE = "fit_summary.ecsv"
_TEXT = ("image", "block", "status", "message")


def block_name(path: str | Path) -> str:
    """``<name>_block.fits`` for an image file ``<name>.fits`` (also .fit, .fts, .fits.gz, .fits.fz)."""
    name = Path(path).name
    for ext in (".fits.gz", ".fit.gz", ".fits.fz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(ext):
            return name[: -len(ext)] + "_block.fits"
    return Path(name).stem + "_block.fits"


def _fit_one(path, psf, psf_name, block: Path, sigma_path, mask_path, zeropoint: float) -> dict:
    image, header = read_image(path, with_header=True)
    exptime = float(header.get("EXPTIME", 1.0) or 1.0)
    gain = header.get("GAIN")
    gain = float(gain) * float(header.get("NCOMBINE", 1) or 1) if gain else None
    sigma = read_image(sigma_path) if sigma_path else None
    mask = read_image(mask_path) != 0 if mask_path else None
    for what, arr in (("sigma", sigma), ("mask", mask)):
        if arr is not None and arr.shape != image.shape:
            raise SersicFitError(f"{what} map shape {arr.shape} differs from the image's {image.shape}")
    fit = fit_to_block(image, psf, block, sigma=sigma, mask=mask, zeropoint=zeropoint, exptime=exptime,
                       gain=gain, input_name=Path(path).name,
                       extra_header={"DATAIN": Path(path).name, "PSF": psf_name})
    row = {"message": "" if fit.converged else f"not converged: {fit.message}", "chi2nu": fit.chi2nu}
    for p in FIT_PARAMS:
        row[p.lower()] = fit.params[p].value
        row[p.lower() + "_flag"] = fit.params[p].flag
    return row


def fit_images(
    images: Sequence[str | Path],
    psf: str | Path,
    out: str | Path,
    *,
    sigmas: Sequence[str | Path | None] | None = None,
    masks: Sequence[str | Path | None] | None = None,
    zeropoint: float = 25.9463,
    progress: bool = True,
) -> Table:
    """Fit every image; write ``<name>_block.fits`` per image and ``fit_summary.ecsv`` in ``out``.

    Parameters
    ----------
    images : sequence of path
        FITS images (the first 2-D image HDU of each is fitted).
    psf : path
        The PSF image (FITS).
    out : path
        Output folder (created).
    sigmas, masks : sequence of path or None, optional
        One noise map / bad-pixel mask (nonzero = masked) per image, or None.
    zeropoint : float
        Magnitude zero point (default: WFC3/F160W AB).
    progress : bool
        A progress bar for more than one image.

    Returns
    -------
    astropy.table.Table
        One row per image: ``image``, ``block``, ``status`` ("ok" | "failed"), ``message``,
        ``chi2nu``, and each parameter's value and flag.

    Raises
    ------
    core.errors.ResxError
        When the PSF cannot be read or is not a usable PSF (nothing is fitted then).
    """
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    psf_image = read_image(psf)
    _normalised_psf(psf_image)
    n = len(images)
    sigmas = list(sigmas) if sigmas is not None else [None] * n
    masks = list(masks) if masks is not None else [None] * n
    if len(sigmas) != n or len(masks) != n:
        raise SersicFitError(f"give one sigma map and one mask per image ({n}), or none")
    rows = []
    for path, sigma_path, mask_path in tqdm(list(zip(images, sigmas, masks)), desc="fit", unit="image",
                                            disable=not progress or n < 2):
        block = out / block_name(path)
        row = {"image": str(path), "block": str(block), "status": "ok", "message": ""}
        try:
            row.update(_fit_one(path, psf_image, Path(psf).name, block, sigma_path, mask_path, zeropoint))
        except Exception as exc:  # noqa: BLE001 - one bad image never stops the batch
            msg = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            row.update(status="failed", message=msg, block="")
            log.warning("fit failed: %s", msg)
            log.debug("fit failed", exc_info=True)
        rows.append(row)
    cols = ["image", "block", "status", "message", "chi2nu"] + [
        c for p in FIT_PARAMS for c in (p.lower(), p.lower() + "_flag")]
    table = Table(rows=[[r.get(c, "" if c in _TEXT or c.endswith("_flag") else np.nan) for c in cols]
                        for r in rows], names=cols)
    table.write(out / SUMMARY_FILE, overwrite=True)
    return table
