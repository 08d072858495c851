import math

import numpy as np
import pytest
from astropy.io import fits

from core.io.galfit import (
    PARAM_NAMES,
    GalfitBlockError,
    GalfitParameter,
    format_parameter,
    parse_parameter,
    read_block,
    write_block,
)

# Header strings as GALFIT 3 writes them (the real block, flagged and fixed parameters).
REAL_STRINGS = {
    "46.5265 +/- 0.0000": (46.5265, 0.0, "free"),
    "-71.7466 +/- 0.0000": (-71.7466, 0.0, "free"),
    "22.9761 +/- 0.0123": (22.9761, 0.0123, "free"),
    "*12.3000* +/- *0.5000*": (12.3, 0.5, "problem"),
    "*0.0500* +/- *12.2000*": (0.05, 12.2, "problem"),
    "[47.0000]": (47.0, math.nan, "fixed"),
    "[0.000e+00]": (0.0, math.nan, "fixed"),
    "1.234e-04 +/- 5.600e-05": (1.234e-4, 5.6e-5, "free"),
    "nan +/- nan": (math.nan, math.nan, "free"),
    "-nan +/- -nan": (math.nan, math.nan, "free"),
    "*nan* +/- *nan*": (math.nan, math.nan, "problem"),
    "  3.5  ": (3.5, math.nan, "free"),
}


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=0)


@pytest.mark.parametrize("text,expected", REAL_STRINGS.items())
def test_parse_parameter_forms_galfit_writes(text, expected):
    p = parse_parameter(text)
    assert _same(p.value, expected[0])
    assert _same(p.error, expected[1])
    assert p.flag == expected[2]


@pytest.mark.parametrize("text", ["", "abc", "1.0, 2.0", "1.0 +/-", "[1.0", "12.3 +- 0.1", "*"])
def test_parse_parameter_rejects_garbage(text):
    with pytest.raises(ValueError, match="cannot parse"):
        parse_parameter(text)


@pytest.mark.parametrize("text", list(REAL_STRINGS)[:8])
def test_format_parse_round_trip_of_real_strings(text):
    p = parse_parameter(text)
    assert parse_parameter(format_parameter(p)) == p


def test_format_parameter_matches_galfit_layout():
    assert format_parameter(GalfitParameter(46.52651, 0.01234)) == "46.5265 +/- 0.0123"
    assert format_parameter(GalfitParameter(12.3, 0.5, "problem")) == "*12.3000* +/- *0.5000*"
    assert format_parameter(GalfitParameter(47.0, flag="fixed")) == "[47.0000]"
    assert format_parameter(3e-4) == "3.0000e-04"
    with pytest.raises(ValueError):
        GalfitParameter(1.0, flag="frozen")


def _params():
    return {
        "XC": GalfitParameter(20.5, 0.01),
        "YC": GalfitParameter(21.25, 0.02),
        "MAG": GalfitParameter(23.4567, 0.05, "problem"),
        "RE": GalfitParameter(3.2, 0.1),
        "N": GalfitParameter(4.0, flag="fixed"),
        "AR": GalfitParameter(0.7, 0.01),
        "PA": GalfitParameter(-35.0, 2.0),
        "SKY": GalfitParameter(2.5e-4, 1e-5),
    }


def _images(shape=(40, 41), seed=0):
    rng = np.random.default_rng(seed)
    model = rng.random(shape)
    inp = model + rng.normal(0, 0.1, shape)
    return inp, model


def test_write_read_round_trip(tmp_path):
    inp, model = _images()
    path = write_block(tmp_path / "b.fits", inp, model, params=_params(), zeropoint=25.9463,
                       chi2nu=1.05, extra_header={"PSF": ("psf.fits", "Convolution PSF")})
    b = read_block(path)
    assert b.path == str(path)
    np.testing.assert_allclose(b.input, inp.astype(np.float32))
    np.testing.assert_allclose(b.model, model.astype(np.float32))
    np.testing.assert_allclose(b.residual, (inp - model).astype(np.float32), atol=1e-6)
    for name, p in _params().items():
        assert b.params[name] == p, name
    assert b.params["MAG"].flag == "problem" and b.params["N"].flag == "fixed"
    assert b.zeropoint == 25.9463 and b.chi2nu == 1.05
    assert b.headers["model"]["PSF"] == "psf.fits"
    assert b.shape == (40, 41)
    assert b.problems == []


def test_written_block_has_classic_galfit_layout(tmp_path):
    inp, model = _images((10, 12))
    write_block(tmp_path / "b.fits", inp, model, params=_params(), zeropoint=26.0)
    with fits.open(tmp_path / "b.fits") as hdul:
        assert len(hdul) == 4 and hdul[0].data is None
        assert [h.header.get("EXTNAME") for h in hdul[1:]] == [None, None, None]
        assert hdul[1].header["OBJECT"] == "input.fits[1:12,1:10]"
        m = hdul[2].header
        assert m["OBJECT"] == "model" and hdul[3].header["OBJECT"] == "residual map"
        assert m["COMP_1"] == "sersic" and m["COMP_2"] == "sky"
        assert m["1_MAG"] == "*23.4567* +/- *0.0500*"
        assert m["1_N"] == "[4.0000]"
        assert m["2_XC"] == "[6.5000]" and m["2_YC"] == "[5.5000]"
        assert m["MAGZPT"] == 26.0
        assert "CHI2NU" not in m
        assert hdul[1].data.dtype == np.dtype(">f4")


def test_write_long_problem_card_without_warning_and_repeated_writes(tmp_path):
    # '*...* +/- *...*' with the PA comment is 81 characters: the comment is cut, silently.
    import warnings

    params = _params()
    params["PA"] = GalfitParameter(-33.1234, 1.25, "problem")
    inp, model = _images((10, 12))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_block(tmp_path / "a.fits", inp, model, params=params, zeropoint=26.0,
                    extra_header={"SIMSEED": (1, "seed")})
    with fits.open(tmp_path / "a.fits") as hdul:
        card = hdul[2].header.cards["1_PA"]
        assert card.value == "*-33.1234* +/- *1.2500*"
        assert len(card.image) == 80 and card.comment.startswith("Position Angle (PA)")
    # A second block of the same layout, then another layout: nothing leaks between writes.
    other = {k: v for k, v in _params().items() if k != "SKY"}
    write_block(tmp_path / "b.fits", model, inp, params=_params(), zeropoint=26.0,
                extra_header={"SIMSEED": (2, "seed")}, input_name="b.fits")
    write_block(tmp_path / "c.fits", inp, model, params=other)
    a, b, c = (read_block(tmp_path / f"{k}.fits") for k in "abc")
    np.testing.assert_array_equal(b.input, model.astype(np.float32))
    np.testing.assert_array_equal(a.input, inp.astype(np.float32))
    assert a.params["PA"].flag == "problem" and b.params["PA"] == _params()["PA"]
    assert a.headers["model"]["SIMSEED"] == 1 and b.headers["model"]["SIMSEED"] == 2
    assert b.headers["input"]["OBJECT"] == "b.fits[1:12,1:10]"
    assert "SKY" not in c.params and "SIMSEED" not in c.headers["model"]
    assert c.zeropoint is None


def test_write_without_sky_or_residual(tmp_path):
    inp, model = _images((8, 8))
    params = {k: float(v.value) for k, v in _params().items() if k != "SKY"}
    b = read_block(write_block(tmp_path / "b.fits", inp, model, params=params))
    assert "SKY" not in b.params and b.zeropoint is None and b.chi2nu is None
    assert b.params["XC"] == GalfitParameter(20.5)


def test_write_rejects_bad_input(tmp_path):
    inp, model = _images((8, 8))
    with pytest.raises(ValueError, match="one shape"):
        write_block(tmp_path / "b.fits", inp, model[:4], params=_params())
    with pytest.raises(ValueError, match="missing parameters"):
        write_block(tmp_path / "b.fits", inp, model, params={"XC": 1.0})


def test_real_galfit_block(shared_data):
    """The block GALFIT wrote for its GOODS-S example, checked against its galfit.01."""
    folder = shared_data / "galfit_goodss_f606w"
    b = read_block(folder / "imgblock.fits")
    # Values of galfit.01 (component 1 sersic, component 2 sky, J) 26.5630).
    expected = {"XC": 46.5265, "YC": 48.2556, "MAG": 22.9761, "RE": 2.6233, "N": 4.1097,
                "AR": 0.8572, "PA": -71.7466, "SKY": 0.7300}
    text = (folder / "galfit.01").read_text()
    for name, value in expected.items():
        assert b.params[name].value == pytest.approx(value, abs=5e-5), name
        assert b.params[name].flag == "free"
        assert f"{value:.4f}" in text  # the numbers above are galfit.01's
    assert b.zeropoint == pytest.approx(26.563)
    assert b.chi2nu == pytest.approx(1.469, abs=1e-3)  # "Chi^2/nu = 1.469" in galfit.01
    assert b.component == 1
    assert b.shape == (93, 93) and b.input.shape == (93, 93)
    for img in (b.input, b.model, b.residual):
        assert img.dtype.isnative and img.dtype.kind == "f" and img.flags.c_contiguous
    np.testing.assert_allclose(b.residual, b.input - b.model, atol=1e-4)
    # The model peaks at the GALFIT centre (1-based -> numpy index value - 1).
    iy, ix = np.unravel_index(np.argmax(b.model), b.model.shape)
    assert abs(ix - (b.params["XC"].value - 1)) <= 1 and abs(iy - (b.params["YC"].value - 1)) <= 1
    # Header-only read: same parameters, no pixels.
    h = read_block(folder / "imgblock.fits", pixels=False)
    assert h.input is None and h.params == b.params and h.shape == (93, 93)


# -- bad input ------------------------------------------------------------------------------


def _good(tmp_path, name="b.fits"):
    inp, model = _images((16, 16))
    return write_block(tmp_path / name, inp, model, params=_params(), zeropoint=25.0)


def _edit(path, fn):
    with fits.open(path) as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul])
    fn(hdus)
    hdus.writeto(path, overwrite=True)
    return path


def _raises(path, match, **kw):
    with pytest.raises(GalfitBlockError, match=match) as info:
        read_block(path, **kw)
    assert str(path) in str(info.value) and info.value.path == str(path)
    assert isinstance(info.value, ValueError)
    return info.value


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.fits", "file not found")


def test_not_fits(tmp_path):
    p = tmp_path / "b.fits"
    p.write_text("SIMPLE? no, this is a text file\n" * 100)
    _raises(p, "not a readable FITS")


def test_truncated_file(tmp_path):
    p = _good(tmp_path)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 100])  # astropy alone would only warn and pad with zeros
    _raises(p, "truncated file")
    _raises(p, "truncated file", pixels=False)
    p.write_bytes(data[: len(data) - 2880 - 1000])  # the last HDU's header is cut
    _raises(p, "missing HDU")
    p.write_bytes(data[:100])
    _raises(p, "not a readable FITS")


def test_missing_hdu(tmp_path):
    p = _edit(_good(tmp_path), lambda h: h.pop(3))
    _raises(p, "missing HDU.*residual")
    # Without OBJECT keywords only the position is left.
    inp, model = _images((8, 8))
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(inp), fits.ImageHDU(model)]).writeto(tmp_path / "c.fits")
    _raises(tmp_path / "c.fits", "missing HDU.*has 3")


def test_missing_keyword(tmp_path):
    p = _edit(_good(tmp_path), lambda h: h[2].header.remove("1_RE"))
    _raises(p, "missing keyword 1_RE")
    p = _edit(_good(tmp_path, "c.fits"), lambda h: [h[2].header.remove(k) for k in ("COMP_1", "COMP_2")])
    _raises(p, "missing keyword COMP_1")


def test_no_sersic_component(tmp_path):
    def f(h):
        h[2].header["COMP_1"] = "expdisk"
    _raises(_edit(_good(tmp_path), f), "no sersic component.*1=expdisk")


def test_unparsable_value(tmp_path):
    def f(h):
        h[2].header["1_N"] = "4.0 +- oops"
    _raises(_edit(_good(tmp_path), f), "unparsable value of 1_N: '4.0 \\+- oops'")


def test_wrong_and_mismatched_shape(tmp_path):
    def cube(h):
        h[1] = fits.ImageHDU(np.zeros((2, 16, 16), np.float32), header=h[1].header)
    _raises(_edit(_good(tmp_path), cube), "wrong shape.*HDU 1 \\(input\\)")

    def small(h):
        h[3] = fits.ImageHDU(np.zeros((15, 16), np.float32), header=h[3].header)
    _raises(_edit(_good(tmp_path, "c.fits"), small), "mismatched shapes.*residual 15x16")


def test_non_finite_pixels_raise_or_are_reported(tmp_path):
    def f(h):
        h[1].data[3, 4] = np.nan
        h[3].data[0, :2] = np.inf
    p = _edit(_good(tmp_path), f)
    _raises(p, "1 non-finite pixels in the input.*2 non-finite pixels in the residual")
    b = read_block(p, strict=False)
    assert b.problems == ["1 non-finite pixels in the input image (HDU 1)",
                          "2 non-finite pixels in the residual image (HDU 3)"]
    assert np.isnan(b.input[3, 4])
    # Header-only reads do not look at pixels.
    assert read_block(p, pixels=False).problems == []


def test_nan_parameter_is_a_problem(tmp_path):
    def f(h):
        h[2].header["1_XC"] = "nan +/- nan"
    p = _edit(_good(tmp_path), f)
    _raises(p, "parameter 1_XC is nan")
    assert math.isnan(read_block(p, strict=False).params["XC"].value)


# -- other layouts --------------------------------------------------------------------------


def test_big_endian_and_integer_data_become_native_float(tmp_path):
    def f(h):
        h[1] = fits.ImageHDU(np.arange(256, dtype=">i4").reshape(16, 16), header=h[1].header)
        h[2].data = h[2].data.astype(">f8")
    b = read_block(_edit(_good(tmp_path), f))
    assert b.input.dtype == np.float64 and b.input.dtype.isnative and b.input[1, 0] == 16
    assert b.model.dtype == np.float64 and b.model.dtype.isnative
    assert b.residual.dtype == np.float32 and b.residual.dtype.isnative


def test_hdus_found_by_object_keyword_in_any_order(tmp_path):
    def f(h):
        h[2], h[3] = h[3], h[2]
    b = read_block(_edit(_good(tmp_path), f))
    assert b.params["XC"].value == 20.5
    np.testing.assert_allclose(b.residual, b.input - b.model, atol=1e-6)


def test_classic_block_without_object_keywords_by_position(tmp_path):
    def f(h):
        for i in (1, 2, 3):
            del h[i].header["OBJECT"]
    b = read_block(_edit(_good(tmp_path), f))
    np.testing.assert_allclose(b.residual, b.input - b.model, atol=1e-6)


def test_galfitm_extnames(tmp_path):
    inp, model = _images((12, 12))
    src = _good(tmp_path)
    with fits.open(src) as hdul:
        mh = hdul[2].header.copy()
    # GALFITM: named extensions in any order, band-suffixed parameter keys.
    for name in PARAM_NAMES:
        mh[f"1_{name}_H"] = mh.pop(f"1_{name}")
    mh["2_SKY_H"] = mh.pop("2_SKY")
    hdus = fits.HDUList([
        fits.PrimaryHDU(),
        fits.ImageHDU(model, header=mh, name="MODEL_H"),
        fits.ImageHDU(inp, name="INPUT_H"),
        fits.ImageHDU(inp - model, name="RESIDUAL_H"),
    ])
    hdus.writeto(tmp_path / "m.fits")
    b = read_block(tmp_path / "m.fits")
    np.testing.assert_allclose(b.input, inp)
    np.testing.assert_allclose(b.model, model)
    assert b.params["MAG"] == GalfitParameter(23.4567, 0.05, "problem")
    assert b.params["SKY"].value == pytest.approx(2.5e-4)
    del hdus[3]
    hdus.writeto(tmp_path / "m2.fits")
    _raises(tmp_path / "m2.fits", "GALFITM.*missing HDU")


def test_truncation_found_without_warnings_and_gzip_blocks_read(tmp_path):
    """Truncation is found from the HDUs' byte spans (thread-safe), even with warnings silenced,
    and a gzipped block (whose spans are uncompressed bytes) still reads."""
    import gzip
    import warnings

    p = _good(tmp_path)
    data = p.read_bytes()
    gz = tmp_path / "b.fits.gz"
    gz.write_bytes(gzip.compress(data))
    assert read_block(gz).params["N"].value == read_block(p).params["N"].value
    p.write_bytes(data[: len(data) - 100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # what another thread's catch_warnings may do meanwhile
        with pytest.raises(GalfitBlockError, match=r"truncated file \(HDU 3 needs \d+ bytes, the file has \d+\)"):
            read_block(p, pixels=False)
