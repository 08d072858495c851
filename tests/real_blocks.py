"""GALFIT blocks of the real galaxies in ``../shared/data`` (see its README), for ingest + prep.

* ``goodss``: the block GALFIT itself wrote (ACS F606W, GOODS-S; its input HDU carries the
  image's WCS, 0.05"/px).
* ``a2744_*``: PetroFit's four WFC3/IR F105W cutouts (e-/s, 0.06"/px by their WCS; the group has
  no galaxy at its centre), fitted here with this project's single-Sérsic fitter
  (:func:`core.fitting.fit.fit_to_block`) and the F105W PSF.
* ``aegis_606_*``: GalSim's five AEGIS ACS F606W galaxies (multi-extension files, 0.03"/px by the
  README; their headers hold no WCS or scale), each with its own PSF.
* ``statmorph``: statmorph's galaxy (no PSF: a delta; no scale in its header).

The fitted blocks' input HDUs carry the image's own header cards (WCS, BUNIT, EXPTIME) as GALFIT
copies them, so ingest reads the pixel scale and units whoever wrote the block. A fit the fitter
refuses is returned as a message instead of a block (that is a right answer too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

#: Where the data are, relative to the project root.
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_COPIED = ("WCSAXES", "CTYPE1", "CTYPE2", "CUNIT1", "CUNIT2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
           "CD1_1", "CD1_2", "CD2_1", "CD2_2", "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2",
           "RADESYS", "EQUINOX", "BUNIT", "EXPTIME")


def _images(data: Path) -> list[tuple[str, np.ndarray, np.ndarray, fits.Header, str]]:
    """``(name, image, psf, header, description)`` of every galaxy to fit."""
    out = []
    petro = data / "hst_abell2744_f105w"
    psf = fits.getdata(petro / "f105w_psf.fits.gz").astype(np.float64)
    for name, file in [("a2744_spiral", "spiral_galaxy"), ("a2744_dwarf", "dwarf_galaxy"),
                       ("a2744_group", "group_of_galaxies"), ("a2744_cd", "cd_galaxy")]:
        with fits.open(petro / f"abell_2744_{file}_f105w.fits.gz") as h:
            out.append((name, h[0].data.astype(np.float64), psf, h[0].header.copy(), "WFC3/IR F105W, e-/s"))
    aegis = data / "hst_aegis_acs"
    k = 0
    for part in ("01", "02"):
        with fits.open(aegis / f"AEGIS_F606w_images_{part}.fits") as imgs, \
                fits.open(aegis / f"AEGIS_F606w_PSF_images_{part}.fits") as psfs:
            for i in range(len(imgs)):
                out.append((f"aegis_606_{k}", imgs[i].data.astype(np.float64), psfs[i].data.astype(np.float64),
                            fits.Header(), f"ACS F606W, MEF {part}[{i}]"))
                k += 1
    with fits.open(data / "statmorph_slice" / "slice.fits") as h:
        delta = np.zeros((3, 3))
        delta[1, 1] = 1.0
        out.append(("statmorph", h[0].data.astype(np.float64), delta, fits.Header(), "statmorph (no PSF)"))
    return out


#: Targets (1-based pixels) where the galaxy is not within the fitter's 5 px of the image centre:
#: PetroFit's cD is 5.9 px off its cutout's centre (the group, with no galaxy there, gets none).
TARGETS = {"a2744_cd": (195.4, 197.6)}


def build_blocks(out: Path, data: Path = DATA) -> dict[str, dict]:
    """Write a block per real galaxy into ``out``.

    Returns
    -------
    dict
        ``{name: {"block": path or None, "what": description, "refused": message or ""}}``;
        ``goodss`` points at GALFIT's own block.
    """
    from core.fitting.fit import fit_to_block

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"goodss": {"block": data / "galfit_goodss_f606w" / "imgblock.fits",
                         "what": "ACS F606W, GALFIT's own block", "refused": ""}}
    for name, image, psf, header, what in _images(data):
        path = out / f"{name}.fits"
        try:
            fit_to_block(image, psf, path, input_name=f"{name}.fits", target=TARGETS.get(name))
        except Exception as exc:  # noqa: BLE001 - the fitter refusing an image is an answer
            result[name] = {"block": None, "what": what, "refused": f"{type(exc).__name__}: {exc}"}
            continue
        cards = {k: header[k] for k in _COPIED if k in header}
        if cards:
            with fits.open(path, mode="update") as hdul:
                for key, value in cards.items():
                    hdul[1].header[key] = value
        result[name] = {"block": path, "what": what, "refused": ""}
    return result
