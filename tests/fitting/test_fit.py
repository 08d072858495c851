"""Tests of core.fitting.fit: recovery on mocks, masks, flags, blocks, the `resx fit` command, real HST data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from core.fitting.fit import SersicFitError, fit_sersic, fit_to_block
from core.fitting.sersic import convolve_psf, sersic_image
from core.io.galfit import read_block

ZP = 25.9463


def gaussian_psf(fwhm: float = 3.0, size: int = 25) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    s = fwhm / (2 * math.sqrt(2 * math.log(2)))
    c = size // 2
    return np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * s * s))


PSF = gaussian_psf()


def mock(shape=(100, 100), xc=50.3, yc=50.8, mag=21.0, re=3.0, n=1.0, ar=0.6, pa=30.0):
    return convolve_psf(sersic_image(shape, xc, yc, mag, re, n, ar, pa, ZP), PSF)


@pytest.mark.parametrize(
    "shape, re, n, ar, pa",
    [((100, 100), 3.0, 1.0, 0.6, 30.0), ((100, 100), 3.0, 4.0, 0.8, -50.0),
     ((100, 100), 8.0, 4.0, 0.7, 10.0), ((64, 64), 6.0, 1.0, 0.4, 80.0)],
)
def test_noiseless_recovery(shape, re, n, ar, pa):
    xc, yc = shape[1] / 2 + 0.3, shape[0] / 2 + 0.8
    img = mock(shape, xc, yc, 21.0, re, n, ar, pa)
    fit = fit_sersic(img, PSF, zeropoint=ZP)
    assert fit.converged
    assert fit.value("N") == pytest.approx(n, rel=0.02)  # goal: 5 %
    assert fit.value("RE") == pytest.approx(re, rel=0.02)
    assert fit.value("MAG") == pytest.approx(21.0, abs=0.01)
    assert fit.value("AR") == pytest.approx(ar, abs=0.01)
    assert fit.value("PA") == pytest.approx(pa, abs=0.5)
    assert (fit.value("XC"), fit.value("YC")) == pytest.approx((xc, yc), abs=0.01)
    assert all(p.flag == "free" for p in fit.params.values())
    # The model includes the sky; the residual is image - model.
    np.testing.assert_allclose(fit.residual, img - fit.model)
    assert np.abs(fit.residual).max() < 1e-3 * img.max()


def snr_noise(img: np.ndarray, snr: float) -> float:
    """Pixel σ giving the matched-filter S/N ``sqrt(Σ I²) / σ = snr`` (GalSim's definition)."""
    return float(np.sqrt((img**2).sum()) / snr)


@pytest.mark.parametrize("re, n", [(3.0, 1.0), (5.0, 4.0)])
def test_snr50_recovery_unbiased_and_errors_honest(re, n):
    """S/N = 50 mocks (sky 0.01, fitted): median n and Re within 15 %; errors match the scatter."""
    truth = mock(re=re, n=n, ar=0.7, pa=20.0)
    sig = snr_noise(truth, 50.0)
    dn, dre, pulls = [], [], []
    for seed in range(8):
        img = truth + np.random.default_rng(seed).normal(0, sig, truth.shape) + 0.01
        fit = fit_sersic(img, PSF, zeropoint=ZP)
        assert fit.converged
        dn.append(fit.value("N") / n - 1)
        dre.append(fit.value("RE") / re - 1)
        pulls.append((fit.value("N") - n) / fit.params["N"].error)
        assert fit.sky_rms == pytest.approx(sig, rel=0.1)
    assert abs(np.median(dn)) < 0.15
    assert abs(np.median(dre)) < 0.15
    # Jacobian errors × sqrt(chi2nu) are of the size of the actual scatter.
    assert np.max(np.abs(pulls)) < 4.0
    assert 0.4 < np.std(pulls) < 2.0


def test_high_snr_recovery_each_realisation():
    truth = mock(re=4.0, n=2.5, ar=0.6, pa=-30.0)
    sig = snr_noise(truth, 300.0)
    for seed in range(3):
        img = truth + np.random.default_rng(seed).normal(0, sig, truth.shape)
        fit = fit_sersic(img, PSF, zeropoint=ZP)
        assert fit.value("N") == pytest.approx(2.5, rel=0.05)
        assert fit.value("RE") == pytest.approx(4.0, rel=0.05)


def test_neighbour_is_masked():
    rng = np.random.default_rng(3)
    host = mock(re=4.0, n=1.5, ar=0.7, pa=0.0)
    neighbour = mock(xc=78.0, yc=72.0, mag=19.5, re=3.0, n=1.0, ar=0.9, pa=0.0)
    sig = snr_noise(host, 200.0)
    img = host + neighbour + rng.normal(0, sig, host.shape)
    fit = fit_sersic(img, PSF, zeropoint=ZP)
    assert fit.mask[71, 77]  # the neighbour's centre (numpy index) is masked
    assert not fit.mask[49, 49]  # the host is not
    assert fit.segmap[49, 49] == fit.goi_label > 0
    assert fit.value("N") == pytest.approx(1.5, rel=0.05)
    assert fit.value("RE") == pytest.approx(4.0, rel=0.05)
    # Without the mask the neighbour's light biases the fit.
    unmasked = fit_sersic(img, PSF, zeropoint=ZP, segmap=np.zeros(img.shape, int), target_radius=None)
    assert abs(unmasked.value("MAG") - 21.0) > 5 * abs(fit.value("MAG") - 21.0)


def test_fixed_and_problem_flags():
    img = mock(re=3.0, n=1.0)
    fit = fit_sersic(img, PSF, zeropoint=ZP, init={"N": 2.0, "SKY": 0.0}, fixed=["N", "SKY"])
    assert fit.params["N"].flag == "fixed" and fit.value("N") == 2.0
    assert math.isnan(fit.params["N"].error)
    assert fit.params["SKY"].flag == "fixed"
    assert fit.params["RE"].flag in ("free", "problem")
    # A profile flatter than the n >= 0.2 bound allows: n sticks at the bound -> *problem*.
    flat = fit_sersic(mock(re=4.0, n=0.12, ar=0.7), PSF, zeropoint=ZP)
    assert flat.params["N"].flag == "problem"
    assert flat.value("N") == pytest.approx(0.2)
    assert flat.params["RE"].flag == "free"
    # Stopped before convergence: every free parameter is a problem.
    short = fit_sersic(mock(re=5.0, n=3.0), PSF, zeropoint=ZP, max_nfev=1)
    assert not short.converged
    assert {p.flag for p in short.params.values()} == {"problem"}


def test_exptime_and_bad_input():
    img = mock(mag=21.0)
    fit = fit_sersic(img, PSF, zeropoint=ZP, exptime=100.0)
    # mag = zp - 2.5 log10(flux / exptime): exptime 100 makes the same counts 5 mag fainter.
    assert fit.value("MAG") == pytest.approx(21.0 + 5.0, abs=0.01)
    bad = img.copy()
    bad[10:20, 10:20] = np.nan
    assert fit_sersic(bad, PSF, zeropoint=ZP).mask[15, 15]
    with pytest.raises(SersicFitError, match="no valid pixels"):
        fit_sersic(np.full((30, 30), np.nan), PSF)
    with pytest.raises(SersicFitError, match="PSF"):
        fit_sersic(img, np.zeros((5, 5)))
    with pytest.raises(SersicFitError, match="mask shape"):
        fit_sersic(img, PSF, mask=np.zeros((3, 3)))
    with pytest.raises(SersicFitError, match="unknown"):
        fit_sersic(img, PSF, init={"BOGUS": 1.0})


def test_block_round_trip(tmp_path):
    img = mock(re=3.0, n=2.0) + 0.05 + np.random.default_rng(1).normal(0, 0.01, (100, 100))
    out = tmp_path / "g_block.fits"
    fit = fit_to_block(img, PSF, out, zeropoint=ZP, init={"N": 2.0}, fixed=["N"])
    block = read_block(out)
    assert block.zeropoint == pytest.approx(ZP)
    assert block.chi2nu == pytest.approx(fit.chi2nu, rel=1e-4)
    for name in ("XC", "YC", "MAG", "RE", "N", "AR", "PA", "SKY"):
        assert block.params[name].value == pytest.approx(fit.params[name].value, abs=6e-5), name
        assert block.params[name].flag == fit.params[name].flag
    assert block.params["N"].flag == "fixed"
    np.testing.assert_allclose(block.input, img, rtol=1e-6)
    np.testing.assert_allclose(block.model, fit.model, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(block.residual, block.input - block.model, atol=1e-6)
    # The model HDU includes the sky, as GALFIT's.
    assert np.median(block.model[:5, :5]) == pytest.approx(0.05, abs=0.002)


def _write(path, data, **header):
    hdu = fits.PrimaryHDU(np.asarray(data, dtype=np.float32))
    for k, v in header.items():
        hdu.header[k] = v
    hdu.writeto(path)
    return str(path)


def test_resx_fit_command(tmp_path, capsys):
    from core.cli.main import main

    rng = np.random.default_rng(5)
    good1 = _write(tmp_path / "a.fits", mock(re=3.0, n=1.0) + rng.normal(0, 0.005, (100, 100)))
    good2 = _write(tmp_path / "b.fits.gz", mock(re=5.0, n=3.0) + rng.normal(0, 0.005, (100, 100)))
    broken = tmp_path / "c.fits"
    broken.write_text("not a FITS file")
    psf = _write(tmp_path / "psf.fits", PSF)
    out = tmp_path / "out"
    status = main(["fit", good1, good2, str(broken), "--psf", psf, "--out", str(out),
                   "--zeropoint", str(ZP)])
    assert status == 1
    err = capsys.readouterr().err
    assert "c.fits" in err and "Traceback" not in err
    assert (out / "a_block.fits").is_file() and (out / "b_block.fits").is_file()
    assert read_block(out / "b_block.fits").params["N"].value == pytest.approx(3.0, rel=0.05)
    summary = Table.read(out / "fit_summary.ecsv")
    assert list(summary["status"]) == ["ok", "ok", "error"]
    assert "c.fits" in summary["message"][2]
    # All good: status 0.
    assert main(["fit", good1, "--psf", psf, "--out", str(out)]) == 0


def test_real_galfit_example_matches_galfit(shared_data, tmp_path):
    """GALFIT's own example (GOODS-S F606W): compare with its solution in galfit.01."""
    folder = shared_data / "galfit_goodss_f606w"
    image = fits.getdata(folder / "gal.fits").astype(float)
    header = fits.getheader(folder / "gal.fits")
    psf = fits.getdata(folder / "psf.fits").astype(float)
    # galfit.01: mag 22.9761, Re 2.6233, n 4.1097, b/a 0.8572, PA -71.7466; zeropoint 26.563.
    # GALFIT's magnitudes refer to counts / EXPTIME and its sigma image has the Poisson term (GAIN).
    fit = fit_to_block(image, psf, tmp_path / "gal_block.fits", zeropoint=26.563,
                       exptime=float(header["EXPTIME"]), gain=float(header["GAIN"]))
    assert fit.converged
    assert fit.value("MAG") == pytest.approx(22.9761, abs=0.1)
    assert fit.value("RE") == pytest.approx(2.6233, rel=0.15)
    assert fit.value("N") == pytest.approx(4.1097, rel=0.15)
    assert fit.value("AR") == pytest.approx(0.8572, abs=0.05)
    assert fit.value("PA") == pytest.approx(-71.7466, abs=10)
    assert (fit.value("XC"), fit.value("YC")) == pytest.approx((46.5265, 48.2556), abs=0.1)
    block = read_block(tmp_path / "gal_block.fits")
    assert block.params["N"].value == pytest.approx(fit.value("N"), abs=1e-4)
    np.testing.assert_allclose(block.residual, block.input - block.model, atol=1e-3)


def test_real_hst_wfc3_dwarf_with_rms_map(shared_data, tmp_path):
    """A WFC3/IR F105W dwarf (0.06"/px, the CANDELS H scale) with its rms map, via `resx fit`."""
    from core.cli.main import main

    folder = shared_data / "hst_abell2744_f105w"
    status = main(["fit", str(folder / "abell_2744_dwarf_galaxy_f105w.fits.gz"),
                   "--psf", str(folder / "f105w_psf.fits.gz"),
                   "--sigma", str(folder / "abell_2744_dwarf_galaxy_f105w_rms.fits.gz"),
                   "--out", str(tmp_path), "--zeropoint", "26.27"])
    assert status == 0
    block = read_block(tmp_path / "abell_2744_dwarf_galaxy_f105w_block.fits")
    p = block.params
    # A low-concentration, nearly round dwarf at the stamp centre.
    assert p["XC"].value == pytest.approx(101, abs=3) and p["YC"].value == pytest.approx(101, abs=3)
    assert 0.5 < p["N"].value < 2.5
    assert 4 < p["RE"].value < 20
    assert p["AR"].value > 0.7
    assert all(math.isfinite(p[k].error) for k in ("MAG", "RE", "N"))
    assert 0.5 < block.chi2nu < 3


def test_adaptive_sampling_agrees_with_full():
    """The adaptive central sub-sampling gives the fit of the full hierarchy (within errors)."""
    truth = mock(re=4.0, n=2.0, ar=0.7, pa=20.0)
    img = truth + np.random.default_rng(4).normal(0, snr_noise(truth, 100.0), truth.shape)
    fast = fit_sersic(img, PSF, zeropoint=ZP)
    full = fit_sersic(img, PSF, zeropoint=ZP, sampling="full")
    for name in ("N", "RE", "MAG"):
        assert abs(fast.value(name) - full.value(name)) < 0.2 * full.params[name].error, name
    with pytest.raises(SersicFitError, match="sampling"):
        fit_sersic(img, PSF, sampling="bogus")


def test_whole_number_centre_fits():
    """A galaxy and a starting centre on a pixel centre (XC, YC whole numbers): no NaN, no crash."""
    img = mock(xc=51.0, yc=51.0, re=3.0, n=1.0) + np.random.default_rng(8).normal(0, 1e-3, (100, 100))
    for init in ({"XC": 51.0, "YC": 51.0},
                 {"XC": 51.0, "YC": 51.0, "MAG": 21.0, "RE": 3.0, "N": 1.0, "AR": 0.6, "PA": 30.0}):
        fit = fit_sersic(img, PSF, zeropoint=ZP, init=init)
        assert fit.converged and not fit.flags
        assert (fit.value("XC"), fit.value("YC")) == pytest.approx((51.0, 51.0), abs=0.01)
        assert fit.value("N") == pytest.approx(1.0, rel=0.01)
    fit = fit_sersic(img, PSF, zeropoint=ZP, target=(51.0, 51.0))
    assert fit.target == (51.0, 51.0) and fit.target_distance < 0.5


def test_no_source_at_the_target_is_an_error():
    """The galaxy sits at (30, 30): asked for the image centre, the fit refuses and says where it is."""
    img = mock(xc=30.0, yc=31.0, re=2.5, n=1.0) + np.random.default_rng(9).normal(0, 2e-3, (100, 100))
    with pytest.raises(SersicFitError) as info:
        fit_sersic(img, PSF, zeropoint=ZP)
    msg = str(info.value)
    assert "no source within 5 px of the image centre (50.50, 50.50)" in msg
    assert "nearest source, at (30.0, 31.0), is 28.3 px away" in msg
    with pytest.raises(SersicFitError, match="within 3 px of the target"):
        fit_sersic(img, PSF, zeropoint=ZP, target=(35.0, 31.0), target_radius=3.0)
    with pytest.raises(SersicFitError, match="off the 100x100 image"):
        fit_sersic(img, PSF, zeropoint=ZP, target=(150.0, 31.0))
    fit = fit_sersic(img, PSF, zeropoint=ZP, target=(32.0, 32.0))
    assert not fit.flags and fit.value("XC") == pytest.approx(30.0, abs=0.05)


def test_bound_hitting_parameters_are_flagged_not_free(tmp_path):
    # n below its bound 0.2: n sticks at it -> *value* in the block, n_at_bound, not "free".
    out = tmp_path / "flat_block.fits"
    fit = fit_to_block(mock(re=4.0, n=0.12, ar=0.7), PSF, out, zeropoint=ZP)
    assert fit.flags == ("n_at_bound",)
    assert "N at its bound (0.2)" in fit.notes["n_at_bound"]
    model = fits.getheader(out, 2)
    assert model["1_N"].startswith("*0.2000*")
    assert model["FITFLAGS"] == "n_at_bound"
    assert read_block(out).params["N"].flag == "problem"
    # The centre runs to its ±10 px box: a start 14 px from the galaxy, everything one segment.
    img = mock(re=3.0, n=1.0)
    start = {"XC": 36.3, "YC": 50.8, "MAG": 21.0, "RE": 3.0, "N": 1.0, "AR": 0.6, "PA": 30.0}
    run = fit_sersic(img, PSF, zeropoint=ZP, init=start, segmap=np.ones(img.shape, int), target_radius=None)
    assert "centre_at_box" in run.flags
    assert run.params["XC"].flag == "problem" and run.value("XC") == pytest.approx(46.3, abs=0.05)


def test_centre_in_mask_and_ambiguous_target_are_flagged():
    rng = np.random.default_rng(10)
    img = mock(re=3.0, n=1.5) + rng.normal(0, 2e-3, (100, 100))
    core = np.zeros(img.shape, bool)
    core[48:54, 48:54] = True  # e.g. a saturated core, masked
    fit = fit_sersic(img, PSF, zeropoint=ZP, mask=core)
    assert "centre_in_mask" in fit.flags and "bad or masked pixel" in fit.notes["centre_in_mask"]
    # Two sources within 5 px of the target: fitted the nearer, flagged.
    pair = img + mock(xc=54.5, yc=50.8, mag=23.0, re=1.0, n=1.0, ar=1.0)
    seg = np.zeros(img.shape, int)
    seg[40:62, 38:53] = 1
    seg[40:62, 53:62] = 2
    fit = fit_sersic(pair, PSF, zeropoint=ZP, segmap=seg)
    assert "ambiguous_target" in fit.flags and fit.goi_label == 1
