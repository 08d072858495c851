"""What ``resx fit`` fits: one :class:`FitJob` per galaxy, from the command line or a table.

A job names the image (with an HDU selector where the file has several:
:func:`core.io.images.parse_selector`), its PSF (``"none"`` for no PSF), its noise (a sigma map or
an inverse-variance weight map) and bad-pixel mask, where the galaxy is (pixels or RA/Dec; default
the image centre), and optionally its own zeropoint and exposure time.

A **targets table** (``--targets FILE``: FITS, ECSV or CSV) has one row per galaxy. Columns
(case-insensitive; all but ``image`` optional, an empty cell means "not given"):

==============  ==================================================================================
``image``       the image file, with a selector where needed (``mosaic.fits[SCI]``)
``id``          the block's name, ``<id>_block.fits`` (needed when one image has several rows)
``x``, ``y``    the galaxy's position, 1-based FITS pixels as GALFIT's (also ``X_IMAGE``,
                ``Y_IMAGE``, ``xc``, ``yc``)
``ra``, ``dec`` its position in degrees, through the image's WCS (also ``RA``, ``ALPHA_J2000`` ...);
                used where ``x``, ``y`` are not given
``psf``         the PSF file (or ``none``); default ``--psf``
``sigma``       a noise (1σ) map; or ``weight``: an inverse-variance map
``mask``        a bad-pixel mask (nonzero = bad)
``zeropoint``   this image's zeropoint; ``exptime`` its exposure time
==============  ==================================================================================

Relative paths are taken as given when such a file exists there, else relative to the table's
folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import ResxError
from core.io.images import parse_selector

__all__ = ["FitJob", "FitJobError", "block_name", "check_unique", "job_id", "read_targets"]


class FitJobError(ResxError, ValueError):
    """A targets table or a job that cannot be used (missing column, repeated ids...)."""


@dataclass
class FitJob:
    """One galaxy to fit.

    Attributes
    ----------
    image : str
        The image file, optionally with an HDU selector.
    psf, sigma, weight, mask : str or None
        Files (with selectors); ``psf`` None means the batch's default, ``"none"`` no PSF.
    target : (float, float) or None
        The galaxy's position, 1-based pixels (x, y).
    radec : (float, float) or None
        The galaxy's RA, Dec in degrees (used when ``target`` is None; needs the image's WCS).
    id : str or None
        The block's name (``<id>_block.fits``); default :func:`job_id` of ``image``.
    zeropoint, exptime : float or None
        This image's values (default: the batch's, then the header's).
    target_source : str
        Where the position came from (for the summary): ``"--target"``, ``"targets table"``...
    """

    image: str
    psf: str | None = None
    sigma: str | None = None
    weight: str | None = None
    mask: str | None = None
    target: tuple[float, float] | None = None
    radec: tuple[float, float] | None = None
    id: str | None = None
    zeropoint: float | None = None
    exptime: float | None = None
    target_source: str = ""

    @property
    def name(self) -> str:
        """The block's name without ``_block.fits``."""
        return self.id if self.id else job_id(self.image)


_EXTENSIONS = (".fits.gz", ".fit.gz", ".fts.gz", ".fits.fz", ".fits", ".fit", ".fts")


def job_id(spec: str | Path) -> str:
    """The default block name of an image: its file name without the FITS extension, and the HDU.

    Examples
    --------
    >>> job_id("dir/gal.fits.gz"), job_id("a.fits[2]"), job_id("a.fits[SCI]"), job_id("a.fits[sci,2]")
    ('gal', 'a_hdu2', 'a_SCI', 'a_SCI_2')
    """
    path, sel = parse_selector(spec)
    name = Path(path).name
    for ext in _EXTENSIONS:
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    else:
        name = Path(name).stem
    if sel is None:
        return name
    if isinstance(sel, int):
        return f"{name}_hdu{sel}"
    if isinstance(sel, tuple):
        return f"{name}_{re.sub(r'[^A-Za-z0-9]+', '', sel[0])}_{sel[1]}"
    return f"{name}_{re.sub(r'[^A-Za-z0-9]+', '', sel)}"


def block_name(path: str | Path) -> str:
    """``<name>_block.fits`` for an image ``<name>.fits`` (also .fit, .fts, .fits.gz, .fits.fz, and an
    HDU selector: ``a.fits[1]`` -> ``a_hdu1_block.fits``)."""
    return job_id(path) + "_block.fits"


_COLUMNS = {
    "image": ("image",),
    "x": ("x", "x_image", "xc", "x_pix"),
    "y": ("y", "y_image", "yc", "y_pix"),
    "psf": ("psf",),
    "sigma": ("sigma", "rms", "noise"),
    "weight": ("weight", "wht", "ivar"),
    "mask": ("mask", "badpix"),
    "zeropoint": ("zeropoint", "zp", "magzpt"),
    "exptime": ("exptime",),
}


def _cell(table, name: str | None, row: int):
    if name is None:
        return None
    value = table[name][row]
    if np.ma.is_masked(value):
        return None
    if isinstance(value, (bytes, np.bytes_)):
        value = value.decode()
    if isinstance(value, str):
        value = value.strip()
        return value or None
    value = float(value)
    return value if math.isfinite(value) else None


def _path(value, folder: Path) -> str | None:
    if value is None:
        return None
    text = str(value)
    if text.lower() == "none":
        return "none"
    path, _ = parse_selector(text)
    if Path(path).is_absolute() or Path(path).exists():
        return text
    return str(folder / text)


def read_targets(path: str | Path) -> list[FitJob]:
    """The jobs of a targets table (see the module's docstring for its columns).

    Parameters
    ----------
    path : str or Path
        FITS, ECSV or CSV.

    Returns
    -------
    list of FitJob
        One per row, in the table's order.

    Raises
    ------
    FitJobError
        No ``image`` column; a row without an image; ``x`` without ``y``; two rows that would
        write the same block (add an ``id`` column).
    core.io.catalog.CatalogError
        The file cannot be read, or its ids are not unique.
    """
    from core.io.catalog import read_catalog

    path = Path(path)
    table = read_catalog(path, required=())
    lower = {c.lower(): c for c in table.colnames}
    cols = {key: next((lower[a] for a in aliases if a in lower), None) for key, aliases in _COLUMNS.items()}
    if cols["image"] is None:
        raise FitJobError(f"{path}: no 'image' column (the image file of each row); the table has "
                          f"{', '.join(table.colnames)}")
    if (cols["x"] is None) != (cols["y"] is None):
        raise FitJobError(f"{path}: give both x and y columns, or neither")
    has_radec = "ra" in table.colnames and "dec" in table.colnames
    folder = path.parent
    jobs = []
    for i in range(len(table)):
        image = _cell(table, cols["image"], i)
        if image is None:
            raise FitJobError(f"{path}: row {i + 1} has no image")
        job = FitJob(image=_path(image, folder), psf=_path(_cell(table, cols["psf"], i), folder),
                     sigma=_path(_cell(table, cols["sigma"], i), folder),
                     weight=_path(_cell(table, cols["weight"], i), folder),
                     mask=_path(_cell(table, cols["mask"], i), folder),
                     id=str(table["id"][i]).strip() if "id" in table.colnames else None,
                     zeropoint=_cell(table, cols["zeropoint"], i), exptime=_cell(table, cols["exptime"], i))
        x, y = _cell(table, cols["x"], i), _cell(table, cols["y"], i)
        if x is not None and y is not None:
            job.target, job.target_source = (float(x), float(y)), "targets table x, y"
        elif has_radec:
            ra, dec = _cell(table, "ra", i), _cell(table, "dec", i)
            if ra is not None and dec is not None:
                job.radec, job.target_source = (float(ra), float(dec)), "targets table ra, dec"
        jobs.append(job)
    check_unique(jobs, str(path))
    return jobs


def check_unique(jobs: list[FitJob], where: str) -> None:
    """Raise :class:`FitJobError` when two jobs would write the same block."""
    seen: dict[str, int] = {}
    for k, job in enumerate(jobs):
        if job.name in seen:
            raise FitJobError(f"{where}: rows {seen[job.name] + 1} and {k + 1} would both write "
                              f"{job.name}_block.fits ({job.image}); give each an id")
        seen[job.name] = k
