"""`resx fit` on the real images of ../shared/data, against the references they come with.

GALFIT's own fit of its GOODS-S example, PetroFit's HST F105W cutouts (e⁻/s, an off-centre PSF, a
group with no galaxy at its centre), GalSim's AEGIS multi-extension files and statmorph's galaxy
(no PSF) compared with statmorph's own Sérsic fit. ``tests/benchmarks/real_fits.py`` prints the
table of every galaxy.
"""

from __future__ import annotations

import pytest
from astropy.io import fits
from astropy.table import Table

from core.cli.main import main
from core.io.galfit import read_block


def rows(out):
    return {str(r["id"]): r for r in Table.read(out / "fit_summary.ecsv")}


def test_goodss_matches_galfit_own_fit(shared_data, tmp_path):
    """gal.fits + psf.fits with the feedme's zeropoint: n and Re within 15 % of GALFIT's imgblock."""
    folder = shared_data / "galfit_goodss_f606w"
    galfit = read_block(folder / "imgblock.fits").params
    assert main(["fit", str(folder / "gal.fits"), "--psf", str(folder / "psf.fits"), "--zeropoint", "26.563",
                 "--out", str(tmp_path)]) == 0
    row = rows(tmp_path)["gal"]
    assert row["status"] == "ok" and not row["psf_shifted"]
    assert row["exptime"] == 1040.0  # BUNIT ELECTRONS: GALFIT's EXPTIME rule
    assert row["n"] == pytest.approx(galfit["N"].value, rel=0.15)
    assert row["re"] == pytest.approx(galfit["RE"].value, rel=0.15)
    assert row["mag"] == pytest.approx(galfit["MAG"].value, abs=0.05)
    assert row["pixscale"] == pytest.approx(0.05, abs=1e-3)  # the CD matrix's (ACS); the feedme says 0.038


def test_petrofit_f105w_cutouts(shared_data, tmp_path):
    """e⁻/s with EXPTIME not applied, the PSF recentred, the group refused with a reason."""
    folder = shared_data / "hst_abell2744_f105w"
    images = [str(folder / f"abell_2744_{name}_f105w.fits.gz")
              for name in ("spiral_galaxy", "group_of_galaxies", "cd_galaxy")]
    assert main(["fit", *images, "--psf", str(folder / "f105w_psf.fits.gz"), "--out", str(tmp_path)]) == 1
    got = rows(tmp_path)
    group, cd, spiral = (got[f"abell_2744_{n}_f105w"] for n in ("group_of_galaxies", "cd_galaxy", "spiral_galaxy"))
    # The small group: no galaxy at its centre -> error, saying where the nearest source is.
    assert group["status"] == "error"
    assert "no source within 5 px of the image centre (50.50, 50.50)" in group["message"]
    assert "14.6 px away" in group["message"]
    # The cD sits 5.9 px from its cutout's centre: refused at the default 5 px, not fitted silently.
    assert cd["status"] == "error" and "5.9 px away" in cd["message"]
    # The spiral: fitted; its image is in e-/s (no EXPTIME key) and the PSF was 1.3 px off.
    assert spiral["status"] in ("ok", "flagged") and spiral["exptime"] == 1.0
    assert (spiral["psf_dx"], spiral["psf_dy"]) == pytest.approx((-1.31, -0.90), abs=0.03)
    assert spiral["psf_shifted"]
    assert spiral["pixscale"] == pytest.approx(0.06, rel=1e-3)
    # The dwarf: e-/s *with* EXPTIME = 68952 s, which must not be applied (it would add 12.1 mag).
    dwarf = folder / "abell_2744_dwarf_galaxy_f105w.fits.gz"
    assert main(["fit", str(dwarf), "--psf", str(folder / "f105w_psf.fits.gz"), "--sigma",
                 str(folder / "abell_2744_dwarf_galaxy_f105w_rms.fits.gz"), "--out", str(tmp_path)]) == 0
    row = rows(tmp_path)["abell_2744_dwarf_galaxy_f105w"]
    assert row["status"] == "ok" and row["exptime"] == 1.0 and "not applied" in row["exptime_source"]
    assert row["zp_source"] == "PHOTFLAM, PHOTPLAM (AB)" and row["zeropoint"] == pytest.approx(26.269, abs=0.002)
    assert 20.5 < row["mag"] < 22.5  # an F105W ~21.6 mag dwarf, not ~33.7
    assert set(rows(tmp_path)) == set(got) | {"abell_2744_dwarf_galaxy_f105w"}  # merged, not replaced
    header = fits.getheader(tmp_path / "abell_2744_dwarf_galaxy_f105w_block.fits", 2)
    assert header["BUNIT"] == "ELECTRONS/S" and header["EXPTIME"] == 1.0 and header["PSFSHIFT"]


def test_aegis_multi_extension_files(shared_data, tmp_path):
    """No selector: an error listing the HDUs; with selectors each F606W galaxy fits."""
    folder = shared_data / "hst_aegis_acs"
    images = str(folder / "AEGIS_F606w_images_01.fits")
    assert main(["fit", images, "--psf", str(folder / "AEGIS_F606w_PSF_images_01.fits[0]"),
                 "--out", str(tmp_path)]) == 1
    row = rows(tmp_path)["AEGIS_F606w_images_01"]
    assert row["status"] == "error"
    assert "3 image HDUs" in row["message"] and "[0] 70x46; [1] 142x156; [2] 48x50" in row["message"]
    catalog = Table.read(folder / "AEGIS_F606w_catalog.fits")
    catalog.convert_bytestring_to_unicode()
    targets = Table({"id": [f"aegis_{i}" for i in catalog["IDENT"]],
                     "image": [f"{folder / f}[{h}]" for f, h in zip(catalog["GAL_FILENAME"], catalog["GAL_HDU"])],
                     "psf": [f"{folder / f}[{h}]" for f, h in zip(catalog["PSF_FILENAME"], catalog["PSF_HDU"])]})
    targets.write(tmp_path / "targets.ecsv")
    # ACS/WFC F606W AB zeropoint 26.49 (the catalog gives magnitudes only).
    assert main(["fit", "--targets", str(tmp_path / "targets.ecsv"), "--zeropoint", "26.49",
                 "--out", str(tmp_path)]) == 0
    got = rows(tmp_path)
    for ident, mag in zip(catalog["IDENT"], catalog["MAG"]):
        r = got[f"aegis_{ident}"]
        assert r["psf_shifted"] and abs(r["psf_dx"]) > 0.5  # GalSim's PSFs are centred between pixels
        if r["status"] == "ok":
            assert r["mag"] == pytest.approx(mag, abs=0.35)
        else:  # a fit not to trust as it is says why
            assert r["status"] == "flagged" and r["fit_flags"] and r["message"], r["message"]
    # 24216: n -> 7, Re 44 px on a galaxy detected over ~12 px: flagged, its magnitude an extrapolation.
    assert "re_beyond_box" in got["aegis_24216"]["fit_flags"]


def test_statmorph_galaxy_matches_statmorph_sersic_fit(shared_data, tmp_path):
    """No PSF (--psf none): n and Re within 15 % of statmorph's Sérsic fit of the same image."""
    statmorph = pytest.importorskip("statmorph", reason="statmorph (the test extra) is not installed")
    import numpy as np

    path = shared_data / "statmorph_slice" / "slice.fits"
    with fits.open(path) as hdul:
        image, segmap, mask = (np.asarray(h.data) for h in hdul[:3])
    ref = statmorph.source_morphology(image.astype(float), segmap, mask=mask.astype(bool), gain=1.0)[0]
    assert ref.flag_sersic == 0
    assert main(["fit", f"{path}[0]", "--mask", f"{path}[2]", "--psf", "none", "--out", str(tmp_path)]) == 0
    row = rows(tmp_path)["slice_hdu0"]
    assert row["status"] == "ok" and row["psf"] == "none"
    assert row["n"] == pytest.approx(ref.sersic_n, rel=0.15)
    assert row["re"] == pytest.approx(ref.sersic_rhalf, rel=0.15)  # both along the major axis
    assert row["ar"] == pytest.approx(1 - ref.sersic_ellip, abs=0.05)
