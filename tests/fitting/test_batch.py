"""Tests of `resx fit` on synthetic files built to each case of real surveys (core.fitting.batch).

e⁻/s images with an EXPTIME key, header zeropoints, multi-extension files and selectors, targets by
pixel and by RA/Dec, per-image PSFs, weight maps, PSF problems, and the summary merged across runs.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from core.cli.main import main
from core.io.galfit import read_block
from tests.fitting.test_fit import PSF, ZP, mock
from tests.fitting.test_fit import _write as write

SHAPE = (64, 64)
NOISE = 2e-3


def galaxy(seed=0, xc=32.3, yc=31.8, mag=21.0, re=3.0, n=1.5, shape=SHAPE):
    return mock(shape, xc, yc, mag, re, n, 0.7, 20.0) + np.random.default_rng(seed).normal(0, NOISE, shape)


def summary(out):
    table = Table.read(out / "fit_summary.ecsv")
    return {str(r["id"]): r for r in table}


def test_counts_per_second_are_not_divided_by_exptime(tmp_path, capsys):
    """The same pixels as e⁻/s (with an EXPTIME key) and as electrons: 2.5 log10(1000) = 7.5 mag apart."""
    img = galaxy()
    psf = write(tmp_path / "psf.fits", PSF)
    rate = write(tmp_path / "rate.fits", img, BUNIT="ELECTRONS/S", EXPTIME=1000.0)
    rate2 = write(tmp_path / "rate2.fits", img, BUNIT="electron / s", EXPTIME=1000.0)
    counts = write(tmp_path / "counts.fits", img, BUNIT="ELECTRONS", EXPTIME=1000.0)
    out = tmp_path / "out"
    assert main(["fit", rate, rate2, counts, "--psf", psf, "--out", str(out), "--zeropoint", str(ZP)]) == 0
    rows = summary(out)
    assert rows["rate"]["mag"] == pytest.approx(21.0, abs=0.02)
    assert rows["rate2"]["mag"] == pytest.approx(rows["rate"]["mag"], abs=1e-6)
    assert rows["counts"]["mag"] == pytest.approx(21.0 + 7.5, abs=0.02)
    assert rows["rate"]["exptime"] == 1.0 and "not applied" in rows["rate"]["exptime_source"]
    assert rows["counts"]["exptime"] == 1000.0
    model = fits.getheader(out / "rate_block.fits", 2)
    assert model["BUNIT"] == "ELECTRONS/S" and model["EXPTIME"] == 1.0
    assert "is a rate" in model["EXPSRC"] and model["ZPSOURCE"] == "--zeropoint"
    assert fits.getheader(out / "rate_block.fits", 1)["EXPTIME"] == 1000.0  # the input's, as GALFIT copies it
    # --exptime overrides the rule.
    assert main(["fit", rate, "--psf", psf, "--out", str(out), "--zeropoint", str(ZP), "--exptime", "100"]) == 0
    assert summary(out)["rate"]["mag"] == pytest.approx(21.0 + 5.0, abs=0.02)


def test_zeropoint_and_pixel_scale_from_the_header(tmp_path, capsys):
    img = galaxy(1)
    psf = write(tmp_path / "psf.fits", PSF)
    wcs = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 53.1, "CRVAL2": -27.8, "CRPIX1": 32.0,
           "CRPIX2": 32.0, "CD1_1": -1.6667e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1.6667e-5}
    hst = write(tmp_path / "hst.fits", img, BUNIT="ELECTRONS/S", PHOTFLAM=3.0386574e-20, PHOTPLAM=10551.047,
                PHOTZPT=-21.1, **wcs)
    bare = write(tmp_path / "bare.fits", img)
    out = tmp_path / "out"
    assert main(["fit", hst, bare, "--psf", psf, "--out", str(out)]) == 0
    assert "1 image(s) without a zeropoint" in capsys.readouterr().out
    rows = summary(out)
    zp = -2.5 * math.log10(3.0386574e-20) - 5 * math.log10(10551.047) - 2.408
    assert rows["hst"]["zeropoint"] == pytest.approx(zp) and rows["hst"]["zp_source"] == "PHOTFLAM, PHOTPLAM (AB)"
    assert rows["hst"]["mag"] == pytest.approx(21.0 - ZP + zp, abs=0.02)
    assert rows["bare"]["zp_source"].startswith("default")
    block = fits.open(out / "hst_block.fits")
    assert block[2].header["PIXSCALE"] == pytest.approx(0.06, rel=1e-3)
    assert block[2].header["PSCALSRC"] == "WCS (CD matrix)"
    assert block[1].header["CD2_2"] == pytest.approx(1.6667e-5)  # the WCS travels with the input
    assert "PIXSCALE" not in fits.getheader(out / "bare_block.fits", 2)
    assert main(["fit", bare, "--psf", psf, "--out", str(out), "--pixscale", "0.03"]) == 0
    assert fits.getheader(out / "bare_block.fits", 2)["PIXSCALE"] == 0.03


def test_multi_extension_files_need_a_selector(tmp_path):
    a, b = galaxy(2, re=2.5, n=1.0), galaxy(3, xc=38.0, yc=23.0, re=4.0, n=2.5, shape=(48, 72))
    sci = [fits.ImageHDU(x.astype(np.float32), name="SCI", ver=k + 1) for k, x in enumerate((a, b))]
    err = [fits.ImageHDU(np.full(x.shape, NOISE, np.float32), name="ERR", ver=k + 1) for k, x in enumerate((a, b))]
    fits.HDUList([fits.PrimaryHDU(), *sci, *err]).writeto(tmp_path / "mef.fits")
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(PSF), fits.ImageHDU(PSF)]).writeto(tmp_path / "psfs.fits")
    out = tmp_path / "out"
    mef, psfs = str(tmp_path / "mef.fits"), str(tmp_path / "psfs.fits")
    # No selector: an error listing the HDUs (never a silent HDU 0 or 1).
    assert main(["fit", mef, "--psf", psfs + "[1]", "--out", str(out)]) == 1
    row = summary(out)["mef"]
    assert row["status"] == "error"
    assert "4 image HDUs" in row["message"] and "[2] SCI,2 72x48" in row["message"]
    # A PSF file with two image HDUs and no selector is an error before any fit.
    assert main(["fit", mef + "[SCI,1]", "--psf", psfs, "--out", str(out)]) == 2
    # Selectors for the image, its sigma map and the PSF.
    assert main(["fit", mef + "[SCI,1]", mef + "[sci,2]", "--psf", psfs + "[1]", "--sigma",
                 f"{mef}[ERR,1],{mef}[ERR,2]", "--out", str(out), "--zeropoint", str(ZP)]) == 0
    rows = summary(out)
    assert rows["mef_SCI_1"]["hdu"] == "mef.fits[1: SCI,1]" and rows["mef_SCI_2"]["hdu"] == "mef.fits[2: SCI,2]"
    assert rows["mef_SCI_1"]["n"] == pytest.approx(1.0, rel=0.1)
    assert rows["mef_SCI_2"]["n"] == pytest.approx(2.5, rel=0.1)
    assert rows["mef_SCI_2"]["target_x"] == 36.5  # the centre of the 72x48 image
    assert (rows["mef_SCI_2"]["xc"], rows["mef_SCI_2"]["yc"]) == pytest.approx((38.0, 23.0), abs=0.1)
    assert fits.getheader(out / "mef_SCI_2_block.fits", 2)["DATAIN"] == mef + "[sci,2]"
    assert rows["mef_SCI_1"]["chi2nu"] == pytest.approx(1.0, abs=0.15)  # the ERR map was used


def test_targets_table_with_radec_and_a_psf_per_image(tmp_path):
    """Two galaxies in one image, by RA/Dec and by pixels, each with its own PSF file."""
    shape = (80, 120)
    img = (mock(shape, 30.2, 40.4, 21.0, 3.0, 1.0, 0.7, 20.0) + mock(shape, 90.6, 41.1, 21.5, 2.0, 3.0, 0.8, -30.0)
           + np.random.default_rng(4).normal(0, NOISE, shape))
    wcs = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0, "CRPIX1": 60.0,
           "CRPIX2": 40.0, "CD1_1": -1e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-5}
    write(tmp_path / "field.fits", img, **wcs)
    write(tmp_path / "psf_a.fits", PSF)
    write(tmp_path / "psf_b.fits", ndimage.shift(PSF, (0.0, 0.8), order=3))  # 0.8 px off: recentred
    from astropy.wcs import WCS

    ra, dec = WCS(fits.getheader(tmp_path / "field.fits")).all_pix2world([[29.2, 39.4]], 0)[0]
    table = Table({"id": ["left", "right"], "image": ["field.fits", "field.fits"],
                   "RA": [ra, np.nan], "DEC": [dec, np.nan], "x": [np.nan, 90.0], "y": [np.nan, 41.0],
                   "psf": ["psf_a.fits", "psf_b.fits"]})
    table.write(tmp_path / "targets.ecsv")
    out = tmp_path / "out"
    assert main(["fit", "--targets", str(tmp_path / "targets.ecsv"), "--out", str(out), "--zeropoint", str(ZP)]) == 0
    rows = summary(out)
    left, right = rows["left"], rows["right"]
    assert left["target_source"] == "targets table ra, dec" and right["target_source"] == "targets table x, y"
    assert (left["target_x"], left["target_y"]) == pytest.approx((30.2, 40.4), abs=1e-6)
    assert (left["xc"], left["yc"]) == pytest.approx((30.2, 40.4), abs=0.05)
    assert (right["xc"], right["yc"]) == pytest.approx((90.6, 41.1), abs=0.05)
    assert right["n"] == pytest.approx(3.0, rel=0.1) and left["n"] == pytest.approx(1.0, rel=0.1)
    assert not left["psf_shifted"] and right["psf_shifted"] and right["psf_dx"] == pytest.approx(0.8, abs=0.03)
    # --radec on an image without a WCS: that image's error.
    write(tmp_path / "nowcs.fits", img)
    assert main(["fit", str(tmp_path / "nowcs.fits"), "--radec", f"{ra},{dec}", "--psf",
                 str(tmp_path / "psf_a.fits"), "--out", str(out)]) == 1
    assert "no celestial WCS" in summary(out)["nowcs"]["message"]


def test_weight_map_equals_sigma_map(tmp_path):
    img = galaxy(5)
    sigma = np.full(SHAPE, NOISE)
    weight = 1.0 / sigma**2
    weight[5:10, 5:10] = 0.0  # no data: masked
    psf = write(tmp_path / "psf.fits", PSF)
    im = write(tmp_path / "g.fits", img)
    out_s, out_w = tmp_path / "s", tmp_path / "w"
    assert main(["fit", im, "--psf", psf, "--sigma", write(tmp_path / "sig.fits", sigma), "--out", str(out_s)]) == 0
    assert main(["fit", im, "--psf", psf, "--weight", write(tmp_path / "wht.fits", weight), "--out", str(out_w)]) == 0
    s, w = summary(out_s)["g"], summary(out_w)["g"]
    for p in ("n", "re", "mag"):
        assert w[p] == pytest.approx(s[p], rel=1e-3)
        assert w[p + "_err"] == pytest.approx(s[p + "_err"], rel=0.05)
    assert fits.getheader(out_w / "g_block.fits", 2)["NMASKED"] >= fits.getheader(out_s / "g_block.fits", 2)["NMASKED"] + 25
    assert "weight map" in w["noise"]
    assert main(["fit", im, "--psf", psf, "--sigma", "x.fits", "--weight", "y.fits", "--out", str(out_w)]) == 2


def test_psf_none_bad_psfs_and_errors_per_image(tmp_path):
    img = galaxy(6)
    im = write(tmp_path / "g.fits", img)
    out = tmp_path / "out"
    nan_psf = write(tmp_path / "nan.fits", np.where(PSF > 0.5, np.nan, PSF))
    neg_psf = write(tmp_path / "neg.fits", -PSF)
    # A bad default PSF stops the run before any fit (exit 2); per image it is that image's error.
    assert main(["fit", im, "--psf", nan_psf, "--out", str(out)]) == 2
    good = write(tmp_path / "psf.fits", PSF)
    im2 = write(tmp_path / "h.fits", img)
    im3 = write(tmp_path / "k.fits", img)
    assert main(["fit", im, im2, im3, "--psf", f"{good},{nan_psf},{neg_psf}", "--out", str(out)]) == 1
    rows = summary(out)
    assert rows["g"]["status"] == "ok"
    assert "non-finite" in rows["h"]["message"] and "positive sum" in rows["k"]["message"]
    # --psf none: no convolution; a blurred galaxy then fits a larger, less concentrated profile.
    assert main(["fit", im, "--psf", "none", "--out", str(out)]) == 0
    row = summary(out)["g"]
    assert row["psf"] == "none" and row["re"] > 3.0
    assert fits.getheader(out / "g_block.fits", 2)["PSF"] == "none"
    assert main(["fit", im, "--out", str(out)]) == 2  # no PSF given at all


def test_target_without_a_source_and_fitsect(tmp_path, capsys):
    off = galaxy(7, xc=15.0, yc=16.0, re=2.0)
    centred = galaxy(8)
    psf = write(tmp_path / "psf.fits", PSF)
    a, b = write(tmp_path / "off.fits", off), write(tmp_path / "centred.fits", centred)
    out = tmp_path / "out"
    assert main(["fit", a, b, "--psf", psf, "--out", str(out)]) == 1
    assert "1 failed" in capsys.readouterr().out
    rows = summary(out)
    assert rows["off"]["status"] == "error" and "no source within 5 px of the image centre" in rows["off"]["message"]
    assert not (out / "off_block.fits").exists()
    assert main(["fit", a, "--psf", psf, "--out", str(out), "--target", "15,16"]) == 0
    row = summary(out)["off"]
    assert row["status"] == "ok" and row["target_source"] == "--target"
    # FITSECT and FITBOX are the region fitted, GALFIT's [x1:x2,y1:y2].
    block = read_block(out / "off_block.fits")
    sect = block.headers["model"]["FITSECT"]
    assert sect == block.headers["model"]["FITBOX"]
    x1, x2, y1, y2 = (int(v) for v in sect.strip("[]").replace(",", ":").split(":"))
    assert 1 <= x1 < 15 < x2 <= 64 and 1 <= y1 < 16 < y2 <= 64
    assert sect != "[1:64,1:64]" or (x1, y1) == (1, 1)


def test_summary_is_merged_across_runs(tmp_path):
    psf = write(tmp_path / "psf.fits", PSF)
    a, b = write(tmp_path / "a.fits", galaxy(9)), write(tmp_path / "b.fits", galaxy(10, n=3.0))
    out = tmp_path / "out"
    assert main(["fit", a, b, "--psf", psf, "--out", str(out), "--zeropoint", "25"]) == 0
    first = summary(out)
    # Rerun b only, with another zeropoint: b's row changes, a's is kept as it was.
    assert main(["fit", b, "--psf", psf, "--out", str(out), "--zeropoint", "26"]) == 0
    second = summary(out)
    assert list(second) == ["a", "b"]
    assert second["a"]["mag"] == first["a"]["mag"] and second["a"]["fitted_at"] == first["a"]["fitted_at"]
    assert second["b"]["mag"] == pytest.approx(first["b"]["mag"] + 1.0, abs=1e-6)
    # b now fails (no source at the target): its old block goes, so the folder and the summary agree.
    assert main(["fit", b, "--psf", psf, "--out", str(out), "--target", "5,5"]) == 1
    third = summary(out)
    assert third["b"]["status"] == "error" and "removed" in third["b"]["message"]
    assert not (out / "b_block.fits").exists() and (out / "a_block.fits").exists()
    # A summary written by the previous version (no id column, status "failed") merges too.
    Table({"image": [a], "block": [str(out / "a_block.fits")], "status": ["failed"], "message": ["x"],
           "chi2nu": [1.0]}).write(out / "fit_summary.ecsv", overwrite=True)
    assert main(["fit", b, "--psf", psf, "--out", str(out)]) == 0
    assert sorted(summary(out)) == ["a", "b"]


def test_flagged_fits_are_reported(tmp_path, capsys):
    """A profile flatter than n = 0.2 allows: the block is written, the row says why not to trust it."""
    flat = mock(SHAPE, 32.3, 31.8, 21.0, 4.0, 0.12, 0.7, 0.0) + np.random.default_rng(11).normal(0, 1e-4, SHAPE)
    im = write(tmp_path / "flat.fits", flat)
    out = tmp_path / "out"
    assert main(["fit", im, "--psf", write(tmp_path / "psf.fits", PSF), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "flagged flat: N at its bound" in printed and "(0 ok, 1 flagged)" in printed
    row = summary(out)["flat"]
    assert row["status"] == "flagged" and row["fit_flags"] == "n_at_bound" and row["n_flag"] == "problem"
    assert fits.getheader(out / "flat_block.fits", 2)["1_N"].startswith("*")
