"""The Inspect-next queue: retirement, strategies, cold start, stored BALD scores, `resx queue`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.latent.queue import QueueError, build_queue, retired_mask
from core.votes.store import open_store
from tests.app_workspace import make_workspace


@pytest.fixture
def ws(tmp_path):
    ws = make_workspace(tmp_path / "ws", n=120, seed=0)
    with open_store(ws) as store:
        for who in "abc":
            store.add_inspector(who)
    return ws


def test_retirement_rules():
    cons = pd.DataFrame({"label": ["Core", "undecided", "undecided", "undecided", "FitQuality"],
                         "n_votes": [3, 1, 2, 1, 3],
                         "Clean": [0, 0, 1, 0, 0], "General": [0, 0, 0, 0, 0], "Core": [3, 1, 1, 0, 0],
                         "Asymmetric": [0, 0, 0, 1, 0], "Peculiar": [0, 0, 0, 0, 0]})
    probs = np.array([[0, 0, 1, 0, 0], [0.02, 0.02, 0.92, 0.02, 0.02], [0, 0, 0.95, 0.05, 0],
                      [0, 0, 0.95, 0.05, 0], [np.nan] * 5])
    # Default: only decided galaxies (here the Core and the FitQuality consensus) retire.
    assert retired_mask(cons).tolist() == [True, False, False, False, True]
    # With the confidence rule: galaxy 1 (one Core vote, model 92 % Core) retires; galaxy 2 has
    # a disagreeing vote, galaxy 3 a vote for another class.
    assert retired_mask(cons, probs, retire_confidence=0.9).tolist() == [True, True, False, False, True]
    assert retired_mask(cons, probs, retire_confidence=0.95).tolist() == [True, False, False, False, True]
    assert retired_mask(cons, probs, retire_confidence=0.9, retire_votes=2).tolist() == [True, False, False, False, True]


def test_entropy_queue_and_decided_galaxies_retire(ws):
    q = build_queue(ws, "entropy", 10, overrides={"diversity": 0.0})
    emb = np.load(ws.run_dir("cnn-a") / "embedding.npz")
    p = emb["probabilities"].astype(float)
    h = -(p * np.log(np.maximum(p, 1e-12))).sum(axis=1)
    expected = np.asarray(emb["ids"]).astype(str)[np.argsort(-h, kind="stable")[:10]]
    assert q.table["id"].tolist() == expected.tolist()
    assert q.table["rank"].tolist() == list(range(1, 11))
    assert not q.cold_start and q.source == "CNN run cnn-a" and q.n_retired == 0
    top = q.table["id"].iloc[0]
    with open_store(ws) as store:
        store.cast(top, "a", "Core")
        store.cast(top, "b", "Core")
        assert build_queue(ws, "entropy", 10, overrides={"diversity": 0.0}).table["id"].iloc[0] == top  # 2 < 3
        store.cast(top, "c", "Clean")  # 2/3 Core: decided
        q2 = build_queue(ws, "entropy", 10, overrides={"diversity": 0.0}, store=store)
    assert top not in q2.table["id"].tolist() and q2.n_retired == 1
    assert q2.table["id"].tolist() == expected[1:10].tolist() + [q2.table["id"].iloc[-1]]
    # The next batch continues the ranking.
    nxt = build_queue(ws, "entropy", 5, offset=5, overrides={"diversity": 0.0})
    assert nxt.table["rank"].tolist() == [6, 7, 8, 9, 10]


def test_disagreement_is_live_and_random_is_seeded(ws):
    with open_store(ws) as store:
        store.cast("G0000003", "a", "Core")
        store.cast("G0000003", "b", "Clean")
        store.cast("G0000007", "a", "Core")
        store.cast("G0000007", "b", "Core")
        q = build_queue(ws, "disagreement", 3, store=store, overrides={"diversity": 0.0})
    assert q.table["id"].iloc[0] == "G0000003"
    assert q.table["score"].iloc[0] == pytest.approx(np.log(2))
    r1, r2 = build_queue(ws, "random", 8), build_queue(ws, "random", 8)
    assert r1.table["id"].tolist() == r2.table["id"].tolist()
    assert build_queue(ws, "random", 8, overrides={"seed": 1}).table["id"].tolist() != r1.table["id"].tolist()


def test_diversity_spreads_the_queue_over_the_gmm_clusters(ws):
    plain = build_queue(ws, "margin", 10, overrides={"diversity": 0.0})
    spread = build_queue(ws, "margin", 10, overrides={"diversity": 1.0})
    assert spread.table["cluster"].nunique() == 5  # one per cluster before a second from any
    assert spread.table["cluster"].value_counts().max() == 2
    assert spread.table["id"].iloc[0] == plain.table["id"].iloc[0]


def test_cold_start_without_a_cnn_run(tmp_path):
    ws = make_workspace(tmp_path / "ws", n=60, seed=1)
    ws.set_active_run("cnn", None)
    q = build_queue(ws, "bald", 10, overrides={"diversity": 1.0})
    assert q.cold_start and q.source == "cold start: CvAE run cvae-a"
    assert q.labels_missing == 100 and "needs a CNN run" in q.note
    assert q.table["cluster"].nunique() == 5  # spread over the CvAE map's clusters
    ws.set_active_run("cvae", None)
    bare = build_queue(ws, "entropy", 10)
    assert bare.source == "cold start: no run, at random" and len(bare.table) == 10
    assert "cold start: 100 more decided consensus labels" in bare.to_text()
    with pytest.raises(QueueError, match="strategy"):
        build_queue(ws, "best")


def test_bald_scores_are_computed_with_mc_dropout_and_stored(ws):
    import keras

    from core.latent.queue import ACQUISITION_NPZ, load_acquisition
    from core.learn.models import build_cnn

    keras.utils.set_random_seed(0)
    build_cnn(input_size=24, filters=(4, 8, 8), latent_dim=16).save(ws.run_dir("cnn-a") / "model.keras")
    with open_store(ws) as store:
        for who in "abc":
            store.cast("G0000000", who, "Core")  # decided: retired, so not scored
        q = build_queue(ws, "bald", 6, store=store, overrides={"mc_passes": 5, "diversity": 0.0})
    stored = load_acquisition(ws.run_dir("cnn-a"))
    assert (ws.run_dir("cnn-a") / ACQUISITION_NPZ).exists()
    ids = stored["ids"].astype(str)
    assert np.isnan(stored["bald"][ids == "G0000000"]).all()
    assert np.isfinite(stored["bald"][ids != "G0000000"]).all() and (stored["bald"][ids != "G0000000"] >= 0).all()
    order = np.argsort(-np.where(np.isfinite(stored["bald"]), stored["bald"], -np.inf), kind="stable")[:6]
    assert q.table["id"].tolist() == ids[order].tolist()
    # A pool smaller than the unretired galaxies: only the highest-entropy ones get MC passes.
    from core.latent.queue import compute_acquisition

    out = compute_acquisition(ws, "cnn-a", overrides={"mc_passes": 3, "pool_size": 10})
    assert np.isfinite(out["bald"]).sum() == 10
    assert out["entropy"][np.isfinite(out["bald"])].min() >= np.sort(out["entropy"])[-11]


def test_resx_queue_prints_and_writes_the_ranked_list(ws, tmp_path, capsys):
    from core.cli.main import main

    out = tmp_path / "queue.csv"
    assert main(["queue", str(ws.root), "--strategy", "entropy", "--n", "7", "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"id": str})
    assert table["id"].tolist() == build_queue(ws, "entropy", 7).table["id"].tolist()
    assert "wrote 7 galaxies" in capsys.readouterr().out
    assert main(["queue", str(ws.root), "--strategy", "margin", "--n", "3"]) == 0
    printed = capsys.readouterr().out
    assert "queue (margin, CNN run cnn-a): 3 of 120 unretired galaxies (0 retired)" in printed
    assert main(["queue", str(ws.root), "--n", "-1"]) == 2


def _tiny_cnn_run(tmp_path, mc_passes: int):
    """A 40-galaxy model workspace with a finished, untrained 16-px CNN run ``cnn-x``."""
    import json

    import keras

    from core.learn.models import build_cnn
    from tests.model_workspace import make_workspace as make_model_workspace

    w = make_model_workspace(tmp_path / "mws", n=40, size=16)
    w.config["queue"] = {"mc_passes": mc_passes}
    folder = w.runs_dir / "cnn-x"
    folder.mkdir(parents=True)
    keras.utils.set_random_seed(1)
    build_cnn(input_size=16, filters=(4, 8, 8), latent_dim=16).save(folder / "model.keras")
    (folder / "run.json").write_text(json.dumps({"id": "cnn-x", "model": "cnn", "labels": "catalog",
                                                 "status": "done", "created": "2025-01-01T00:00:00"}))
    return w, folder


def test_embed_run_stores_the_acquisition_scores_with_the_embedding(tmp_path):
    """`resx embed` (and so every retrain with --embed) computes the scores beside embedding.npz."""


    from core.latent.embed import embed_run
    from core.latent.queue import load_acquisition

    w, folder = _tiny_cnn_run(tmp_path, mc_passes=4)
    emb = embed_run(w, "cnn-x")
    scores = load_acquisition(folder)
    assert scores["ids"].astype(str).tolist() == emb.ids.astype(str).tolist()
    assert np.isfinite(scores["bald"]).all() and np.isfinite(scores["entropy"]).all()
    np.testing.assert_allclose(scores["entropy"], -(emb.probabilities * np.log(emb.probabilities)).sum(axis=1),
                               rtol=1e-4)
    assert "mc_passes': 4" in str(scores["meta"])


def test_bald_runs_chunk_wise_on_dask_above_the_threshold(ws):
    """Above embed.dask_threshold pool galaxies, MC dropout runs one Dask task per stamp chunk."""
    import keras

    from core.latent.queue import compute_acquisition
    from core.learn.models import build_cnn

    keras.utils.set_random_seed(0)
    build_cnn(input_size=24, filters=(4, 8, 8), latent_dim=16).save(ws.run_dir("cnn-a") / "model.keras")
    ws.config["embed"]["dask_threshold"] = 10
    a = compute_acquisition(ws, "cnn-a", overrides={"mc_passes": 3})
    b = compute_acquisition(ws, "cnn-a", overrides={"mc_passes": 3})
    assert np.isfinite(a["bald"]).all() and (a["bald"] >= 0).all() and len(a["bald"]) == 120
    np.testing.assert_array_equal(a["bald"], b["bald"])  # seeded per chunk: the same scores again


def test_pending_scores_are_neither_read_nor_waited_for(ws):
    """While a retrain computes a run's BALD scores (its map already shown), a BALD queue ranks by
    the same run's entropy and says so; it never reads the run's older scores nor computes them."""
    import subprocess
    import sys

    import keras

    from core.latent.queue import (ACQUISITION_NPZ, ACQUISITION_PENDING, acquisition_status, compute_acquisition,
                                   mark_acquisition_pending)
    from core.learn.models import build_cnn

    run_dir = ws.run_dir("cnn-a")
    keras.utils.set_random_seed(0)
    build_cnn(input_size=24, filters=(4, 8, 8), latent_dim=16).save(run_dir / "model.keras")
    compute_acquisition(ws, "cnn-a", overrides={"mc_passes": 3})
    assert acquisition_status(run_dir) == "ready"
    mark_acquisition_pending(run_dir)  # what embed_run does before writing a new map
    assert not (run_dir / ACQUISITION_NPZ).exists(), "the older scores are still there to be read"
    assert acquisition_status(run_dir) == "pending"
    q = build_queue(ws, "bald", 10, overrides={"mc_passes": 3, "diversity": 0.0})
    assert q.scores_pending and q.strategy == "entropy"
    assert "scores updating" in q.note and "scores updating" in q.to_text()
    assert not (run_dir / ACQUISITION_NPZ).exists(), "the queue computed the pending scores itself"
    assert q.table["id"].tolist() == build_queue(ws, "entropy", 10, overrides={"diversity": 0.0}).table["id"].tolist()
    # entropy and margin never needed the stored scores: not flagged
    assert not build_queue(ws, "margin", 5).scores_pending
    # the scores written: the marker goes, the queue is BALD again
    compute_acquisition(ws, "cnn-a", overrides={"mc_passes": 3})
    assert not (run_dir / ACQUISITION_PENDING).exists() and acquisition_status(run_dir) == "ready"
    q2 = build_queue(ws, "bald", 10, overrides={"mc_passes": 3, "diversity": 0.0})
    assert not q2.scores_pending and q2.strategy == "bald" and "scores updating" not in q2.note
    # a marker left by a process that died while scoring is not "pending" (nothing would end it)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mark_acquisition_pending(run_dir)
    rec = (run_dir / ACQUISITION_PENDING).read_text().replace(f'"pid": {__import__("os").getpid()}',
                                                              f'"pid": {dead.pid}')
    (run_dir / ACQUISITION_PENDING).write_text(rec)
    assert acquisition_status(run_dir) == "missing"


def test_a_retrain_writes_its_map_before_its_scores(tmp_path, monkeypatch):
    """`resx train --embed` (the dashboard's retrain): embedding.npz and progress phase "scoring"
    (scores pending) before the acquisition scores, then phase "ready" with them written."""
    import json


    import core.latent.embed as embed_mod
    from core.latent.queue import ACQUISITION_NPZ, acquisition_status
    from core.learn.training import _embed_then_score

    w, folder = _tiny_cnn_run(tmp_path, mc_passes=3)
    (folder / ACQUISITION_NPZ).write_bytes(b"older scores of this run")
    seen = {}
    real_score = embed_mod.score_run

    def score_run(ws, run_id, **kw):
        prog = json.loads((folder / "progress.json").read_text())
        seen.update(map=(folder / "embedding.npz").exists(), phase=prog["phase"], map_s=prog.get("map_s"),
                    status=acquisition_status(folder), npz=(folder / ACQUISITION_NPZ).exists())
        return real_score(ws, run_id, **kw)

    monkeypatch.setattr(embed_mod, "score_run", score_run)
    _embed_then_score(w, folder, "cnn-x", 2, 2, "completed")
    assert seen == {"map": True, "phase": "scoring", "map_s": seen["map_s"], "status": "pending", "npz": False}
    assert isinstance(seen["map_s"], float)
    prog = json.loads((folder / "progress.json").read_text())
    assert prog["phase"] == "ready" and prog["scores_s"] >= prog["map_s"]
    assert acquisition_status(folder) == "ready"
    with np.load(folder / ACQUISITION_NPZ) as z, np.load(folder / "embedding.npz") as e:
        assert z["ids"].tolist() == e["ids"].tolist() and np.isfinite(z["bald"]).all()
