import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from core.cli.main import main
from core.io.catalog import CatalogError
from core.io.galfit import GalfitParameter, write_block
from core.workspace.config import read_config
from core.workspace.ingestion import ingest, read_workspace_catalog, write_catalog
from core.workspace.workspace import Workspace, WorkspaceError

# id, hmag, logmass, z, photflag, true_class, fit_quality
ROWS = [
    ("s0", 22.0, 10.0, 1.5, 0, "Clean", False),
    ("s1", 23.0, 10.5, 2.0, 0, "Core", False),
    ("s2", 25.0, 10.0, 2.0, 0, "General", False),     # fails H
    ("s3", 23.5, 9.0, 2.0, 0, "Clean", False),        # fails mass
    ("s4", 23.0, 10.0, 0.5, 0, "Peculiar", False),    # fails z_min
    ("s5", 23.0, 10.0, 3.5, 1, "Asymmetric", False),  # fails z_max and photflag
    ("s6", 21.0, 11.0, 2.5, 0, "FitQuality", True),
    ("s7", 22.5, 10.0, 1.2, 0, "Asymmetric", False),
]


def _params(i):
    return {"XC": GalfitParameter(10.5 + i, 0.01), "YC": GalfitParameter(11.0, 0.02),
            "MAG": GalfitParameter(22.0 + 0.1 * i, 0.05),
            "RE": GalfitParameter(3.0, 0.1, "problem" if i == 1 else "free"),
            "N": GalfitParameter(2.0 + i, 0.1, "problem" if i == 1 else "free"),
            "AR": GalfitParameter(0.8, flag="fixed"), "PA": GalfitParameter(30.0, 1.0),
            "SKY": GalfitParameter(1e-3, 1e-4)}


def make_simulate_folder(root, rows=ROWS):
    """A folder laid out as `resx simulate` writes it."""
    (root / "blocks").mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, row in enumerate(rows):
        model = rng.random((20, 20))
        write_block(root / "blocks" / f"{row[0]}.fits", model + 0.01, model, params=_params(i),
                    zeropoint=25.9463, chi2nu=1.0 + i / 10)
    t = Table(rows=rows, names=("id", "hmag", "logmass", "z", "photflag", "true_class", "fit_quality"))
    t["field"] = "GOODS-S"
    t["ra"] = np.linspace(53.0, 53.1, len(rows))
    t["dec"] = -27.8
    t["block"] = [f"blocks/{r[0]}.fits" for r in rows]
    t["true_n"] = np.arange(len(rows), dtype=float)
    t.write(root / "catalog.fits")
    (root / "votes.csv").write_text("id,inspector,label\ns0,a,Clean\n")
    return root


@pytest.fixture
def simfolder(tmp_path):
    return make_simulate_folder(tmp_path / "sim")


def test_ingest_simulate_folder(simfolder, tmp_path):
    ws = ingest(simfolder, tmp_path / "ws", config={"prep": {"cutout": 64}}, progress=False)
    t = read_workspace_catalog(Workspace.open(tmp_path / "ws"))
    assert list(t["id"]) == ["s0", "s1", "s6", "s7"]
    rep = ws.ingest_report.cuts
    assert [(r["cut"], r["removed"]) for r in rep.rows] == [
        ("hmag_max", 1), ("logmass_min", 1), ("z_min", 1), ("z_max", 1), ("photflag", 0)]
    assert {r["cut"]: r["fails"] for r in rep.rows}["photflag"] == 1
    # GALFIT parameters from the headers (s0 is block 0, s1 block 1, s6 block 6, s7 block 7).
    np.testing.assert_allclose(t["gf_xc"], [10.5, 11.5, 16.5, 17.5])
    np.testing.assert_allclose(t["gf_n"], [2.0, 3.0, 8.0, 9.0])
    np.testing.assert_allclose(t["gf_mag"], [22.0, 22.1, 22.6, 22.7])
    np.testing.assert_allclose(t["gf_ar"], 0.8)
    np.testing.assert_allclose(t["gf_sky"], 1e-3)
    np.testing.assert_allclose(t["gf_chi2nu"], [1.0, 1.1, 1.6, 1.7])
    assert list(t["gf_flags"]) == ["", "RE,N", "", ""]
    assert list(t["catalog_class"]) == ["Clean", "Core", "FitQuality", "Asymmetric"]
    assert list(t["true_class"]) == list(t["catalog_class"])
    assert list(t["fit_quality"]) == [False, False, True, False]
    assert set(t["prep_status"]) == {"pending"}
    assert all(str(simfolder.resolve()) in b and b.endswith(".fits") for b in t["block"])
    assert list(t["field"]) == ["GOODS-S"] * 4 and "true_n" in t.colnames
    assert t.colnames[:3] == ["id", "field", "ra"]
    assert t.meta["VOTES"] == str((simfolder / "votes.csv").resolve())
    assert ws.ingest_report.votes_file == t.meta["VOTES"]
    cfg = read_config(tmp_path / "ws" / "config.toml")
    assert cfg["prep"]["cutout"] == 64 and cfg["cuts"]["hmag_max"] == 24.5
    # prep can write long messages without truncation.
    assert t["prep_message"].dtype.itemsize // 4 >= 160


def test_bad_blocks_are_recorded_not_fatal(simfolder, tmp_path):
    (simfolder / "blocks" / "s1.fits").unlink()
    (simfolder / "blocks" / "s6.fits").write_bytes(b"garbage" * 1000)
    with fits.open(simfolder / "blocks" / "s7.fits", mode="update") as h:
        h[2].header["1_XC"] = "nan +/- nan"
    ws = ingest(simfolder, tmp_path / "ws", progress=False)
    t = read_workspace_catalog(ws)
    assert list(t["prep_status"]) == ["pending", "error", "error", "error"]
    msgs = list(t["prep_message"])
    assert msgs[0] == ""
    assert "s1.fits: file not found" in msgs[1]
    assert "s6.fits: not a readable FITS" in msgs[2]
    assert "s7.fits" in msgs[3] and "1_XC is nan" in msgs[3]
    assert np.isnan(t["gf_xc"][1]) and t["gf_xc"][0] == 10.5
    assert len(ws.ingest_report.block_errors) == 3


def test_ingest_catalog_file_with_blocks_dir_and_mapping(simfolder, tmp_path):
    t = Table.read(simfolder / "catalog.fits")
    t.rename_columns(["hmag", "logmass", "true_class"], ["H_F160W", "M_med", "visual"])
    t.remove_column("block")  # blocks found by id
    t["visual"] = [c.lower() for c in t["visual"]]
    t["visual"][0] = "Merger"  # not a class: left blank, counted
    cat = tmp_path / "mine.csv"
    t.write(cat)
    ws = ingest(cat, tmp_path / "ws", columns="hmag=H_F160W,logmass=M_med,catalog_class=visual",
                blocks_dir=simfolder / "blocks", config={"cuts": {"photflag": None, "z_max": None}},
                progress=False)
    out = read_workspace_catalog(ws)
    assert list(out["id"]) == ["s0", "s1", "s5", "s6", "s7"]
    assert list(out["catalog_class"]) == ["", "Core", "Asymmetric", "FitQuality", "Asymmetric"]
    assert ws.ingest_report.unknown_classes == {"Merger": 1}
    assert set(out["prep_status"]) == {"pending"}
    assert out["block"][2].endswith("blocks/s5.fits")
    assert "VOTES" not in out.meta and "true_class" not in out.colnames
    assert ws.config["catalog"]["columns"]["hmag"] == "H_F160W"
    assert ws.ingest_report.cuts.disabled == ["z_max", "photflag"]


def test_catalog_without_block_column_or_blocks_dir(simfolder, tmp_path):
    t = Table.read(simfolder / "catalog.fits")
    t.remove_column("block")
    t.write(tmp_path / "c.fits")
    with pytest.raises(CatalogError, match="no block column.*--blocks"):
        ingest(tmp_path / "c.fits", tmp_path / "ws", progress=False)
    assert not (tmp_path / "ws").exists()


def test_a_catalog_without_z_mass_or_photflag_ingests_with_those_cuts_off(simfolder, tmp_path, capsys):
    t = Table.read(simfolder / "catalog.fits")
    t.remove_columns(["logmass", "z", "photflag"])
    t.write(tmp_path / "c.fits")
    ws = ingest(tmp_path / "c.fits", tmp_path / "ws", blocks_dir=simfolder, progress=False)
    rep = ws.ingest_report.cuts
    assert rep.missing == {"logmass_min": "logmass", "z_min": "z", "z_max": "z", "photflag": "photflag"}
    assert list(ws.read_catalog()["id"]) == ["s0", "s1", "s3", "s4", "s5", "s6", "s7"]  # only H < 24.5
    assert main(["ingest", str(tmp_path / "c.fits"), str(tmp_path / "ws2"), "--blocks", str(simfolder)]) == 0
    out = capsys.readouterr().out
    assert "note: the catalog has no logmass, z, photflag column: the cut(s) logmass_min, z_min, z_max, " \
           "photflag are off" in out


def test_cuts_and_no_cuts_options(simfolder, tmp_path, capsys):
    assert main(["ingest", str(simfolder), str(tmp_path / "a"), "--cuts", "z=none,photflag=none"]) == 0
    out = capsys.readouterr().out
    assert "kept 6 of 8 galaxies" in out and "z_min (off)" in out and "z_max (off)" in out
    assert read_config(tmp_path / "a" / "config.toml")["cuts"] == {
        "hmag_max": 24.5, "logmass_min": 9.5, "z_min": None, "z_max": None, "photflag": None}
    assert main(["ingest", str(simfolder), str(tmp_path / "b"), "--no-cuts"]) == 0
    assert "kept 8 of 8 galaxies" in capsys.readouterr().out
    # the votes line ingest prints works although the cuts removed galaxies
    assert main(["ingest", str(simfolder), str(tmp_path / "c"), "--cuts", "hmag=22.5"]) == 0
    out = capsys.readouterr().out
    line = out.split("import them with")[1].splitlines()[1].split()
    assert line[:3] == ["resx", "votes", "import"] and "votes on the 6 galaxies the cuts removed are skipped" in out
    (simfolder / "votes.csv").write_text("id,inspector,label\ns0,a,Clean\ns2,a,Core\ns6,b,Core\n")
    assert main(line[1:]) == 0
    out = capsys.readouterr().out
    assert "imported 2 votes" in out and "skipped 1 votes on 1 galaxies" in out
    assert main(["ingest", str(simfolder), str(tmp_path / "d"), "--cuts", "colour=2"]) == 2
    assert "resx ingest: --cuts: 'colour=2' is not NAME=VALUE" in capsys.readouterr().err


def test_empty_catalog_and_no_galaxy_left_are_clear_errors(simfolder, tmp_path):
    t = Table.read(simfolder / "catalog.fits")[:0]
    t.write(tmp_path / "empty.fits")
    with pytest.raises(CatalogError, match="empty.fits: the catalog has no rows"):
        ingest(tmp_path / "empty.fits", tmp_path / "ws", progress=False)
    with pytest.raises(CatalogError, match=r"(?s)no galaxy passed the cuts, nothing written:\n.*kept 0 of 8"):
        ingest(simfolder, tmp_path / "ws", config={"cuts": {"hmag_max": 10.0}}, progress=False)
    assert not (tmp_path / "ws").exists()


def test_existing_workspace_needs_force(simfolder, tmp_path):
    ingest(simfolder, tmp_path / "ws", progress=False)
    (tmp_path / "ws" / "stamps.zarr").mkdir()
    (tmp_path / "ws" / "votes.sqlite").write_text("keep me")
    with pytest.raises(WorkspaceError, match="already a workspace"):
        ingest(simfolder, tmp_path / "ws", progress=False)
    ws = ingest(simfolder, tmp_path / "ws", config={"cuts": {"hmag_max": None}}, force=True,
                progress=False)
    assert len(ws.read_catalog()) == 5
    assert not (tmp_path / "ws" / "stamps.zarr").exists()
    assert (tmp_path / "ws" / "votes.sqlite").read_text() == "keep me"


def test_cli_ingest_and_catalog(simfolder, tmp_path, capsys):
    cfg = tmp_path / "over.toml"
    cfg.write_text('[cuts]\nphotflag = "none"\n[prep]\ncutout = 64\n')
    ws = tmp_path / "ws"
    assert main(["ingest", str(simfolder), str(ws), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "kept 4 of 8 galaxies" in out and "H < 24.5" in out
    assert "resx votes import" in out and "votes.csv" in out
    assert read_config(ws / "config.toml")["prep"]["cutout"] == 64
    full = read_workspace_catalog(Workspace.open(ws))
    for ext in (".fits", ".csv", ".ecsv"):
        dest = tmp_path / f"out{ext}"
        assert main(["catalog", str(ws), "--out", str(dest)]) == 0
        back = Table.read(dest)
        assert back.colnames == full.colnames, ext
        assert list(back["id"].astype(str)) == list(full["id"])
        np.testing.assert_allclose(back["gf_re"], full["gf_re"])
    assert "wrote 4 galaxies" in capsys.readouterr().out


def test_cli_errors_are_readable(tmp_path, capsys):
    assert main(["ingest", str(tmp_path / "nope"), str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resx ingest: ") and "nope" in err and "Traceback" not in err
    assert main(["catalog", str(tmp_path / "nows"), "--out", str(tmp_path / "x.csv")]) == 2
    assert "No workspace" in capsys.readouterr().err
    ws = Workspace.create(tmp_path / "ws")
    ws.write_catalog(Table({"id": ["a"]}))
    assert main(["catalog", str(ws.root), "--out", str(tmp_path / "x.txt")]) == 2
    assert "unsupported extension" in capsys.readouterr().err
    with pytest.raises(ValueError):
        write_catalog(ws, tmp_path / "x.parquet")


def test_ingest_real_galfit_block(shared_data, tmp_path):
    """A one-galaxy catalog pointing at the block GALFIT wrote (no cut columns: cuts off)."""
    block = shared_data / "galfit_goodss_f606w" / "imgblock.fits"
    cat = tmp_path / "c.ecsv"
    Table({"id": ["goodss"], "block": [str(block.resolve())]}).write(cat)
    off = {k: None for k in ("hmag_max", "logmass_min", "z_min", "z_max", "photflag")}
    ws = ingest(cat, tmp_path / "ws", config={"cuts": off}, progress=False)
    t = read_workspace_catalog(ws)
    assert t["prep_status"][0] == "pending" and t["catalog_class"][0] == ""
    assert t["gf_xc"][0] == pytest.approx(46.5265) and t["gf_n"][0] == pytest.approx(4.1097)
    assert t["gf_sky"][0] == pytest.approx(0.73) and t["gf_chi2nu"][0] == pytest.approx(1.469164)
    assert np.isnan(t["hmag"][0]) and t["photflag"][0] == -1 and t["field"][0] == ""


# -- parallel header reading ---------------------------------------------------------------------

N_PAR = 11


def make_block_survey(root):
    """A catalog of N_PAR galaxies (no cut columns) and their blocks, some of them broken:
    g03 truncated, g05 with 3 HDUs, g08 missing (no file), g09 with a NaN parameter."""
    blocks = root / "blocks"
    blocks.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(N_PAR):
        if i == 8:
            continue
        model = rng.random((12, 12))
        write_block(blocks / f"g{i:02d}.fits", model + 0.01, model, params=_params(i),
                    zeropoint=25.9463, chi2nu=1.0 + i / 10)
    data = (blocks / "g03.fits").read_bytes()
    (blocks / "g03.fits").write_bytes(data[: len(data) - 2000])  # cut into the residual's pixels
    with fits.open(blocks / "g05.fits") as h:
        fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(h[1].data), fits.ImageHDU(h[3].data)]).writeto(
            blocks / "g05.fits", overwrite=True)
    with fits.open(blocks / "g09.fits", mode="update") as h:
        h[2].header["1_YC"] = "nan +/- nan"
    cat = root / "cat.ecsv"
    Table({"id": [f"g{i:02d}" for i in range(N_PAR)]}).write(cat)
    return cat


NO_CUTS = {"cuts": {k: None for k in ("hmag_max", "logmass_min", "z_min", "z_max", "photflag")}}


@pytest.fixture
def survey(tmp_path):
    return make_block_survey(tmp_path / "survey")


@pytest.fixture
def spy_run_tasks(monkeypatch):
    """Record the tasks ingest hands to core.parallel.run_tasks (then run them as usual)."""
    import core.parallel

    calls = []
    original = core.parallel.run_tasks

    def spy(func, args, **kwargs):
        calls.append((func, list(args), kwargs))
        return original(func, args, **kwargs)

    monkeypatch.setattr(core.parallel, "run_tasks", spy)
    return calls


def _assert_same_catalog(a, b):
    assert a.colnames == b.colnames
    for c in a.colnames:
        if a[c].dtype.kind == "f":
            np.testing.assert_array_equal(a[c], b[c], err_msg=c)  # NaN == NaN here
        else:
            assert list(a[c]) == list(b[c]), c


def test_parallel_header_reading_equals_serial(survey, tmp_path, monkeypatch, spy_run_tasks):
    import core.workspace.ingestion

    monkeypatch.setattr(core.workspace.ingestion, "HEADER_CHUNK", 3)  # 10 blocks found: 4 tasks of <= 3
    blocks = survey.parent / "blocks"
    serial = ingest(survey, tmp_path / "serial", config=NO_CUTS, blocks_dir=blocks, workers=1,
                    progress=False)
    assert spy_run_tasks == []  # workers=1: read in this process
    par = ingest(survey, tmp_path / "par", config=NO_CUTS, blocks_dir=blocks, workers=2,
                 progress=False)
    (call,) = spy_run_tasks
    func, tasks, kwargs = call
    assert func is core.workspace.ingestion.read_header_chunk and kwargs["workers"] == 2
    assert [len(paths) for (paths, *_) in tasks] == [3, 3, 3, 1]
    assert kwargs["weights"] == [3, 3, 3, 1]

    ts, tp = read_workspace_catalog(serial), read_workspace_catalog(par)
    _assert_same_catalog(ts, tp)
    assert serial.ingest_report.block_errors == par.ingest_report.block_errors
    # ... and both are right, not merely equal.
    assert list(tp["id"]) == [f"g{i:02d}" for i in range(N_PAR)]
    bad = {3, 5, 8, 9}
    assert list(tp["prep_status"]) == ["error" if i in bad else "pending" for i in range(N_PAR)]
    msgs = [str(m) for m in tp["prep_message"]]
    assert all(msgs[i] == "" for i in range(N_PAR) if i not in bad)
    assert msgs[3].startswith(f"{blocks.resolve() / 'g03.fits'}: truncated file")
    assert msgs[5] == (f"{blocks.resolve() / 'g05.fits'}: missing HDU: a GALFIT block has 4 HDUs "
                       "(primary, input, model, residual), this file has 3")
    assert msgs[8] == f"no GALFIT block found for id g08 in {blocks}"
    assert msgs[9] == f"{blocks.resolve() / 'g09.fits'}: parameter 1_YC is nan"
    good = [i for i in range(N_PAR) if i not in bad]
    np.testing.assert_allclose(tp["gf_xc"][good], [10.5 + i for i in good])
    np.testing.assert_allclose(tp["gf_mag"][good], [22.0 + 0.1 * i for i in good])
    np.testing.assert_allclose(tp["gf_n"][good], [2.0 + i for i in good])
    np.testing.assert_allclose(tp["gf_chi2nu"][good], [1.0 + i / 10 for i in good])
    np.testing.assert_allclose(tp["gf_sky"][good], 1e-3)
    assert [str(f) for f in tp["gf_flags"]] == ["RE,N" if i == 1 else "" for i in range(N_PAR)]
    for i in (3, 5, 8):  # unreadable: no values
        assert all(np.isnan(tp[c][i]) for c in ("gf_xc", "gf_n", "gf_sky", "gf_chi2nu"))
    # a NaN parameter is an error, but the other values of that block are read
    assert np.isnan(tp["gf_yc"][9]) and tp["gf_xc"][9] == pytest.approx(19.5)
    assert par.ingest_report.n_blocks_ok == 7 and len(par.ingest_report.block_errors) == 4


def test_small_ingest_starts_no_workers(survey, tmp_path, spy_run_tasks):
    """10 blocks are one task of HEADER_CHUNK: read here even when 2 workers are allowed."""
    ws = ingest(survey, tmp_path / "ws", config=NO_CUTS, blocks_dir=survey.parent / "blocks",
                workers=2, progress=False)
    assert spy_run_tasks == []
    assert list(ws.read_catalog()["prep_status"]).count("error") == 4


def test_cli_ingest_workers_and_scheduler_options(survey, tmp_path, monkeypatch, spy_run_tasks, capsys):
    import core.workspace.ingestion
    from core.cli.main import build_parser

    args = build_parser().parse_args(["ingest", "src", "ws", "--workers", "3", "--scheduler", "tcp://h:8786"])
    assert (args.workers, args.scheduler) == (3, "tcp://h:8786")
    args = build_parser().parse_args(["ingest", "src", "ws"])
    assert (args.workers, args.scheduler) == (None, None)

    monkeypatch.setattr(core.workspace.ingestion, "HEADER_CHUNK", 4)
    cfg = tmp_path / "nocuts.toml"
    cfg.write_text("[cuts]\n" + "".join(f'{k} = "none"\n' for k in NO_CUTS["cuts"]))
    assert main(["ingest", str(survey), str(tmp_path / "ws"), "--blocks", str(survey.parent / "blocks"),
                 "--config", str(cfg), "--workers", "2", "--scheduler", "threads"]) == 1  # 4 bad blocks
    (call,) = spy_run_tasks
    assert call[2]["workers"] == 2 and call[2]["scheduler"] == "threads" and len(call[1]) == 3
    out = capsys.readouterr().out
    assert "GALFIT blocks: 7 read, 4 with errors" in out and "g05.fits: missing HDU" in out


def test_serial_ingest_leaves_no_thread_behind(survey, tmp_path):
    """A thread left in the driver (tqdm's monitor) would make later workers start by forkserver."""
    import threading

    before = {t.ident for t in threading.enumerate()}
    ingest(survey, tmp_path / "ws", config=NO_CUTS, blocks_dir=survey.parent / "blocks", workers=1,
           progress=True)
    assert [t.name for t in threading.enumerate() if t.ident not in before] == []
