"""Object-only stamps per galaxy (paper §3.1) and `resx prep` on a workspace."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from core.io.stamps import STAMP_KINDS
from core.prep import galaxy
from core.prep import pipeline as prep
from core.prep.galaxy import prep_galaxy
from core.prep.pipeline import prep_workspace
from core.prep.residual import PrepError, object_only
from tests.workspace_factory import make_workspace

SIZE = 100


from tests.conftest import gauss as _gauss  # noqa: E402


def test_object_only_replaces_interloper_with_sky(scene):
    r = prep_galaxy(scene["input"], scene["model"], scene["residual"], scene["xc"], scene["yc"], seed=3)
    assert r.status == "ok", r.message
    x, y = scene["inter"]
    inter_seg = r.segmap == r.segmap[y, x]
    assert inter_seg.sum() > 30 and not (inter_seg & r.goi).any()
    full = object_only(scene["residual"], r.goi, r.sky_image)
    sky_pix = scene["residual"][r.sky]
    # the interloper's pixels are now sky-like: mean within 0.1 sigma, std within 10 %
    assert abs(full[inter_seg].mean() - sky_pix.mean()) < 0.1 * sky_pix.std()
    assert_allclose(full[inter_seg].std(), sky_pix.std(), rtol=0.10)
    # and all pixels outside the GOI have the input sky's noise within 5 %
    assert_allclose(full[~r.goi].std(), 1.0, rtol=0.05)
    # the GOI keeps the residual exactly
    assert_array_equal(full[r.goi], scene["residual"][r.goi])
    # the stored stamps: cutouts of those frames, centred on the centroid
    assert set(r.stamps) == set(STAMP_KINDS)
    assert_allclose(r.stamps["object_only"], full[25:75, 25:75].astype(np.float32))
    assert r.stamps["goi_mask"][25, 25] == 1
    assert r.stamps["original"].shape == (50, 50)
    assert r.metrics["sky_sigma"] == pytest.approx(1.0, rel=0.1)
    assert r.metrics["spf"] > 0 and r.metrics["rff"] > 0


def test_same_seed_same_stamps_and_big_endian_is_converted(scene):
    a = prep_galaxy(scene["input"], scene["model"], scene["residual"], scene["xc"], scene["yc"], seed=[1, 2])
    b = prep_galaxy(scene["input"].astype(">f8"), scene["model"].astype(">f8"), scene["residual"].astype(">f8"),
                    scene["xc"], scene["yc"], seed=[1, 2])
    c = prep_galaxy(scene["input"], scene["model"], scene["residual"], scene["xc"], scene["yc"], seed=[1, 3])
    for k in STAMP_KINDS:
        assert_array_equal(a.stamps[k], b.stamps[k])
    assert a.metrics == b.metrics
    assert not np.array_equal(a.stamps["object_only"], c.stamps["object_only"])
    assert_array_equal(a.stamps["residual"], c.stamps["residual"])


def test_off_image_cutout_is_padded_with_sky_and_flagged(scene):
    # centroid near the edge: a galaxy at column 8
    gal = _gauss(8.0, 50.0, 3.0, 60.0)
    rng = np.random.default_rng(1)
    inp = gal + rng.normal(0, 1.0, (SIZE, SIZE))
    r = prep_galaxy(inp, 0.9 * gal, inp - 0.9 * gal, 9.0, 51.0, seed=0)
    assert r.padded and r.status == "flagged" and "padded" in r.message
    oo = r.stamps["object_only"]
    assert np.isfinite(oo).all()
    assert_allclose(oo[:, :10].std(), 1.0, rtol=0.2)  # the padding is sky, not zeros
    assert r.stamps["goi_mask"][:, :17].sum() == 0


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: d["input"].__setitem__((3, 4), np.nan), "non-finite"),
        (lambda d: d["residual"].__setitem__((3, 4), np.inf), "non-finite"),
        (lambda d: d.__setitem__("residual", np.zeros((SIZE, SIZE))), "all zero"),
        (lambda d: d.__setitem__("xc", 130.0), "off the"),
        (lambda d: d.update(xc=95.0, yc=95.0), "no segment"),
        (lambda d: d.__setitem__("model", np.zeros((SIZE, SIZE - 1))), "shape"),
    ],
)
def test_bad_input_raises_clear_prep_error(scene, change, match):
    d = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in scene.items()}
    change(d)
    with pytest.raises(PrepError, match=match):
        prep_galaxy(d["input"], d["model"], d["residual"], d["xc"], d["yc"])


BAD = {1: "nan", 2: "missing_hdu", 3: "missing_file", 5: "off_image", 6: "no_segment", 7: "zero_residual"}


@pytest.fixture
def bad_ws(tmp_path):
    return make_workspace(tmp_path / "ws", n=10, chunk=4, bad=BAD)


def test_prep_workspace_records_every_bad_input_and_goes_on(bad_ws):
    cat = prep_workspace(bad_ws, workers=1, progress=False)
    status = list(cat["prep_status"])
    msg = list(cat["prep_message"])
    for i, kind in BAD.items():
        assert status[i] == "error", (kind, msg[i])
        assert f"gal_{i:04d}.fits" in msg[i]  # the message names the file
    assert "non-finite" in msg[1] and "missing HDU" in msg[2] and "not found" in msg[3]
    assert "off the" in msg[5] and "no segment" in msg[6] and "all zero" in msg[7]
    good = [i for i in range(10) if i not in BAD]
    assert all(status[i] in ("ok", "flagged") for i in good)
    assert np.isfinite(np.array(cat["spf"])[good]).all()
    assert np.isnan(np.array(cat["spf"])[list(BAD)]).all()
    assert set(cat["split"][list(BAD)]) == {"excluded"}
    # stored in the workspace: catalog + stamps, row i <-> stamp i
    ws_cat = bad_ws.read_catalog()
    assert list(ws_cat["prep_status"]) == status
    store = bad_ws.stamps()
    oo = store.read("object_only")
    assert oo.shape == (10, 50, 50)
    assert np.isfinite(oo[good]).all() and np.isnan(oo[list(BAD)]).all()
    one = prep.prep_block(bad_ws.root / ws_cat["block"][0], ws_cat["gf_xc"][0], ws_cat["gf_yc"][0],
                          seed=galaxy.galaxy_seed(0, "G0000"), config=bad_ws.config["prep"])
    assert_array_equal(store.read("object_only", 0), one.stamps["object_only"].astype(np.float32))
    assert not (bad_ws.root / prep.JOURNAL_DIR).exists()


def test_rerun_skips_finished_and_resumes_from_journal(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path / "ws", n=9, chunk=4)
    calls = []
    real = prep.prep_block

    def counting(path, *a, **k):
        calls.append(str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(prep, "prep_block", counting)
    # an "interrupted" run: chunk 0 finished (stamps + journal) but the catalog was never updated
    from core.io.stamps import StampStore

    cat = ws.read_catalog()
    StampStore.create(ws.stamps_path, len(cat), 50, 4)
    items = [(i, str(cat["id"][i]), str(cat["block"][i]), float(cat["gf_xc"][i]), float(cat["gf_yc"][i]))
             for i in range(4)]
    prep.prep_chunk(str(ws.root), 0, 4, items, {**ws.config["prep"]})
    assert len(calls) == 4
    cat = prep_workspace(ws, workers=1, progress=False)
    assert len(calls) == 9  # only the 5 galaxies of the other chunks were done
    assert all(s in ("ok", "flagged") for s in cat["prep_status"])
    prep_workspace(ws, workers=1, progress=False)
    assert len(calls) == 9  # nothing left to do
    prep_workspace(ws, workers=1, progress=False, redo=True)
    assert len(calls) == 18


def test_resx_prep_report(bad_ws, capsys):
    from core.cli.main import main

    assert main(["prep", str(bad_ws.root)]) == 1  # finished, with per-galaxy errors
    out = capsys.readouterr().out
    assert "error 6" in out and "--report" in out
    assert main(["prep", str(bad_ws.root), "--report"]) == 0
    out = capsys.readouterr().out
    for i in BAD:
        assert f"G{i:04d}" in out
    assert "G0000" not in out
    assert main(["prep", str(bad_ws.root / "nope")]) == 2
    assert "No workspace" in capsys.readouterr().err


def test_real_galfit_block(shared_data):
    """The GALFIT example block (ACS F606W, GOODS-S): prepared, metrics finite."""
    r = galaxy.prep_block(shared_data / "galfit_goodss_f606w" / "imgblock.fits", None, None, seed=0)
    assert r.status in ("ok", "flagged"), r.message
    assert r.goi.sum() > 100 and r.stamps["goi_mask"][25, 25] == 1
    assert all(np.isfinite(v) for v in r.metrics.values())
    assert r.metrics["sky_sigma"] > 0 and r.metrics["spf"] > 0


def test_prep_on_an_ingested_workspace(tmp_path):
    """A workspace made by `resx ingest` (absolute block paths, ingest-time errors kept)."""
    ingest = pytest.importorskip("core.workspace.ingestion").ingest
    src = make_workspace(tmp_path / "src", n=6, bad={2: "missing_hdu"})
    src.read_catalog().write(tmp_path / "cat.fits")
    ws = ingest(tmp_path / "cat.fits", tmp_path / "ws", blocks_dir=tmp_path / "src", progress=False)
    cat = prep_workspace(ws, workers=1, progress=False)
    assert cat["prep_status"][2] == "error" and "missing HDU" in cat["prep_message"][2]
    assert all(s in ("ok", "flagged") for i, s in enumerate(cat["prep_status"]) if i != 2)
