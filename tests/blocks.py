"""Synthetic GALFIT blocks with several components, a WCS, a fitted section or integer pixels.

Each real-survey case of issue 10 as a block: the sky listed first (van der Wel et al. 2012), a
neighbour listed first, a target off the centre, two galaxies near the centre, a block with a
celestial WCS (so a catalog RA/Dec picks the component), a block that holds only the section
GALFIT fitted, integer pixels with BSCALE/BZERO. Used by tests/io, tests/workspace, tests/prep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from core.fitting.sersic import sersic_image

ZEROPOINT = 25.9463

#: A component: (kind, x, y, mag, re, n); x, y 1-based. ``("sky", level)`` for a sky.
Component = tuple


def galaxy_scene(shape, components: Sequence[Component], noise: float = 0.005, seed: int = 0):
    """Input and model images of Sérsic components (+ sky), and the residual input - model.

    The model is each Sérsic times 0.9 (so the residual holds 10 % of each galaxy) plus the sky.
    """
    rng = np.random.default_rng(seed)
    model = np.zeros(shape)
    truth = np.zeros(shape)
    for c in components:
        if c[0] == "sky":
            model += c[1]
            truth += c[1]
            continue
        _, x, y, mag, re, n = c
        img = sersic_image(shape, x, y, mag, re, n, 0.8, 30.0, ZEROPOINT)
        truth += img
        model += 0.9 * img
    data = truth + rng.normal(0, noise, shape)
    return data, model, data - model


def _card(value: float, fixed: bool = False) -> str:
    return f"[{value:.4f}]" if fixed else f"{value:.4f} +/- 0.0100"


def write_multi_block(path: str | Path, components: Sequence[Component], shape=(61, 61), *, noise: float = 0.005,
                      seed: int = 0, wcs: WCS | None = None, fitsect: tuple[int, int] | None = None,
                      input_header: dict | None = None, dtype=np.float32, scale: tuple[float, float] | None = None,
                      ) -> Path:
    """A classic GALFIT block (HDU 1 input, 2 model, 3 residual) with ``components`` in that order.

    Parameters
    ----------
    components : sequence
        ``("sersic", x, y, mag, re, n)`` (x, y 1-based *block* pixels) or ``("sky", level)``.
    wcs : astropy.wcs.WCS, optional
        Written into the input HDU's header (GALFIT copies the input image's header there).
    fitsect : (x1, y1), optional
        The block holds the section ``[x1:x1+nx-1, y1:y1+ny-1]`` of a larger image: FITSECT says
        so and the positions in the header are in that image's frame (GALFIT's convention).
    input_header : dict, optional
        More input-HDU cards (BUNIT, PIXSCALE...).
    dtype : numpy dtype
        Of the stored pixels; with an integer type, ``scale = (BSCALE, BZERO)`` maps them to the
        physical values (astropy scales on write).
    """
    data, model, residual = galaxy_scene(shape, components, noise, seed)
    ny, nx = shape
    dx, dy = (fitsect[0] - 1, fitsect[1] - 1) if fitsect else (0, 0)
    mh = fits.Header()
    mh["OBJECT"] = "model"
    mh["FITSECT"] = f"[{1 + dx}:{nx + dx},{1 + dy}:{ny + dy}]"
    mh["MAGZPT"] = ZEROPOINT
    for i, c in enumerate(components, start=1):
        mh[f"COMP_{i}"] = c[0]
        if c[0] == "sky":
            mh[f"{i}_XC"], mh[f"{i}_YC"] = _card((nx + 1) / 2 + dx, True), _card((ny + 1) / 2 + dy, True)
            mh[f"{i}_SKY"] = _card(c[1])
            continue
        _, x, y, mag, re, n = c
        mh[f"{i}_XC"], mh[f"{i}_YC"] = _card(x + dx), _card(y + dy)
        mh[f"{i}_MAG"], mh[f"{i}_RE"], mh[f"{i}_N"] = _card(mag), _card(re), _card(n)
        mh[f"{i}_AR"], mh[f"{i}_PA"] = _card(0.8), _card(30.0)
    mh["CHI2NU"] = 1.0
    ih = wcs.to_header() if wcs is not None else fits.Header()
    ih["OBJECT"] = f"input.fits[{1 + dx}:{nx + dx},{1 + dy}:{ny + dy}]"
    for k, v in (input_header or {}).items():
        ih[k] = v

    def hdu(image, header):
        if np.dtype(dtype).kind in "iu":
            h = fits.ImageHDU(np.asarray(image, dtype=np.float64), header=header)
            bscale, bzero = scale or (1.0, 0.0)
            h.scale(np.dtype(dtype).name, bscale=bscale, bzero=bzero)
            return h
        return fits.ImageHDU(np.asarray(image, dtype=dtype), header=header)

    rh = fits.Header()
    rh["OBJECT"] = "residual map"
    fits.HDUList([fits.PrimaryHDU(), hdu(data, ih), hdu(model, mh), hdu(residual, rh)]).writeto(path, overwrite=True)
    return Path(path)


def tan_wcs(shape, scale_arcsec: float = 0.06, ra: float = 53.1, dec: float = -27.8) -> WCS:
    """A north-up TAN WCS of ``scale_arcsec`` px centred on (ra, dec) at the block centre."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    w.wcs.cd = np.array([[-scale_arcsec / 3600, 0.0], [0.0, scale_arcsec / 3600]])
    return w
