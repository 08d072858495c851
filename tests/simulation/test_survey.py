"""Tests of the survey simulator (core.simulation.survey, core.simulation.substructure, core.simulation.noise)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from core.io.galfit import read_block
from core.labels import CLASSES, FIT_QUALITY, TABLE1_FRACTIONS, VOTE_LABELS
from core.simulation import noise, substructure
from core.simulation import survey as simulate

SEED = 7


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> tuple[Path, Table]:
    out = tmp_path_factory.mktemp("sim") / "survey"
    cat = simulate.simulate_survey(8, SEED, out, workers=1, progress=False)
    return out, cat


# -- the instrument ---------------------------------------------------------------------------
def test_psf_unit_sum_centred_fwhm_three_pixels():
    psf = simulate.wfc3_psf()
    assert psf.shape == (41, 41)
    np.testing.assert_allclose(psf.sum(), 1.0, rtol=1e-12)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (20, 20)
    np.testing.assert_allclose(psf, psf.T, atol=1e-15)
    # FWHM by linear interpolation of the central row: 0.18" = 3 px within 10 %
    row = psf[20, 20:]
    half = row[0] / 2
    k = np.argmax(row < half)
    r_half = (k - 1) + (row[k - 1] - half) / (row[k - 1] - row[k])
    assert 2.7 < 2 * r_half < 3.3


def test_casertano_ratio_hand_value():
    # r = 0.8 / (0.06/0.128) = 1.70667; R = r / (1 - 1/(3 r)) = 2.1209
    assert noise.casertano_ratio(0.8, 0.06 / 0.128) == pytest.approx(2.1209, abs=1e-3)
    assert noise.casertano_ratio(0.5, 1.0) == pytest.approx(1 / (1 - 0.5 / 3))
    k = noise.drizzle_kernel()
    assert noise.kernel_ratio(k) == pytest.approx(noise.casertano_ratio(), rel=1e-9)
    np.testing.assert_allclose((k * k).sum(), 1.0)


def test_correlated_noise_rms_and_correlation():
    rng = np.random.default_rng(0)
    n = noise.correlated_noise((500, 500), 0.005, rng)
    assert n.std() == pytest.approx(0.005, rel=0.02)
    # neighbouring pixels are positively correlated, as in drizzled data
    rho = np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1]
    assert 0.3 < rho < 0.7
    # the noise of 10x10 sums is R times the naive sqrt(100) sigma
    sums = n.reshape(50, 10, 50, 10).sum(axis=(1, 3))
    assert sums.std() / (0.005 * 10) == pytest.approx(noise.casertano_ratio(), rel=0.1)


def test_source_rms_is_poisson():
    np.testing.assert_allclose(noise.source_rms(np.array([0.0, 1.9, -1.0]), 1900.0),
                               [0.0, np.sqrt(1e-3), 0.0])


# -- substructure generators ------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda rng: substructure.spiral_arms((100, 100), 50.5, 50.5, 8.0, 0.7, 30.0, rng),
    lambda rng: substructure.disk_clumps((100, 100), 50.5, 50.5, 8.0, 0.7, 30.0, rng),
    lambda rng: substructure.offcentre_clump((100, 100), 50.5, 50.5, 6.0, rng),
    lambda rng: substructure.diffuse_lobe((100, 100), 50.5, 50.5, 6.0, rng),
    lambda rng: substructure.tidal_tails((100, 100), 50.5, 50.5, 6.0, rng),
])
def test_generators_unit_flux_nonnegative(make):
    img = make(np.random.default_rng(3))
    assert img.shape == (100, 100)
    assert img.min() >= 0
    assert img.sum() == pytest.approx(1.0)


def test_spiral_arms_are_point_symmetric():
    img = substructure.spiral_arms((101, 101), 51.0, 51.0, 10.0, 1.0, 0.0, np.random.default_rng(1),
                                   n_arms=2)
    # a two-armed spiral is symmetric under a rotation by 180 degrees about the centre
    np.testing.assert_allclose(img, img[::-1, ::-1], atol=1e-12)


def test_offcentre_clump_is_off_centre():
    img = substructure.offcentre_clump((100, 100), 50.5, 50.5, 6.0, np.random.default_rng(2),
                                       n_clumps=1)
    j, i = np.unravel_index(np.argmax(img), img.shape)
    assert np.hypot(i + 1 - 50.5, j + 1 - 50.5) >= 4.0


def test_point_sources_bilinear_conserve_flux_and_centroid():
    img = substructure.point_sources((20, 20), [10.3], [7.6], [2.0])
    assert img.sum() == pytest.approx(2.0)
    y, x = np.mgrid[:20, :20] + 1.0
    assert (img * x).sum() / img.sum() == pytest.approx(10.3)
    assert (img * y).sum() / img.sum() == pytest.approx(7.6)


def test_disk_to_image_follows_galfit_pa():
    # pa = 0: the major axis points along +y; pa = 90: along -x
    x, y = substructure.disk_to_image(np.array([5.0]), np.array([0.0]), 50.0, 50.0, 0.5, 0.0)
    assert (x[0], y[0]) == pytest.approx((50.0, 55.0))
    x, y = substructure.disk_to_image(np.array([5.0]), np.array([0.0]), 50.0, 50.0, 0.5, 90.0)
    assert (x[0], y[0]) == pytest.approx((45.0, 50.0))
    x, y = substructure.disk_to_image(np.array([4.0]), np.array([np.pi / 2]), 50.0, 50.0, 0.5, 0.0)
    assert (x[0], y[0]) == pytest.approx((52.0, 50.0))  # minor axis foreshortened by ar


def test_edge_mask_is_a_half_plane_at_the_distance():
    m = substructure.edge_mask((100, 100), 50.5, 50.5, np.random.default_rng(0), distance=10.0)
    assert 0.2 < m.mean() < 0.45
    assert not m[44:57, 44:57].any()  # nothing within 10 px of the centre is lost... near the centre


# -- classes, seeds, catalog draws ------------------------------------------------------------
def test_assign_classes_exact_fractions_and_reproducible():
    cl = simulate.assign_classes(1000, 3)
    counts = Counter(cl)
    for c, f in TABLE1_FRACTIONS.items():
        assert abs(counts[c] - 1000 * f) <= 1
    assert sum(counts.values()) == 1000
    assert cl == simulate.assign_classes(1000, 3)
    assert cl != simulate.assign_classes(1000, 4)
    assert cl[:20] != sorted(cl[:20])  # shuffled
    with pytest.raises(ValueError, match="unknown classes"):
        simulate.assign_classes(10, 0, {"Spiral": 1.0})


def test_galaxy_rng_matches_spawn_and_is_independent_of_others():
    a = simulate.galaxy_rng(5, 3).random(4)
    b = np.random.default_rng(np.random.SeedSequence(5).spawn(4)[3]).random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, simulate.galaxy_rng(5, 2).random(4))


def test_catalog_draws_have_cut_fodder():
    rng = np.random.default_rng(0)
    hosts = [simulate._draw_host(rng, c, 100) for c in ["Clean", "Core", "Asymmetric"] * 700]
    rows = [simulate._draw_catalog(rng, h["true_mag"]) for h in hosts]
    z = np.array([r["z"] for r in rows])
    m = np.array([r["logmass"] for r in rows])
    h = np.array([r["hmag"] for r in rows])
    pf = np.array([r["photflag"] for r in rows])
    for name, out in (("z", (z < 1) | (z > 3)), ("logmass", m < 9.5), ("hmag", h >= 24.5),
                      ("photflag", pf == 1)):
        assert 0.003 < out.mean() < 0.08, name
    keep = (z >= 1) & (z <= 3) & (m >= 9.5) & (h < 24.5) & (pf == 0)
    assert 0.85 < keep.mean() < 0.98
    # number counts rise to faint magnitudes; sizes shrink with magnitude
    mags = np.array([x["true_mag"] for x in hosts])
    assert np.sum(mags > 23.5) > 2 * np.sum(mags < 21)
    n = np.array([x["true_n"] for x in hosts])
    assert n.min() >= 0.5 and n.max() <= 6.0
    assert np.mean(n > 2) > 0.2 and np.mean(n < 1.5) > 0.3  # bimodal disk/spheroid


# -- the survey on disk -----------------------------------------------------------------------
def test_survey_files_and_catalog(survey):
    out, cat = survey
    assert (out / "catalog.fits").exists() and (out / "votes.csv").exists() and (out / "psf.fits").exists()
    disk = Table.read(out / "catalog.fits")
    assert len(disk) == 8
    for col in ("id", "field", "ra", "dec", "z", "logmass", "hmag", "photflag", "block", "true_class",
                "fit_quality", "true_mag", "true_re", "true_n", "true_ar", "true_pa", "sub_frac",
                "sub_snr", "status"):
        assert col in disk.colnames, col
    assert list(disk["id"]) == [simulate.galaxy_id(i) for i in range(8)]
    assert len(set(disk["id"])) == 8
    assert set(disk["field"]) <= set(simulate.FIELDS)
    assert all(s == "ok" for s in disk["status"]), list(disk["message"])
    assert set(disk["true_class"]) <= set(CLASSES) | {FIT_QUALITY}
    np.testing.assert_array_equal(disk["fit_quality"], disk["true_class"] == FIT_QUALITY)


def test_blocks_open_and_residual_is_input_minus_model(survey):
    out, cat = survey
    for row in cat:
        path = out / row["block"]
        with fits.open(path) as hdul:
            assert len(hdul) == 4
            inp, mod, res = (np.asarray(hdul[k].data) for k in (1, 2, 3))
            assert inp.shape == (100, 100)
            np.testing.assert_array_equal(res, inp - mod)
        blk = read_block(path)
        assert set(("XC", "YC", "MAG", "RE", "N", "AR", "PA")) <= set(blk.params)
        assert blk.zeropoint == pytest.approx(simulate.ZEROPOINT)
        assert blk.value("MAG") == pytest.approx(row["gf_mag"], abs=1e-3)
        # the model is the fit, not the truth: it differs from the truth parameters
        assert abs(blk.value("XC") - row["true_xc"]) < 3
        assert blk.value("RE") != pytest.approx(row["true_re"], abs=1e-6)


def test_votes_csv(survey):
    out, cat = survey
    with open(out / "votes.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert set(rows[0]) == {"id", "inspector", "label", "comment"}
    assert len(rows) == 3 * len(cat)
    assert {r["label"] for r in rows} <= set(VOTE_LABELS)
    per = Counter(r["id"] for r in rows)
    assert set(per.values()) == {3}


@pytest.mark.slow
def test_reproducible_from_seed_whatever_the_scheduler(survey, tmp_path):
    out, cat = survey
    # same seed, threads scheduler with 2 workers: identical catalog, pixels and votes
    cat2 = simulate.simulate_survey(8, SEED, tmp_path / "again", workers=2, scheduler="threads",
                                    progress=False)
    for col in ("true_class", "true_mag", "true_re", "hmag", "z", "gf_mag", "gf_n"):
        np.testing.assert_array_equal(cat[col], cat2[col])
    for gid in ("SIM00001", "SIM00007"):
        a = read_block(out / "blocks" / f"{gid}.fits")
        b = read_block(tmp_path / "again" / "blocks" / f"{gid}.fits")
        np.testing.assert_array_equal(a.input, b.input)
        np.testing.assert_array_equal(a.residual, b.residual)
    assert (out / "votes.csv").read_text() == (tmp_path / "again" / "votes.csv").read_text()
    # another seed gives another survey
    row = simulate.simulate_galaxy(0, SEED + 1, str(cat["true_class"][0]), tmp_path / "other")
    assert row["true_mag"] != cat["true_mag"][0]


def _residual_stats(out: Path, row) -> tuple[float, float]:
    """(peak residual within 3 px of the fitted centre, rms of residual/noise within 8 px)."""
    blk = read_block(out / row["block"])
    sig = float(row["true_sky_sigma"])
    y, x = np.mgrid[:100, :100] + 1.0
    r = np.hypot(x - blk.value("XC"), y - blk.value("YC"))
    peak = blk.residual[r <= 3].max() / sig
    noise_map = np.sqrt(sig**2 + np.clip(blk.model - blk.params["SKY"].value, 0, None) / simulate.EXPTIME)
    chi = (blk.residual / noise_map)[r <= 8]
    return float(peak), float(chi.std())


@pytest.mark.slow
def test_class_signatures_in_residuals(tmp_path):
    """Core: central positive excess > 5 sigma of the sky; Clean: residual consistent with noise."""
    core, clean = [], []
    for i in range(6):
        core.append(simulate.simulate_galaxy(i, 101, "Core", tmp_path))
        clean.append(simulate.simulate_galaxy(100 + i, 101, "Clean", tmp_path))
    strong = [r for r in core if r["sub_snr"] >= 15]
    assert strong, [r["sub_snr"] for r in core]
    for r in strong:
        peak, _ = _residual_stats(tmp_path, r)
        assert peak > 5.0, (r["id"], peak, r["sub_snr"])
    for r in clean:
        assert r["status"] == "ok", r["message"]
        peak, chi_rms = _residual_stats(tmp_path, r)
        # per-pixel rms of correlated noise is the sky sigma; allow for the fit's own noise
        assert 0.75 < chi_rms < 1.3, (r["id"], chi_rms)
    # and the statistic tells them apart: strong Cores are far from noise
    assert max(_residual_stats(tmp_path, r)[1] for r in strong) > 1.5


def test_failed_galaxy_is_recorded_and_survey_goes_on(tmp_path, monkeypatch):
    import core.fitting.fit

    real = core.fitting.fit.fit_sersic
    real_compose = simulate._compose
    bad = {}

    def compose(parts, row, boost=1.0):
        image, rms, nodata = real_compose(parts, row, boost)
        if row["id"] == "SIM00002":
            bad["image"] = image
        return image, rms, nodata

    def flaky(image, psf, **kw):
        if image is bad.get("image"):
            raise core.fitting.fit.SersicFitError("no galaxy found")
        return real(image, psf, **kw)

    monkeypatch.setattr(simulate, "_compose", compose)
    monkeypatch.setattr(core.fitting.fit, "fit_sersic", flaky)
    cat = simulate.simulate_survey(3, 1, tmp_path, workers=1, progress=False,
                                   fractions={"Clean": 1.0})
    assert list(cat["status"]) == ["ok", "error", "ok"]
    assert "no galaxy found" in cat["message"][1]
    assert not (tmp_path / "blocks" / "SIM00002.fits").exists()
    with open(tmp_path / "votes.csv") as fh:
        assert "SIM00002" not in fh.read()


# -- command line and previews -------------------------------------------------------------------
@pytest.mark.slow
def test_cli_simulate_and_preview(tmp_path, capsys):
    from core.cli.main import main

    rc = main(["simulate", "--n", "4", "--seed", "3", "--out", str(tmp_path / "s"), "--workers", "1",
               "--preview"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "simulated 4 galaxies" in text
    pngs = sorted(p.name for p in (tmp_path / "s").glob("preview_*.png"))
    cat = Table.read(tmp_path / "s" / "catalog.fits")
    assert pngs == sorted(f"preview_{c}.png" for c in set(cat["true_class"]))
    assert (tmp_path / "s" / pngs[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_is_a_readable_error(tmp_path, capsys):
    from core.cli.main import main

    assert main(["simulate", "--n", "0", "--out", str(tmp_path / "x")]) == 2
    assert "n must be at least 1" in capsys.readouterr().err
    assert main(["simulate", "--n", "2", "--agreement", "1.5", "--out", str(tmp_path / "x")]) == 2


def test_residual_snr_hand_value_box_and_mask():
    shape = (60, 60)
    parts = {"galaxy": np.zeros(shape), "sub": np.zeros(shape), "r_corr": 2.0, "mask": None}
    parts["sub"][30, 30] = 3.0   # inside the central 50x50
    parts["sub"][30, 31] = 4.0
    parts["sub"][1, 1] = 100.0   # outside it: not seen by the inspector
    rms = np.full(shape, 0.5)
    # boost 2: (6, 8) / 0.5 -> (12, 16) -> 20, / r_corr 2 -> 10
    assert simulate._residual_snr(parts, 2.0, np.zeros(shape), rms) == pytest.approx(10.0)
    parts["mask"] = np.zeros(shape, bool)
    parts["mask"][30, 31] = True
    assert simulate._residual_snr(parts, 2.0, np.zeros(shape), rms) == pytest.approx(6.0)
    # what the fit absorbs is not visible
    assert simulate._residual_snr(parts, 2.0, 2.0 * parts["sub"], rms) == pytest.approx(0.0)


def test_substructure_visible_in_residual_floor(tmp_path):
    cat = simulate.simulate_survey(6, 3, tmp_path, workers=1, progress=False,
                                   fractions={"General": 0.5, "Clean": 0.5})
    gen = cat[cat["true_class"] == "General"]
    clean = cat[cat["true_class"] == "Clean"]
    floor = simulate._VISIBLE_SNR["General"]
    for r in gen:  # visible, or as bright as physical
        assert (r["sub_snr_res"] >= floor
                or r["sub_frac"] >= simulate._MAX_FRAC["General"] - 1e-9), dict(zip(r.colnames, r))
        assert r["sub_frac"] <= simulate._MAX_FRAC["General"] + 1e-9
    assert np.all(clean["sub_snr_res"] < 8.0)  # a Sérsic host alone is fitted to the noise
