import numpy as np
import pytest
from astropy.table import Table

from core.io.catalog import CatalogError, parse_column_mapping, read_catalog
from core.workspace.config import DEFAULT_CONFIG
from core.workspace.cuts import apply_cuts

NAN = float("nan")


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
