"""The paper's sample cuts (core.workspace.cuts) on a hand-made table."""

import numpy as np
import pytest
from astropy.table import Table

from core.io.catalog import CatalogError
from core.workspace.config import DEFAULT_CONFIG
from core.workspace.cuts import apply_cuts, cut_masks, parse_cuts

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


def test_a_cut_without_its_column_is_off_and_said_so():
    t = hand_table()
    t.remove_columns(["photflag", "z"])
    kept, rep = apply_cuts(t, DEFAULT_CONFIG["cuts"])
    # g0 g4 g5 g6 g9 pass H and mass; no z or PhotFlag cut
    assert list(kept["id"]) == ["g0", "g4", "g5", "g6", "g9"]
    assert rep.missing == {"z_min": "z", "z_max": "z", "photflag": "photflag"}
    assert rep.disabled == ["z_min", "z_max", "photflag"] and [r["cut"] for r in rep.rows] == ["hmag_max",
                                                                                             "logmass_min"]
    assert rep.note().startswith("the catalog has no z, photflag column: the cut(s) z_min, z_max, photflag are off")
    assert "z_min (no column)" in str(rep)
    # asked to, cut_masks still refuses, naming every missing column at once
    with pytest.raises(CatalogError, match="z_min = 1.0 needs the column 'z'.*photflag = 0 needs the column "
                                           "'photflag', which are missing"):
        cut_masks(t, DEFAULT_CONFIG["cuts"])
    kept, rep = apply_cuts(t, dict(DEFAULT_CONFIG["cuts"], photflag=None, z_min=None, z_max=None))
    assert len(kept) == 5 and rep.missing == {} and rep.note() == ""


@pytest.mark.parametrize("text, expected", [
    ("z=none,photflag=none", {"z_min": None, "z_max": None, "photflag": None}),
    ("none", {k: None for k in DEFAULT_CONFIG["cuts"]}),
    ("hmag=25, logmass_min=10, photflag=1", {"hmag_max": 25.0, "logmass_min": 10.0, "photflag": 1}),
    ("MASS=off", {"logmass_min": None}),
])
def test_parse_cuts(text, expected):
    assert parse_cuts(text) == expected


def test_parse_cuts_no_cuts_and_errors():
    assert parse_cuts("z_max=4", no_cuts=True) == {**{k: None for k in DEFAULT_CONFIG["cuts"]}, "z_max": 4.0}
    with pytest.raises(CatalogError, match=r"'colour=1' is not NAME=VALUE.*'z=high': 'high' is not a number"):
        parse_cuts("colour=1,z=high")


def test_unknown_cut_is_an_error():
    with pytest.raises(CatalogError, match="unknown cut"):
        cut_masks(hand_table(), {"hmag": 24.5})


def test_masked_values_fail_their_cut():
    t = Table({"id": ["a", "b"], "z": np.ma.array([2.0, 2.0], mask=[False, True])})
    kept, rep = apply_cuts(t, {"z_min": 1.0, "z_max": 3.0})
    assert list(kept["id"]) == ["a"] and rep.removed("z_min") == 1
