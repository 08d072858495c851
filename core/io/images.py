"""FITS images as the fitter and prep read them: one 2-D image HDU, as native float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from core.errors import ResxError

__all__ = ["ImageReadError", "read_image"]


class ImageReadError(ResxError, ValueError):
    """A FITS file that cannot be read, or holds no 2-D image."""


def read_image(path: str | Path, with_header: bool = False):
    """The first 2-D image HDU of a FITS file, as native-endian float64 (and its header).

    Parameters
    ----------
    path : str or Path
        The FITS file.
    with_header : bool
        Also return the HDU's header.

    Returns
    -------
    ndarray or (ndarray, Header)

    Raises
    ------
    ImageReadError
        When the file cannot be read or has no 2-D image HDU.
    """
    try:
        with fits.open(path) as hdul:
            for hdu in hdul:
                if hdu.data is not None and np.ndim(hdu.data) == 2:
                    data = np.asarray(hdu.data, dtype=np.float64)
                    return (data, hdu.header.copy()) if with_header else data
    except (OSError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot read FITS file ({exc})") from exc
    raise ImageReadError(f"{path}: no 2-D image HDU")
