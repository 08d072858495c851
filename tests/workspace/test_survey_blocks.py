"""Blocks and catalogs as real surveys have them, through ingest and prep: several components in
any order, a WCS, integer pixels, text that is not ASCII (issue 10 items 1, 3, 6)."""

import numpy as np
import pytest
from astropy.table import Table

from core.cli.main import main
from core.prep.pipeline import prep_workspace
from core.votes.files import read_vote_file
from core.votes.store import open_store
from core.workspace.ingestion import ingest
from core.workspace.workspace import Workspace
from tests.blocks import tan_wcs, write_multi_block

SKY = ("sky", 0.01)
CENTRE = ("sersic", 31.4, 30.8, 21.0, 4.0, 2.0)
NEIGHBOUR = ("sersic", 12.0, 48.0, 20.5, 3.0, 1.0)
SHAPE = (61, 61)


def test_the_components_through_ingest_and_prep(tmp_path):
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    wcs = tan_wcs(SHAPE, 0.06)
    cases = {
        "sky_first": [SKY, CENTRE, NEIGHBOUR],
        "neighbour_first": [NEIGHBOUR, SKY, CENTRE],
        "off_centre": [SKY, ("sersic", 42.0, 31.0, 21.0, 3.0, 2.0)],
        "ambiguous": [SKY, CENTRE, ("sersic", 34.0, 33.5, 21.5, 2.0, 1.0)],
        "named": [SKY, CENTRE, NEIGHBOUR],
        "radec": [SKY, CENTRE, NEIGHBOUR],
    }
    for name, comps in cases.items():
        write_multi_block(blocks / f"{name}.fits", comps, SHAPE, wcs=wcs if name == "radec" else None,
                          input_header={"BUNIT": "ELECTRONS/S"})
    ra, dec = (float(v) for v in wcs.pixel_to_world_values(12.0 - 1, 48.0 - 1))  # the neighbour
    cat = tmp_path / "cat.csv"
    Table({"id": list(cases), "component": ["", "", "", "", "3", ""],
           "ra": [ra] * 6, "dec": [dec] * 6}).write(cat)
    ws = ingest(cat, tmp_path / "ws", blocks_dir=blocks, config={"cuts": {k: None for k in (
        "hmag_max", "logmass_min", "z_min", "z_max", "photflag")}}, progress=False)
    t = ws.read_catalog()
    assert list(t["gf_component"]) == [2, 3, 2, 2, 3, 3]
    assert list(t["gf_comp_how"]) == ["centre", "centre", "centre", "centre", "catalog", "radec"]
    assert list(t["gf_comp_flags"]) == ["", "", "goi_component_far", "goi_component_ambiguous",
                                        "goi_component_far", ""]
    np.testing.assert_allclose(t["gf_xc"], [31.4, 31.4, 42.0, 31.4, 12.0, 12.0])
    assert t["gf_neighbours"][0] == "3:12.00,48.00" and t["gf_neighbours"][1] == "1:12.00,48.00"
    assert t["gf_neighbours"][4] == "2:31.40,30.80"
    assert "no sersic component within 5 px of the block centre" in t["ingest_note"][2]
    assert "no celestial WCS in the block" in t["ingest_note"][0]  # RA/Dec given, no WCS to use them
    assert t["pixel_scale"][5] == pytest.approx(0.06) and t["pixel_scale_src"][5].startswith("WCS (")
    assert np.isnan(t["pixel_scale"][0]) and set(t["bunit"]) == {"ELECTRONS/S"}

    cat = prep_workspace(ws, workers=1, progress=False)
    status = dict(zip(cat["id"], cat["prep_status"]))
    flags = dict(zip(cat["id"], cat["prep_flags"]))
    messages = dict(zip(cat["id"], cat["prep_message"]))
    assert status["off_centre"] == "flagged" and flags["off_centre"].startswith("goi_component_far")
    assert messages["off_centre"].startswith("no sersic component within 5 px of the block centre")
    assert status["ambiguous"] == "flagged" and "goi_component_ambiguous" in flags["ambiguous"]
    assert status["sky_first"] == "ok" and status["neighbour_first"] == "ok", messages
    # the radec galaxy is the neighbour: its stamp is centred there; its scale came from the WCS
    assert cat["pixel_scale_src"][5].startswith("WCS (") and cat["cutout_px"][5] == 50.0
    assert cat["cutout_arcsec"][5] == pytest.approx(3.0) and np.isnan(cat["cutout_arcsec"][0])
    stamp = ws.stamps().read("model", 5)
    iy, ix = np.unravel_index(np.argmax(stamp), stamp.shape)
    assert abs(ix - 25) <= 1 and abs(iy - 25) <= 1
    # SPF's units are the image's, in the column metadata (FITS has no electron: in the description)
    assert "[image units: ELECTRONS/S]" in cat["spf"].description
    assert ws.read_catalog()["spf"].description == cat["spf"].description  # kept in catalog.fits
    assert np.isfinite(cat["spf_norm"]).all()


def test_integer_blocks_are_read_in_physical_units_and_the_catalog_says_so(tmp_path, capsys):
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    write_multi_block(blocks / "f.fits", [SKY, CENTRE], SHAPE, dtype=np.float64)
    write_multi_block(blocks / "i.fits", [SKY, CENTRE], SHAPE, dtype=np.int16, scale=(2e-4, 0.5))
    write_multi_block(blocks / "u.fits", [SKY, CENTRE], SHAPE, dtype=np.int32)  # plain integers, no scaling
    cat = tmp_path / "c.ecsv"
    Table({"id": ["f", "i", "u"]}).write(cat)
    assert main(["ingest", str(cat), str(tmp_path / "ws"), "--blocks", str(blocks), "--no-cuts"]) == 0
    out = capsys.readouterr().out
    assert "note: 2 block(s) store integer pixels, read as floats in physical units" in out
    ws = Workspace.open(tmp_path / "ws")
    t = ws.read_catalog()
    assert list(t["pixel_type"]) == ["float64", "int16 (BSCALE 0.0002, BZERO 0.5)", "int32"]
    assert t["ingest_note"][1] == "integer pixels (int16 (BSCALE 0.0002, BZERO 0.5)) read as float64 in physical units"
    cat = prep_workspace(ws, workers=1, progress=False)
    assert cat["prep_status"][1] != "error"
    assert cat["spf"][1] == pytest.approx(cat["spf"][0], rel=0.02)  # physical, not raw integers
    assert cat["sky_sigma"][1] == pytest.approx(cat["sky_sigma"][0], rel=0.05)


def test_non_ascii_ids_values_and_paths(tmp_path, capsys):
    folder = tmp_path / "données Ω"
    blocks = folder / "blocs"
    blocks.mkdir(parents=True)
    ids = ["galaxie-é1", "星系-2", "g3"]
    for i, gid in enumerate(ids):
        write_multi_block(blocks / f"{gid}.fits", [SKY, CENTRE], SHAPE, seed=i)
    cat = folder / "catalogue.csv"
    Table({"id": ids, "field": ["Ωmega", "GOODS-S", "ÉGS"], "catalog_class": ["Clean", "Core", ""],
           "remarque": ["bras spiral très net", "", "—"], "größe": [1.0, 2.0, 3.0]}).write(cat)
    ws_root = folder / "espace"
    assert main(["ingest", str(cat), str(ws_root), "--blocks", str(blocks), "--no-cuts"]) == 0
    assert "renamed 'größe' -> 'gr__e'" in capsys.readouterr().out
    ws = Workspace.open(ws_root)
    t = ws.read_catalog()
    assert list(t["id"]) == ids and list(t["field"]) == ["Ωmega", "GOODS-S", "ÉGS"]
    assert list(t["remarque"]) == ["bras spiral très net", "", "—"] and "gr__e" in t.colnames
    assert [b.endswith(f"blocs/{g}.fits") and "données Ω" in b for b, g in zip(t["block"], ids)] == [True] * 3
    assert t.meta["SOURCE"] == str(cat.resolve())
    assert main(["prep", str(ws_root)]) == 0, capsys.readouterr()
    t = ws.read_catalog()
    assert set(t["prep_status"]) <= {"ok", "flagged"}
    for ext in (".fits", ".ecsv", ".csv"):
        out = folder / f"export{ext}"
        assert main(["catalog", str(ws_root), "--out", str(out)]) == 0
        back = Table.read(out)
        if ext == ".fits":
            from core.io.catalog import read_fits_table

            back = read_fits_table(out)
        assert [str(v) for v in back["id"]] == ids, ext
    # votes on non-ASCII ids import and export
    votes = folder / "votes é.csv"
    votes.write_text("id,inspector,label,comment\ngalaxie-é1,zoë,Clean,très propre\n星系-2,zoë,Core,\n",
                     encoding="utf-8")
    assert main(["votes", "import", str(ws_root), str(votes)]) == 0
    history = open_store(ws).history()
    assert list(history["id"]) == ["galaxie-é1", "星系-2"] and list(history["inspector"]) == ["zoë", "zoë"]
    assert main(["votes", "export", str(ws_root), "--out", str(folder / "consensus.fits")]) == 0
    assert list(read_vote_file(votes)["comment"]) == ["très propre", ""]
