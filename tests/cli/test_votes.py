"""`resx votes import | export | stats` on a small workspace."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from core.cli.main import main
from core.votes.store import open_store
from core.workspace.workspace import Workspace

IDS = ["007", "g1", "g2", "g3", "g'4"]


@pytest.fixture
def ws(tmp_path):
    w = Workspace.create(tmp_path / "ws", {"votes": {"experts": ["boss"]}})
    w.write_catalog(Table({"id": IDS, "spf": np.arange(5.0), "catalog_class": ["Clean"] * 5}))
    return w


def write_csv(path, rows, header="id,inspector,label,comment"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


VOTES = [
    "007,ann,Core,", "007,bob,core,", "007,cyd,Clean,",  # 2-1 -> Core
    "g1,ann,Clean,", "g1,bob,Clean,", "g1,cyd,Skip,unsure",  # 2 judgments -> undecided
    "g2,ann,Peculiar,", "g2,boss,Asymmetric,\"tidal, faint\"",  # expert -> Asymmetric
    "g'4,ann,FitQuality,", "g'4,bob,FitQuality,", "g'4,cyd,FitQuality,",
]


def test_import_export_stats(ws, tmp_path, capsys):
    path = write_csv(tmp_path / "votes.csv", VOTES)
    assert main(["votes", "import", str(ws.root), str(path), "--source", "simulated"]) == 0
    out = capsys.readouterr().out
    assert "imported 11 votes by 4 inspector(s)" in out and "ann, bob, cyd" in out
    store = open_store(ws)
    cur = store.current_votes()
    assert len(cur) == 11 and set(cur["source"]) == {"simulated"}
    assert "007" in set(cur["id"])  # ids stay text: no 007 -> 7
    assert cur.loc[cur["inspector"] == "boss", "comment"].item() == "tidal, faint"
    roles = dict(zip(store.inspectors()["name"], store.inspectors()["role"]))
    assert roles == {"boss": "expert", "ann": "inspector", "bob": "inspector", "cyd": "inspector"}
    store.close()

    for out_name in ("cons.fits", "cons.csv"):
        assert main(["votes", "export", str(ws.root), "--out", str(tmp_path / out_name)]) == 0
        assert "wrote 5 galaxies" in capsys.readouterr().out
    t = Table.read(tmp_path / "cons.fits")
    assert list(t["id"]) == IDS
    assert list(t["consensus"]) == ["Core", "undecided", "Asymmetric", "undecided", "FitQuality"]
    assert list(t["n_votes"]) == [3, 2, 2, 0, 3]
    assert list(t["expert"]) == [False, False, True, False, False]
    assert list(t["votes_Core"]) == [2, 0, 0, 0, 0] and list(t["votes_Skip"]) == [0, 1, 0, 0, 0]
    assert list(t["spf"]) == [0.0, 1.0, 2.0, 3.0, 4.0] and "catalog_class" in t.colnames
    with fits.open(tmp_path / "cons.fits") as hdul:
        assert hdul[1].header["TTYPE1"] == "id"
    c = pd.read_csv(tmp_path / "cons.csv", dtype={"id": str})
    assert list(c["id"]) == IDS and list(c["consensus"]) == list(t["consensus"])

    assert main(["votes", "stats", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "11 current votes by 4 inspector(s)" in out
    assert "Fleiss' kappa:" in out and "Confusion matrix of 'ann'" in out
    assert "Core 1" in out and "undecided 2" in out
    assert "Estimated skill (Dawid-Skene" in out and "Estimated confusion matrix of 'ann'" in out
    assert main(["votes", "stats", str(ws.root), "--method", "ds"]) == 0
    out = capsys.readouterr().out
    assert "the most probable label by ds" in out and "Estimated skill" in out


def test_import_fits_file(ws, tmp_path, capsys):
    t = Table({"ID": ["g1", "g2", "g3"], "Inspector": ["zoe"] * 3, "LABEL": ["General"] * 3})
    t.write(tmp_path / "v.fits")
    assert main(["votes", "import", str(ws.root), str(tmp_path / "v.fits")]) == 0
    assert "imported 3 votes" in capsys.readouterr().out
    assert len(open_store(ws).current_votes()) == 3


def test_invalid_file_imports_nothing_and_says_why(ws, tmp_path, capsys):
    path = write_csv(tmp_path / "bad.csv", ["g1,ann,Core,", "nope,ann,Core,", "g2,ann,Spiral,", "g3,,Core,"])
    assert main(["votes", "import", str(ws.root), str(path), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: 3 invalid row(s); nothing was imported" in err
    assert "row 2: unknown galaxy id 'nope'" in err and "row 3: unknown label 'Spiral'" in err
    assert "row 4: inspector name must not be empty" in err
    assert len(open_store(ws).history()) == 0
    # without --strict a vote on an unknown galaxy is skipped, but a bad label still stops the file
    assert main(["votes", "import", str(ws.root), str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv: 2 invalid row(s); nothing was imported" in err and "nope" not in err
    assert len(open_store(ws).history()) == 0

    missing = write_csv(tmp_path / "cols.csv", ["g1,Core"], header="id,label")
    assert main(["votes", "import", str(ws.root), str(missing)]) == 2
    assert "missing column(s) inspector" in capsys.readouterr().err
    assert main(["votes", "import", str(ws.root), str(tmp_path / "absent.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["votes", "import", str(tmp_path / "nows"), str(path)]) == 2
    assert "No workspace" in capsys.readouterr().err
    assert main(["votes", "export", str(ws.root), "--out", str(tmp_path / "x.txt")]) == 2
    assert "unknown file type" in capsys.readouterr().err


def test_votes_on_galaxies_the_cuts_removed_are_counted_and_skipped(ws, tmp_path, capsys):
    path = write_csv(tmp_path / "v.csv", ["g1,ann,Core,", "cut1,ann,Clean,", "g2,bob,Clean,", "cut1,bob,Clean,",
                                          "cut2,bob,Core,"])
    assert main(["votes", "import", str(ws.root), str(path)]) == 0
    out = capsys.readouterr().out
    assert "imported 2 votes by 2 inspector(s)" in out
    assert "skipped 3 votes on 2 galaxies not in this workspace" in out and "cut1, cut2" in out
    assert sorted(open_store(ws).history()["id"]) == ["g1", "g2"]
    assert main(["votes", "import", str(ws.root), str(path), "--strict"]) == 2
    assert "3 invalid row(s); nothing was imported" in capsys.readouterr().err


def _import_in_process(workspace: str, path: str) -> None:
    raise SystemExit(main(["votes", "import", workspace, path]))


def test_concurrent_imports_into_one_workspace(ws, tmp_path):
    files = []
    for k in range(3):
        files.append(write_csv(tmp_path / f"v{k}.csv", [f"{g},insp{k},Core," for g in IDS if "'" not in g]))
    ctx = multiprocessing.get_context("fork")  # separate processes, without the start-up cost
    procs = [ctx.Process(target=_import_in_process, args=(str(ws.root), str(f))) for f in files]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    store = open_store(ws)
    assert len(store.current_votes()) == 12
    assert (store.consensus().set_index("id").loc[["007", "g1", "g2", "g3"], "label"] == "Core").all()


def test_merge_inspectors_lists_then_merges_only_with_yes(ws, capsys):
    from core.votes.schema import inspectors, now_utc

    with open_store(ws) as store:
        with store.engine.begin() as conn:  # names registered before identities were normalised
            for name in ("Ann", " ann", "bob"):
                conn.execute(inspectors.insert().values(name=name, role="inspector", created_at=now_utc()))
        store.cast("007", "Ann", "Core")
        store.cast("g1", " ann", "Clean")
    assert main(["votes", "stats", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "'Ann' = ' ann'" in out and "merge-inspectors" in out
    assert main(["votes", "merge-inspectors", str(ws.root)]) == 0
    assert "nothing changed" in capsys.readouterr().out
    with open_store(ws) as store:
        assert len(store.inspector_collisions()) == 1
    assert main(["votes", "merge-inspectors", str(ws.root), "--yes"]) == 0
    assert "'Ann' <- ' ann'" in capsys.readouterr().out
    with open_store(ws) as store:
        assert store.inspector_collisions() == []
        assert set(store.current_votes()["inspector"]) == {"Ann"}
    assert main(["votes", "merge-inspectors", str(ws.root)]) == 0
    assert "no inspector names to merge" in capsys.readouterr().out
