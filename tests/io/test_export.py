"""The one export writer: provenance in every format, formula cells neutralised in CSV only."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from astropy.table import Table

from core.io.catalog import read_fits_table
from core.io.export import ExportError, neutralize_formulas, provenance, sidecar_path, write_export

HOSTILE = ["=HYPERLINK(\"http://evil\",\"x\")", "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain", "a=b", "",
           "名前"]


def table() -> Table:
    n = len(HOSTILE)
    return Table({"id": HOSTILE, "dec": -np.arange(n) - 0.5, "n_votes": np.arange(n), "expert": np.zeros(n, bool),
                  "comment": [f"by {h}" for h in HOSTILE]})


def test_formula_cells_neutralised_in_csv_numbers_untouched(tmp_path):
    path = tmp_path / "out.csv"
    write_export(table(), path, prov=provenance(None, what="test"))
    with open(path, newline="", encoding="utf-8") as fh:  # what a spreadsheet reads: RFC 4180 cells
        rows = list(csv.reader(fh))
    assert rows[0] == ["id", "dec", "n_votes", "expert", "comment"]
    back = {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}
    ids = back["id"]
    for raw, written in zip(HOSTILE, ids):
        if raw[:1] in ("=", "+", "-", "@", "\t", "\r"):
            assert written == "'" + raw  # a spreadsheet shows it as text, never runs it
        else:
            assert written == raw
    assert back["dec"][:2] == ["-0.5", "-1.5"] and back["n_votes"][1] == "1"  # a negative Dec stays a number
    assert back["comment"] == [f"by {h}" for h in HOSTILE]  # not at the start: unchanged
    assert Table.read(path)["dec"].dtype.kind == "f"  # a plain CSV: any reader reads it
    prov = json.loads(sidecar_path(path).read_text())
    assert prov["what"] == "test" and prov["exported"].endswith("Z") and isinstance(prov["config"], dict)


def test_fits_and_ecsv_keep_raw_text_and_carry_provenance(tmp_path):
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    ws.set_active_run("cnn", "cnn-1")
    prov = provenance(ws, exported_by="ann")
    write_export(table(), tmp_path / "out.fits", prov=prov)
    back = read_fits_table(tmp_path / "out.fits")
    assert list(back["id"]) == HOSTILE  # raw text: FITS is read by programs, not spreadsheets
    assert back.meta["RUN_CNN"] == "cnn-1" and back.meta["EXPORTBY"] == "ann" and "majority" in back.meta["CONSENS"]
    assert '"votes"' in back.meta["CONFIG"] and back.meta["CFGSHA"] == prov["config_sha256"]
    write_export(table(), tmp_path / "out.ecsv", prov=prov)
    back = Table.read(tmp_path / "out.ecsv", format="ascii.ecsv")
    assert [str(v) for v in back["id"][:4]] == HOSTILE[:4]  # raw text, no apostrophe
    assert back.meta["provenance"]["run_cnn"] == "cnn-1" and back.meta["provenance"]["exported"].endswith("Z")


def test_neutralize_leaves_a_clean_table_alone_and_unknown_formats_fail(tmp_path):
    t = Table({"id": ["a", "b"], "x": [1.0, -2.0]})
    out = neutralize_formulas(t)
    assert list(out["id"]) == ["a", "b"] and list(out["x"]) == [1.0, -2.0]
    with pytest.raises(ExportError, match="unsupported extension"):
        write_export(t, tmp_path / "out.xlsx")
    with pytest.raises(ExportError, match="give the format"):
        write_export(t, io.BytesIO())


def test_cli_exports_record_provenance_and_neutralise(tmp_path):
    from core.cli.main import main
    from core.votes.store import open_store
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    ws.write_catalog(Table({"id": ["=cmd|' /C calc'!A0", "g1"], "dec": [-1.0, 2.0], "catalog_class": ["", ""]}))
    with open_store(ws) as store:
        store.add_inspector("@evil")
        store.cast(["=cmd|' /C calc'!A0"], "@evil", "Core")
    assert main(["votes", "export", str(ws.root), "--out", str(tmp_path / "c.csv")]) == 0
    text = (tmp_path / "c.csv").read_text()
    assert "\n'=cmd|' /C calc'!A0," in text.replace('"', "")
    assert "majority" in json.loads(sidecar_path(tmp_path / "c.csv").read_text())["consensus"]
    assert main(["catalog", str(ws.root), "--out", str(tmp_path / "cat.csv")]) == 0
    text = (tmp_path / "cat.csv").read_text()
    assert "-1.0" in text and "'=cmd" in text.replace('"', "")
    assert json.loads(sidecar_path(tmp_path / "cat.csv").read_text())["what"] == "workspace catalog (resx catalog)"
    assert main(["votes", "export", str(ws.root), "--out", str(tmp_path / "c.fits")]) == 0
    assert "majority" in Table.read(tmp_path / "c.fits").meta["CONSENS"]
