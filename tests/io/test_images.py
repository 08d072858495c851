"""Tests of core.io.images (HDU selectors, multi-extension files) and core.io.calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits

from core.io.calibration import bunit_kind, exposure_time, pixel_scale, zeropoint
from core.io.images import ImageReadError, parse_selector, read_fits_image, read_image


def mef(path, named=True):
    """A primary header and SCI,1 / SCI,2 / WHT,1 extensions of different shapes and values."""
    primary = fits.PrimaryHDU()
    primary.header["EXPTIME"] = 500.0
    hdus = [primary]
    for k, (name, ver, shape) in enumerate([("SCI", 1, (10, 12)), ("SCI", 2, (20, 16)), ("WHT", 1, (10, 12))]):
        h = fits.ImageHDU(np.full(shape, k + 1.0, dtype=np.float32))
        if named:
            h.header["EXTNAME"], h.header["EXTVER"] = name, ver
        hdus.append(h)
    hdus.append(fits.BinTableHDU.from_columns([fits.Column("a", "E", array=np.zeros(2))]))
    fits.HDUList(hdus).writeto(path)
    return str(path)


def test_parse_selector():
    assert parse_selector("a.fits") == ("a.fits", None)
    assert parse_selector("dir/a.fits.gz[3]") == ("dir/a.fits.gz", 3)
    assert parse_selector("a.fits[sci]") == ("a.fits", "SCI")
    assert parse_selector("a.fits[SCI,2]") == ("a.fits", ("SCI", 2))
    assert parse_selector("a.fits[ SCI , 2 ]") == ("a.fits", ("SCI", 2))
    with pytest.raises(ImageReadError, match="sections are not supported"):
        parse_selector("a.fits[1:100,1:100]")
    for bad in ("a.fits[]", "a.fits[SCI,x]", "a.fits[1,2,3]"):
        with pytest.raises(ImageReadError):
            parse_selector(bad)


def test_file_whose_name_has_brackets(tmp_path):
    path = tmp_path / "odd[1].fits"
    fits.PrimaryHDU(np.ones((3, 4))).writeto(path)
    assert parse_selector(str(path)) == (str(path), None)
    assert read_image(path).shape == (3, 4)


def test_mef_selectors(tmp_path):
    path = mef(tmp_path / "m.fits")
    sci2 = read_fits_image(path + "[SCI,2]")
    assert sci2.data.shape == (20, 16) and sci2.data[0, 0] == 2.0 and sci2.data.dtype == np.float64
    assert (sci2.index, sci2.extname, sci2.extver) == (2, "SCI", 2)
    assert sci2.label == "m.fits[2: SCI,2]"
    assert read_fits_image(path + "[2]").data[0, 0] == 2.0
    assert read_fits_image(path + "[sci]").data[0, 0] == 1.0  # the first SCI
    assert read_fits_image(path + "[WHT,1]").data[0, 0] == 3.0
    # Keys kept in the primary header only reach the extension's header.
    assert sci2.header["EXPTIME"] == 500.0


def test_mef_without_selector_lists_the_hdus(tmp_path):
    path = mef(tmp_path / "m.fits")
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    msg = str(info.value)
    assert "3 image HDUs" in msg
    for part in ("[1] SCI,1 12x10", "[2] SCI,2 16x20", "[3] WHT,1 12x10", "m.fits[N]"):
        assert part in msg
    unnamed = mef(tmp_path / "u.fits", named=False)
    with pytest.raises(ImageReadError, match=r"\[1\] 12x10; \[2\] 16x20; \[3\] 12x10"):
        read_image(unnamed)


def test_bad_selectors(tmp_path):
    path = mef(tmp_path / "m.fits")
    with pytest.raises(ImageReadError, match="no HDU 7"):
        read_image(path + "[7]")
    with pytest.raises(ImageReadError, match="no HDU 'ERR'"):
        read_image(path + "[ERR]")
    with pytest.raises(ImageReadError, match="HDU 0 is not a 2-D image"):
        read_image(path + "[0]")
    with pytest.raises(ImageReadError, match="HDU 4 is not a 2-D image"):
        read_image(path + "[4]")
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "missing.fits[1]")
    (tmp_path / "junk.fits").write_text("not FITS")
    with pytest.raises(ImageReadError, match="cannot read"):
        read_image(tmp_path / "junk.fits")


def test_single_image_and_scaled_integers(tmp_path):
    hdu = fits.PrimaryHDU(np.array([[0, 100], [200, 300]], dtype=np.int16))
    hdu.scale("int16", bscale=0.5, bzero=10.0)
    hdu.writeto(tmp_path / "i.fits")
    data = read_image(tmp_path / "i.fits")
    assert data.dtype == np.float64
    np.testing.assert_allclose(data, [[0, 100], [200, 300]], atol=0.5)


@pytest.mark.parametrize("bunit, kind", [
    ("ELECTRONS/S", "rate"), ("electrons/s", "rate"), ("electron / s", "rate"), ("e-/s", "rate"),
    ("counts/s", "rate"), ("COUNTS/SEC", "rate"), ("cps", "rate"), ("DN/s", "rate"), ("e-.s**-1", "rate"),
    ("ELECTRONS", "counts"), ("counts", "counts"), ("ADU", "counts"), ("MJy/sr", "surface brightness"),
    ("", "none"), (None, "none"), ("erg/s/cm2/A", "unknown")])
def test_bunit_kind(bunit, kind):
    assert bunit_kind(bunit) == kind


def test_exposure_time_rules():
    rate = fits.Header({"BUNIT": "ELECTRONS/S", "EXPTIME": 1000.0})
    assert exposure_time(rate)[0] == 1.0
    assert "not applied" in exposure_time(rate)[1]
    assert exposure_time(fits.Header({"BUNIT": "ELECTRONS", "EXPTIME": 1000.0})) == (1000.0, "EXPTIME header key")
    assert exposure_time(fits.Header({"EXPTIME": 250.0}))[0] == 250.0  # no BUNIT: GALFIT's rule
    assert exposure_time(fits.Header({"BUNIT": "MJy/sr", "EXPTIME": 9.0}))[0] == 1.0
    assert exposure_time(fits.Header()) == (1.0, "no EXPTIME key")
    assert exposure_time(rate, override=30.0) == (30.0, "--exptime")
    with pytest.raises(ValueError):
        exposure_time(rate, override=0.0)


def test_zeropoint_rules():
    # WFC3/IR F105W: PHOTFLAM 3.0386574e-20, PHOTPLAM 10551.047 -> AB 26.269 (the STScI table's 26.27).
    hst = fits.Header({"PHOTFLAM": 3.0386574e-20, "PHOTPLAM": 10551.047, "PHOTZPT": -21.1})
    zp, source = zeropoint(hst)
    by_hand = -2.5 * math.log10(3.0386574e-20) - 21.10 - 5 * math.log10(10551.047) + 18.692
    assert zp == pytest.approx(by_hand, abs=1e-3) and zp == pytest.approx(26.269, abs=0.002)
    assert source == "PHOTFLAM, PHOTPLAM (AB)"
    # An explicit MAGZPT wins over PHOTFLAM; --zeropoint over both.
    assert zeropoint(fits.Header({"MAGZPT": 26.563, **hst})) == (26.563, "MAGZPT")
    assert zeropoint(fits.Header({"ZP": 30.0})) == (30.0, "ZP")
    assert zeropoint(hst, override=25.0) == (25.0, "--zeropoint")
    # PHOTZPT alone (the ST zeropoint of a flux density) is never taken as the image's zeropoint.
    zp, source = zeropoint(fits.Header({"PHOTZPT": -21.1}), default=25.9463)
    assert zp == 25.9463 and "PHOTZPT" in source and source.startswith("default")
    assert zeropoint(fits.Header())[0] is None
    # JWST: MJy/sr with PIXAR_SR (NIRCam 0.031"/px: 2.29e-14 sr) -> AB 28.0.
    jwst = fits.Header({"BUNIT": "MJy/sr", "PIXAR_SR": 2.29e-14})
    assert zeropoint(jwst)[0] == pytest.approx(-2.5 * math.log10(2.29e-14 * 1e6 / 3631), abs=1e-9)


def test_pixel_scale_sources():
    cd = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -1e-5, "CD1_2": 0.0,
                      "CD2_1": 0.0, "CD2_2": 1e-5})
    assert pixel_scale(cd) == (pytest.approx(0.036), "WCS (CD matrix)")
    pc = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CDELT1": 1.0, "CDELT2": 1.0,
                      "PC1_1": -1.6666667e-5, "PC2_2": 1.6666667e-5})
    assert pixel_scale(pc) == (pytest.approx(0.06), "WCS (PC, CDELT)")
    # A rotated CD matrix (GOODS-S's, 0.05"/px at ~70 deg).
    t = math.radians(70.0)
    s = 0.05 / 3600
    rot = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CD1_1": -s * math.cos(t),
                       "CD1_2": s * math.sin(t), "CD2_1": s * math.sin(t), "CD2_2": s * math.cos(t)})
    assert pixel_scale(rot)[0] == pytest.approx(0.05)
    assert pixel_scale(fits.Header({"PIXSCALE": 0.1})) == (0.1, "PIXSCALE")
    scale, source = pixel_scale(fits.Header())
    assert math.isnan(scale) and source == ""
