"""Ingest + prep on the real galaxies of ../shared/data: each answer right, or flagged with a reason.

GALFIT's own GOODS-S block; PetroFit's WFC3/IR F105W cutouts (e-/s; the group has no galaxy at
its centre); GalSim's AEGIS ACS galaxies (multi-extension, no scale in their headers); statmorph's
galaxy (no PSF). The table of every galaxy is ``tests/benchmarks/real_surveys.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from core.prep.galaxy import FLAG_CODES, prep_block
from core.prep.pipeline import prep_workspace
from core.workspace.cuts import CUTS
from core.workspace.ingestion import ingest
from tests.real_blocks import build_blocks


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    root = tmp_path_factory.mktemp("real")
    blocks = build_blocks(root / "blocks", SHARED_DATA)
    names = [n for n, b in blocks.items() if b["block"] is not None]
    cat = root / "cat.ecsv"
    Table({"id": names, "block": [str(blocks[n]["block"]) for n in names]}).write(cat)
    ws = ingest(cat, root / "ws", config={"cuts": {k: None for k in CUTS}}, progress=False)
    table = prep_workspace(ws, workers=1, progress=False)
    return blocks, {str(r["id"]): r for r in table}, ws


def test_every_real_galaxy_is_right_or_flagged_with_a_reason(real):
    blocks, rows, _ = real
    assert len(blocks) == 11
    for name, b in blocks.items():
        if b["block"] is None:  # the fitter refused it: an answer, with its reason
            assert name == "a2744_group" and b["refused"], (name, b)
            continue
        r = rows[name]
        flags = [f for f in str(r["prep_flags"]).split(",") if f]
        assert str(r["prep_status"]) in ("ok", "flagged"), (name, r["prep_message"])
        assert (str(r["prep_status"]) == "flagged") == bool(flags), name
        assert all(f in FLAG_CODES for f in flags), flags
        if flags:
            assert str(r["prep_message"]), name
        assert np.isfinite(r["spf"]) and np.isfinite(r["rff"]) and np.isfinite(r["spf_norm"]), name


def test_galfit_goodss_block(real):
    r = real[1]["goodss"]
    assert str(r["prep_status"]) == "ok" and str(r["prep_flags"]) == "", r["prep_message"]
    assert r["gf_component"] == 1 and r["gf_n"] == pytest.approx(4.1097) and r["gf_comp_dist"] < 2
    # the CD matrix GALFIT copied from gal.fits: 0.05"/px, so 3" is 60 px, resampled to 50
    assert r["pixel_scale"] == pytest.approx(0.05, abs=1e-4) and str(r["pixel_scale_src"]) == "WCS (CD matrix)"
    assert r["cutout_px"] == 60.0 and r["cutout_arcsec"] == pytest.approx(3.0, abs=1e-3)
    assert str(r["bunit"]) == "ELECTRONS" and r["rff"] > 0
    assert 0 < r["stamp_sigma"] and r["sky_seam"] < 1.5


def test_petrofit_f105w_cutouts(real):
    blocks, rows, ws = real
    for name in ("a2744_spiral", "a2744_dwarf", "a2744_cd"):
        r = rows[name]
        assert r["pixel_scale"] == pytest.approx(0.06, abs=1e-4) and r["cutout_px"] == 50.0, name
        assert str(r["bunit"]).lower().replace(" ", "") in ("electron/s", "electrons/s")
    # galaxies larger than 3 arcsec say so
    for name in ("a2744_spiral", "a2744_cd"):
        assert "goi_off_stamp" in str(rows[name]["prep_flags"])
        assert "galaxy larger than the cutout" in str(rows[name]["prep_message"])
    # the group has no galaxy at its centre: refused by the fitter, or its component is flagged far
    if blocks["a2744_group"]["block"] is not None:
        g = rows["a2744_group"]
        assert "goi_component_far" in str(g["prep_flags"]) and g["gf_comp_dist"] > 5
    # the spiral's sky has a gradient: seams of ~8 before (blocks drawn anywhere), ~1.5 after
    spiral = blocks["a2744_spiral"]["block"]
    seed = [0, 0]
    before = prep_block(spiral, None, None, seed=seed, config={"sky_background_box": 0})
    after = prep_block(spiral, None, None, seed=seed)
    assert before.geometry["sky_seam"] > 5 and after.geometry["sky_seam"] < 1.6
    assert rows["a2744_spiral"]["sky_seam"] < 1.6 and rows["a2744_dwarf"]["sky_seam"] < 1.5
    # SPF in e-/s: said in the column's description (FITS has no electron unit)
    assert "[image units: " in ws.read_catalog()["spf"].description


def test_aegis_and_statmorph_without_a_pixel_scale(real, tmp_path):
    blocks, rows, _ = real
    for k in range(5):
        r = rows[f"aegis_606_{k}"]
        assert np.isnan(r["pixel_scale"]) and r["cutout_px"] == 50.0
        assert "pixel scale unknown: cutout of 50 native px" in str(r["prep_message"])
        small = min(blocks_shape(blocks[f"aegis_606_{k}"]["block"])) < 50
        assert ("cutout_padded" in str(r["prep_flags"])) == small
    assert "goi_off_stamp" in str(rows["statmorph"]["prep_flags"])
    # given the scale GalSim's README states, the cutouts are 3 arcsec = 100 ACS px
    b = blocks["aegis_606_1"]["block"]
    r = prep_block(b, None, None, seed=[0, 1], config={"pixel_scale": 0.03})
    assert r.geometry["cutout_px"] == 100.0 and r.scale_source == "config" and r.stamps["object_only"].shape == (50, 50)
    small = prep_block(blocks["aegis_606_0"]["block"], None, None, seed=[0, 1], config={"pixel_scale": 0.03})
    assert small.flags == ["cutout_padded"]  # a 70 x 46 px (2.1" x 1.4") image cannot fill 3"


def blocks_shape(path):
    from astropy.io import fits

    return fits.getheader(path, 1)["NAXIS2"], fits.getheader(path, 1)["NAXIS1"]
