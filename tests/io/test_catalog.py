import numpy as np
import pytest
from astropy.table import Table

from core.io.catalog import (
    CatalogError,
    apply_cuts,
    cut_masks,
    parse_column_mapping,
    read_catalog,
)
from core.workspace.config import DEFAULT_CONFIG

NAN = float("nan")


def hand_table():
    """Ten galaxies; the comment says which cuts each fails (paper cuts)."""
    return Table({
        "id": [f"g{i}" for i in range(10)],
        "hmag":    [23.0, 24.5, 25.0, 22.0, 23.0, 23.0, 23.0, NAN, 24.0, 21.0],
        "logmass": [10.0, 10.0, 10.0, 9.4,  9.5,  10.0, 10.0, 10.0, 9.0, 11.0],
        "z":       [2.0,  2.0,  2.0,  2.0,  1.0,  0.9,  3.0,  2.0, 3.1, 2.0],
        "photflag": [0,   0,    0,    0,    0,    0,    0,    0,   0,   1],
    })
    # g0 pass; g1 H (24.5 is not < 24.5); g2 H; g3 mass; g4 pass (9.5, z=1 on the bounds);
    # g5 z_min; g6 pass (z=3 on the bound); g7 H (NaN); g8 mass and z_max; g9 photflag.


def test_paper_cuts_on_hand_made_table():
    kept, rep = apply_cuts(hand_table(), DEFAULT_CONFIG["cuts"])
    assert list(kept["id"]) == ["g0", "g4", "g6"]
    assert rep.n_in == 10 and rep.n_out == 3
    # Sequential removals in the order hmag, logmass, z_min, z_max, photflag.
    assert [(r["cut"], r["removed"]) for r in rep.rows] == [
        ("hmag_max", 3), ("logmass_min", 2), ("z_min", 1), ("z_max", 0), ("photflag", 1)]
    assert sum(r["removed"] for r in rep.rows) == rep.n_in - rep.n_out
    # Each cut alone.
    assert {r["cut"]: r["fails"] for r in rep.rows} == {
        "hmag_max": 3, "logmass_min": 2, "z_min": 1, "z_max": 1, "photflag": 1}
    assert {r["cut"]: r["nonfinite"] for r in rep.rows}["hmag_max"] == 1
    assert rep.rows[0]["description"] == "H < 24.5"
    text = str(rep)
    assert "kept 3 of 10 galaxies" in text and "log M* >= 9.5" in text


def test_each_cut_can_be_disabled():
    cuts = dict(DEFAULT_CONFIG["cuts"], hmag_max=None, photflag=None)
    kept, rep = apply_cuts(hand_table(), cuts)
    assert list(kept["id"]) == ["g0", "g1", "g2", "g4", "g6", "g7", "g9"]
    assert rep.disabled == ["hmag_max", "photflag"]
    assert rep.removed("hmag_max") == 0 and rep.removed("logmass_min") == 2
    kept, rep = apply_cuts(hand_table(), {k: None for k in DEFAULT_CONFIG["cuts"]})
    assert len(kept) == 10 and rep.rows == []


def test_disabled_cut_does_not_need_its_column():
    t = hand_table()
    t.remove_column("photflag")
    with pytest.raises(CatalogError, match="needs the column 'photflag'.*disable"):
        apply_cuts(t, DEFAULT_CONFIG["cuts"])
    kept, _ = apply_cuts(t, dict(DEFAULT_CONFIG["cuts"], photflag=None))
    assert len(kept) == 4


def test_unknown_cut_is_an_error():
    with pytest.raises(CatalogError, match="unknown cut"):
        cut_masks(hand_table(), {"hmag": 24.5})


def test_masked_values_fail_their_cut():
    t = Table({"id": ["a", "b"], "z": np.ma.array([2.0, 2.0], mask=[False, True])})
    kept, rep = apply_cuts(t, {"z_min": 1.0, "z_max": 3.0})
    assert list(kept["id"]) == ["a"] and rep.removed("z_min") == 1


@pytest.mark.parametrize("ext", [".fits", ".ecsv", ".csv"])
def test_read_catalog_formats_and_mapping(tmp_path, ext):
    t = Table({"ID": [101, 102, 103], "H_F160W": [22.0, 23.0, 24.0], "zbest": [1.5, 2.0, 2.5],
               "M_med": [10.0, 9.0, 11.0], "PhotFlag": [0, 0, 1], "other": ["x", "y", "z"]})
    path = tmp_path / f"cat{ext}"
    t.write(path)
    out = read_catalog(path, columns={"logmass": "M_med"})
    for std in ("id", "hmag", "z", "logmass", "photflag", "other"):
        assert std in out.colnames, std
    assert list(out["id"]) == ["101", "102", "103"] and out["id"].dtype.kind == "U"
    np.testing.assert_allclose(out["hmag"], [22.0, 23.0, 24.0])
    assert out.meta["source"] == str(path)
    assert out.meta["renamed"] == {"id": "ID", "z": "zbest", "logmass": "M_med", "hmag": "H_F160W",
                                   "photflag": "PhotFlag"}
    kept, rep = apply_cuts(out, DEFAULT_CONFIG["cuts"])
    assert list(kept["id"]) == ["101"]


def test_read_catalog_text_mapping_and_blank_cells(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name,Hmag,redshift,mass,pf\nA,22.0,1.5,10.0,0\nB,,2.0,10.0,\n")
    out = read_catalog(path, "id=name,logmass=mass,photflag=pf")
    assert np.isnan(out["hmag"][1]) and out["photflag"][1] == -1
    kept, rep = apply_cuts(out, DEFAULT_CONFIG["cuts"])
    assert list(kept["id"]) == ["A"] and rep.removed("hmag_max") == 1


def test_read_catalog_errors_name_file_and_columns(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("name,H\nA,22\n")
    with pytest.raises(CatalogError, match=r"c\.csv: missing column\(s\) id .*the file has name, H"):
        read_catalog(path)
    with pytest.raises(CatalogError, match=r"c\.csv: mapped column\(s\) not in the file: 'H_F160W' \(for hmag\)"):
        read_catalog(path, {"id": "name", "hmag": "H_F160W"})
    with pytest.raises(CatalogError, match="catalog file not found"):
        read_catalog(tmp_path / "nope.fits")
    with pytest.raises(CatalogError, match="unsupported catalog format"):
        read_catalog(path.rename(tmp_path / "c.txt"))
    bad = tmp_path / "bad.fits"
    bad.write_text("not fits")
    with pytest.raises(CatalogError, match=r"bad\.fits: cannot read as fits"):
        read_catalog(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("id\n1\n1\n")
    with pytest.raises(CatalogError, match="not unique"):
        read_catalog(dup)
    with pytest.raises(CatalogError, match="unknown standard column"):
        read_catalog(dup, "hband=H")


def test_parse_column_mapping():
    assert parse_column_mapping("hmag=H_F160W, logmass = M_med") == {"hmag": "H_F160W", "logmass": "M_med"}
    assert parse_column_mapping(None) == {}
    with pytest.raises(ValueError, match="STANDARD=USER"):
        parse_column_mapping("hmag")
