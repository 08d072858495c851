"""Latent analysis (§5): elbow, alignment, SVC grid, the full estimator, and `resx embed` on a run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import special_ortho_group
from sklearn.datasets import make_blobs
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from core.latent.analysis import (
    KMeansElbow,
    LatentAnalysis,
    PCAlignment,
    elbow_point,
    predict_grid,
    svc_predict,
)
from core.latent.embedding import load_embedding


# -- elbow ------------------------------------------------------------------------------------
def test_elbow_point_by_hand():
    # chord from (1, 100) to (5, 10): the point farthest below it is k = 2
    assert elbow_point(np.arange(1, 6), np.array([100.0, 20.0, 15.0, 12.0, 10.0])) == 2
    # a straight line has no elbow: the first k
    assert elbow_point(np.arange(1, 6), np.array([5.0, 4.0, 3.0, 2.0, 1.0])) == 1


@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_elbow_finds_the_true_number_of_blobs(k):
    centres = 10.0 * np.stack([np.cos(2 * np.pi * np.arange(k) / k), np.sin(2 * np.pi * np.arange(k) / k)], 1)
    X, _ = make_blobs(n_samples=600, centers=centres, cluster_std=0.7, random_state=k)
    e = KMeansElbow(k_max=15, n_init=1, random_state=0).fit(X)
    assert e.k_ == k
    assert e.inertia_.shape == (15,) and np.all(np.diff(e.inertia_) <= 1e-6 * e.inertia_[0])


# -- alignment ---------------------------------------------------------------------------------
def test_alignment_recovers_the_orientation_of_a_rotated_flipped_copy():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 3)) * [3.0, 2.0, 1.0]
    R = special_ortho_group.rvs(3, random_state=1) @ np.diag([1, -1, 1])  # rotation and a flip
    new = ref @ R.T + rng.normal(0, 0.01, ref.shape)
    a = PCAlignment().fit(new, ref)
    np.testing.assert_allclose(a.transform(new), ref, atol=0.05)
    np.testing.assert_allclose(a.rotation_ @ a.rotation_.T, np.eye(3), atol=1e-10)
    # only the common galaxies (finite reference rows) are used
    partial = ref.copy()
    partial[::2] = np.nan
    b = PCAlignment().fit(new, partial)
    assert b.n_common_ == 250
    np.testing.assert_allclose(b.transform(new), ref, atol=0.05)


def test_analysis_keeps_the_map_orientation_between_runs():
    """The same latents seen through another basis (a retrain) give the same aligned map."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(800, 20)) * np.linspace(5, 0.5, 20)
    first = LatentAnalysis(k_max=6, grid=20).fit(X)
    Q = special_ortho_group.rvs(20, random_state=3)
    second = LatentAnalysis(k_max=6, grid=20).fit(X @ Q, reference=first.pcs_)
    np.testing.assert_allclose(second.pcs_, first.pcs_, atol=1e-6 * np.abs(first.pcs_).max())
    assert second.alignment_.n_common_ == 800


# -- SVC grid ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel,n_cls", [("rbf", 5), ("rbf", 2), ("linear", 3)])
def test_vectorised_svc_prediction_equals_scikit_learn(kernel, n_cls):
    rng = np.random.default_rng(n_cls)
    y = rng.integers(0, n_cls, 1200)
    P = rng.normal(size=(1200, 2)) * 2 + np.c_[y * 1.5, (y % 2) * 2.0]
    model = make_pipeline(StandardScaler(), SVC(kernel=kernel, gamma=0.7)).fit(P, y)
    grid = rng.uniform(-6, 12, (5000, 2))
    np.testing.assert_array_equal(svc_predict(model, grid), model.predict(grid))
    x, yy = np.linspace(-6, 12, 90), np.linspace(-6, 8, 70)
    gx, gy = np.meshgrid(x, yy)
    full = model.predict(np.column_stack([gx.ravel(), gy.ravel()])).reshape(70, 90)
    coarse_fine = predict_grid(model, x, yy)
    assert coarse_fine.shape == (70, 90)
    assert np.mean(coarse_fine != full) < 0.002  # only sub-stride islands may differ
    np.testing.assert_array_equal(predict_grid(model, x, yy, stride=1), full)


# -- the whole estimator ---------------------------------------------------------------------------
def test_latent_analysis_shapes_and_targets():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 600)
    X = rng.normal(size=(600, 64)) + 4.0 * np.eye(64)[y * 3]
    y_train = np.where(rng.random(600) < 0.8, y, -1)
    a = LatentAnalysis(grid=50, random_state=0).fit(X, y_train)
    assert a.pcs_.shape == (600, 3) and a.explained_variance_.shape == (3,)
    assert np.all(np.diff(a.explained_variance_) <= 0) and a.explained_variance_.sum() <= 1
    assert a.gmm_labels_.shape == (600,) and a.gmm_labels_.max() < a.elbow_.k_
    assert a.gmm_.means_.shape == (a.elbow_.k_, 2)
    assert a.svc_target_ == "labels" and set(np.unique(a.grid_z_)) <= set(range(5))
    assert a.grid_x_.shape == (50,) and a.grid_z_.shape == (50, 50)
    assert a.grid_x_[0] < a.pcs_[:, 0].min() and a.grid_x_[-1] > a.pcs_[:, 0].max()
    # the SVC sits on standardised PCs (γ = 0.7 in units of the PCs' spread)
    assert a.svc_.steps[0][0] == "standardscaler" and a.svc_[-1].gamma == 0.7
    # no labels: the SVC separates the GMM clusters (the paper's choice)
    b = LatentAnalysis(grid=20, svc_kernel="linear", random_state=0).fit(X)
    assert b.svc_target_ == "gmm" and b.svc_[-1].kernel == "linear"
    # seeded: the same input gives the same result
    c = LatentAnalysis(grid=50, random_state=0).fit(X, y_train)
    np.testing.assert_array_equal(c.gmm_labels_, a.gmm_labels_)
    np.testing.assert_array_equal(c.grid_z_, a.grid_z_)


# -- `resx embed` on trained runs ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from core.learn.training import train
    from tests.model_workspace import make_workspace

    ws = make_workspace(tmp_path_factory.mktemp("embed") / "ws", n=240, size=24)
    cnn = train(ws, "cnn", epochs=1, per_class=40, run_id="cnn-1", config={"models": {"filters": [8, 16, 16]}})
    cvae = train(ws, "cvae", epochs=1, per_class=40, run_id="cvae-1",
                 config={"models": {"filters": [8, 16, 16], "latent_dim": 32}})
    return ws, cnn, cvae


@pytest.mark.slow
def test_embed_run_writes_the_embedding(trained):
    from core.cli.main import main

    ws, cnn, cvae = trained
    assert main(["embed", str(ws.root), "--run", cnn.id]) == 0
    assert main(["embed", str(ws.root), "--model", "cvae"]) == 0  # the active CvAE run
    n_prepped = 240 - 1  # one galaxy's prep failed
    e = load_embedding(ws, cnn.id)
    assert e.latents.shape == (n_prepped, 512)
    assert e.pcs.shape == (n_prepped, 3) and e.ids.shape == (n_prepped,)
    assert e.probabilities.shape == (n_prepped, 5) and e.predicted.shape == (n_prepped,)
    np.testing.assert_allclose(e.probabilities.sum(axis=1), 1.0, rtol=1e-4)
    assert e.svc_z.shape == (300, 300) and e.svc_kernel == "rbf"
    assert 1 <= e.elbow_k <= 15 and e.gmm_means.shape == (e.elbow_k, 2)
    cat = ws.read_catalog()
    np.testing.assert_array_equal(e.ids, np.asarray(cat["id"]).astype(str)[e.rows])
    assert "error" not in set(np.asarray(cat["prep_status"])[e.rows])
    summary = json.loads((cnn.path / "embedding.json").read_text())
    assert summary["n"] == n_prepped and summary["elbow_k"] == e.elbow_k
    v = load_embedding(ws, cvae.id)
    assert v.latents.shape == (n_prepped, 32) and v.probabilities is None and v.svc_kernel == "linear"
    # latents are unaugmented and deterministic: the CvAE's are the encoder mean
    again = load_embedding(ws, cvae.id).latents
    np.testing.assert_array_equal(again, v.latents)


@pytest.mark.slow
def test_embed_aligns_a_retrain_to_the_previous_run(trained):
    import shutil

    from core.latent.embed import embed_run

    ws, cnn, _ = trained
    first = embed_run(ws, cnn.id)
    assert first.aligned_to == ""  # the only CNN run: nothing to align to
    # A "retrain" whose latents are the same up to the PCA's arbitrary signs: a copy of the run.
    copy = ws.runs_dir / "cnn-2"
    shutil.copytree(cnn.path, copy)
    record = json.loads((copy / "run.json").read_text())
    record.update(id="cnn-2", created="9999-01-01T00:00:00")
    (copy / "run.json").write_text(json.dumps(record))
    second = embed_run(ws, "cnn-2")
    assert second.aligned_to == cnn.id
    np.testing.assert_allclose(second.pcs, first.pcs, atol=1e-3 * np.abs(first.pcs).max())
    np.testing.assert_allclose(np.abs(second.rotation), np.eye(3), atol=1e-3)


@pytest.mark.slow
def test_embed_with_dask_chunks_matches_the_direct_path(trained):
    from core.latent.inference import extract_latents
    from core.workspace.config import read_config

    ws, cnn, _ = trained
    rows = np.arange(0, 200)
    cfg = read_config(cnn.path / "config.toml")
    a, pa = extract_latents(ws, cnn.path / "model.keras", rows, cfg)
    b, pb = extract_latents(ws, cnn.path / "model.keras", rows, cfg, dask_threshold=10)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_embed_reports_a_missing_run(tmp_path, capsys):
    from core.cli.main import main
    from tests.model_workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", n=30, size=16)
    assert main(["embed", str(ws.root), "--run", "nope"]) == 2
    assert capsys.readouterr().err.startswith("resx embed: No run 'nope'")
    assert main(["embed", str(ws.root)]) == 2
    with pytest.raises(FileNotFoundError):
        (ws.runs_dir / "x").mkdir()
        load_embedding(ws, "x")


def test_load_embedding_reads_only_the_arrays_asked_for(tmp_path):
    """A viewer can leave the 512-d latents on disk; what it reads equals the full load."""
    from core.latent.embedding import Embedding

    rng = np.random.default_rng(0)
    n = 7
    emb = Embedding(run_id="r1", model="cnn", ids=np.array([f"g{i}" for i in range(n)]), rows=np.arange(n),
                    latents=rng.normal(size=(n, 512)).astype(np.float32), pcs=rng.normal(size=(n, 3)),
                    pcs_raw=rng.normal(size=(n, 3)), explained_variance=np.array([0.5, 0.3, 0.1]),
                    ks=np.arange(1, 4), inertia=np.array([9.0, 4.0, 3.5]), elbow_k=2,
                    gmm_labels=rng.integers(0, 2, n), gmm_means=np.zeros((2, 2)), gmm_covariances=np.ones((2, 2, 2)),
                    svc_x=np.linspace(0, 1, 4), svc_y=np.linspace(0, 1, 3), svc_z=np.zeros((3, 4), int),
                    predicted=rng.integers(0, 5, n))
    emb.save(tmp_path)
    full = Embedding.load(tmp_path)
    part = Embedding.load(tmp_path, only={"ids", "pcs", "elbow_k", "predicted"})
    assert part.latents is None and part.pcs_raw is None and part.probabilities is None
    assert (part.run_id, part.model, part.elbow_k) == ("r1", "cnn", 2)
    np.testing.assert_array_equal(part.ids, full.ids)
    np.testing.assert_array_equal(part.pcs, emb.pcs)
    np.testing.assert_array_equal(part.predicted, emb.predicted)
    np.testing.assert_array_equal(full.latents, emb.latents)
    assert full.meta["elbow_k"] == 2 and full.meta["n"] == n
