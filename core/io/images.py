"""FITS images as the fitter and prep read them: one 2-D image HDU, as native float64.

A file name may end with an HDU selector, as in IRAF, GALFIT and astropy:

=====================  =============================================================
``file.fits``          the file's only 2-D image HDU (an error when it has several)
``file.fits[2]``       HDU 2 (0 = the primary)
``file.fits[SCI]``     the HDU whose ``EXTNAME`` is ``SCI`` (case-insensitive; the first
                       one with that name)
``file.fits[SCI,2]``   ``EXTNAME = 'SCI'`` and ``EXTVER = 2`` (astropy's ``hdul['SCI', 2]``)
=====================  =============================================================

A file with several image HDUs and no selector is an error whose message lists them (index,
``EXTNAME``, ``EXTVER``, shape), never a silent choice of the first. An image section
(``file.fits[1:100,1:100]``) is not supported: cut the image first.

Scaled integer images (``BSCALE``/``BZERO``) are read in physical units, as floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from core.errors import ResxError

__all__ = ["INHERITED_KEYS", "FitsImage", "ImageReadError", "image_hdus", "parse_selector", "read_fits_image", "read_image"]


class ImageReadError(ResxError, ValueError):
    """A FITS file that cannot be read, holds no 2-D image, or whose image HDU is ambiguous."""


#: Keys an extension's header takes from the primary header when it lacks them (HST and JWST
#: pipelines keep the exposure time and some photometry keys in the primary header only).
INHERITED_KEYS = ("EXPTIME", "TEXPTIME", "BUNIT", "GAIN", "CCDGAIN", "NCOMBINE", "TELESCOP", "INSTRUME",
                  "DETECTOR", "FILTER", "PHOTFLAM", "PHOTPLAM", "PHOTZPT", "PHOTMJSR", "PIXAR_SR", "MAGZPT",
                  "MAGZP", "PIXSCALE")

_SELECTOR = re.compile(r"^(?P<path>.+?)\[(?P<sel>[^\[\]]*)\]$")
_SECTION = re.compile(r"^\s*\*?\d*:\d*\s*,\s*\*?\d*:\d*\s*$")


def parse_selector(spec: str | Path) -> tuple[str, int | str | tuple[str, int] | None]:
    """Split ``"file.fits[SCI,2]"`` into the path and the HDU selector.

    Parameters
    ----------
    spec : str or Path
        A file name, optionally followed by ``[N]``, ``[NAME]`` or ``[NAME,VER]``. A name that
        exists as a file as it is (brackets included) is taken as a file name.

    Returns
    -------
    path : str
    selector : int, str, (str, int) or None
        The HDU index, its ``EXTNAME``, its ``(EXTNAME, EXTVER)``, or None when none was given.

    Raises
    ------
    ImageReadError
        An empty or malformed selector, or an image section.

    Examples
    --------
    >>> parse_selector("a.fits[1]"), parse_selector("a.fits[sci]"), parse_selector("a.fits[SCI, 2]")
    (('a.fits', 1), ('a.fits', 'SCI'), ('a.fits', ('SCI', 2)))
    >>> parse_selector("a.fits")
    ('a.fits', None)
    """
    text = str(spec)
    m = _SELECTOR.match(text)
    if m is None or Path(text).exists():
        return text, None
    path, sel = m["path"], m["sel"].strip()
    if _SECTION.match(sel):
        raise ImageReadError(f"{text}: image sections are not supported (cut the image first, or give an "
                             "HDU as [N], [EXTNAME] or [EXTNAME,EXTVER])")
    if not sel:
        raise ImageReadError(f"{text}: empty HDU selector")
    if re.fullmatch(r"\d+", sel):
        return path, int(sel)
    parts = [p.strip() for p in sel.split(",")]
    if len(parts) == 1 and parts[0]:
        return path, parts[0].upper()
    if len(parts) == 2 and parts[0] and re.fullmatch(r"\d+", parts[1]):
        return path, (parts[0].upper(), int(parts[1]))
    raise ImageReadError(f"{text}: cannot parse the HDU selector [{sel}] (use [N], [EXTNAME] or "
                         "[EXTNAME,EXTVER])")


def _shape(hdu) -> tuple[int, ...]:
    h = hdu.header
    if isinstance(hdu, fits.CompImageHDU):
        naxis = int(h.get("ZNAXIS", h.get("NAXIS", 0)))
        return tuple(int(h.get(f"ZNAXIS{k}", h.get(f"NAXIS{k}", 0))) for k in range(naxis, 0, -1))
    naxis = int(h.get("NAXIS", 0))
    return tuple(int(h.get(f"NAXIS{k}", 0)) for k in range(naxis, 0, -1))


def image_hdus(hdul: fits.HDUList) -> list[tuple[int, str, int, tuple[int, ...]]]:
    """The 2-D image HDUs of an open file: ``(index, EXTNAME, EXTVER, shape)`` each.

    Shapes come from the headers (no pixels are read).
    """
    found = []
    for i, hdu in enumerate(hdul):
        if not hdu.is_image:
            continue
        shape = _shape(hdu)
        if len(shape) == 2 and min(shape) > 0:
            found.append((i, str(hdu.header.get("EXTNAME", "") or "").strip(),
                          int(hdu.header.get("EXTVER", 1) or 1), shape))
    return found


def _describe(hdus) -> str:
    return "; ".join(f"[{i}]" + (f" {name},{ver}" if name else "") + f" {s[1]}x{s[0]}"
                     for i, name, ver, s in hdus)


@dataclass
class FitsImage:
    """One 2-D image HDU read by :func:`read_fits_image`.

    Attributes
    ----------
    data : numpy.ndarray
        Native-endian float64 pixels (physical units for scaled integers).
    header : astropy.io.fits.Header
        A copy of the HDU's header; an extension's gets the :data:`INHERITED_KEYS` of the primary
        header that it lacks.
    path : str
        The file.
    index : int
        The HDU's index in the file.
    extname : str
        Its ``EXTNAME`` ('' when none).
    extver : int
        Its ``EXTVER`` (1 when none).
    """

    data: np.ndarray
    header: fits.Header
    path: str
    index: int
    extname: str = ""
    extver: int = 1

    @property
    def label(self) -> str:
        """``file.fits[index]`` (with ``EXTNAME,EXTVER`` when named): which HDU was read."""
        name = Path(self.path).name
        if self.extname:
            return f"{name}[{self.index}: {self.extname},{self.extver}]"
        return f"{name}[{self.index}]"


def read_fits_image(spec: str | Path) -> FitsImage:
    """Read one 2-D image HDU, chosen by the selector in ``spec`` or as the file's only one.

    Parameters
    ----------
    spec : str or Path
        ``file.fits``, ``file.fits[N]``, ``file.fits[EXTNAME]`` or ``file.fits[EXTNAME,EXTVER]``
        (see :func:`parse_selector`); gzipped and tile-compressed files are read too.

    Returns
    -------
    FitsImage

    Raises
    ------
    ImageReadError
        The file is missing or not FITS; the selected HDU does not exist or is not a 2-D image;
        no selector and no, or several, 2-D image HDUs (the message lists them).
    """
    path, sel = parse_selector(spec)
    if not Path(path).is_file():
        raise ImageReadError(f"{spec}: file not found")
    try:
        with fits.open(path) as hdul:
            hdus = image_hdus(hdul)
            if sel is None:
                if not hdus:
                    raise ImageReadError(f"{spec}: no 2-D image HDU (HDUs: "
                                         f"{', '.join(type(h).__name__ for h in hdul)})")
                if len(hdus) > 1:
                    raise ImageReadError(
                        f"{spec}: {len(hdus)} image HDUs ([index] EXTNAME,EXTVER NAXIS1xNAXIS2): "
                        f"{_describe(hdus)}; choose one as {Path(path).name}[N], [EXTNAME] or "
                        "[EXTNAME,EXTVER]")
                index = hdus[0][0]
            else:
                try:
                    index = hdul.index_of(sel)
                except (KeyError, IndexError):
                    index = None
                if index is None or not 0 <= index < len(hdul):
                    raise ImageReadError(f"{spec}: no HDU {sel!r} in the file; its 2-D images: "
                                         f"{_describe(hdus) or 'none'}")
                if index not in [h[0] for h in hdus]:
                    raise ImageReadError(f"{spec}: HDU {index} is not a 2-D image "
                                         f"(shape {_shape(hdul[index]) or 'empty'}); its 2-D images: "
                                         f"{_describe(hdus) or 'none'}")
            hdu = hdul[index]
            data = np.asarray(hdu.data, dtype=np.float64)
            header = hdu.header.copy()
            if index > 0:  # keys a pipeline keeps in the primary header only (HST's EXPTIME...)
                primary = hdul[0].header
                for key in INHERITED_KEYS:
                    if key in primary and key not in header:
                        header[key] = (primary[key], primary.comments[key])
            name = str(header.get("EXTNAME", "") or "").strip()
            ver = int(header.get("EXTVER", 1) or 1)
    except ImageReadError:
        raise
    except Exception as exc:  # OSError (not FITS, truncated), VerifyError, ...
        raise ImageReadError(f"{spec}: cannot read FITS file ({type(exc).__name__}: {exc})") from exc
    return FitsImage(data=data, header=header, path=path, index=index, extname=name, extver=ver)


def read_image(path: str | Path, with_header: bool = False):
    """A 2-D image HDU of a FITS file, as native-endian float64 (and its header).

    Parameters
    ----------
    path : str or Path
        The FITS file, optionally with an HDU selector (see :func:`read_fits_image`).
    with_header : bool
        Also return the HDU's header.

    Returns
    -------
    ndarray or (ndarray, Header)

    Raises
    ------
    ImageReadError
        As :func:`read_fits_image`.
    """
    image = read_fits_image(path)
    return (image.data, image.header) if with_header else image.data
