"""A small fabricated workspace for the dashboard's tests and benchmarks.

Written through the engine's own writers (``core.workspace.workspace``, ``core.io.stamps.StampStore``,
``core.latent.embedding.Embedding.save``) so the dashboard reads exactly the formats the engine writes,
but with no training: the "runs" are made-up embeddings whose PCs are clusters, one per class,
so a lasso on a cluster selects galaxies of one class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from astropy.table import Table

from core.labels import CLASSES
from core.workspace.workspace import Workspace

#: Cluster centres in PC1–PC2, one per class (CLASSES order).
CENTRES = np.array([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0], [0.0, -4.0], [0.0, 0.0]])


def make_catalog(n: int, seed: int = 0) -> Table:
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, len(CLASSES), n)
    t = Table()
    t["id"] = np.array([f"G{i:07d}" for i in range(n)])
    t["field"] = np.array(["MOCK"] * n)
    t["ra"] = 53.0 + rng.random(n) * 0.1
    t["dec"] = -27.8 + rng.random(n) * 0.1
    t["z"] = 1.0 + 2.0 * rng.random(n)
    t["logmass"] = 9.5 + rng.random(n)
    t["hmag"] = 20.0 + 4.0 * rng.random(n)
    t["catalog_class"] = np.array(CLASSES, dtype=object)[cls].astype(str)
    t["fit_quality"] = np.zeros(n, dtype=bool)
    t["prep_status"] = np.array(["ok"] * n)
    t["sky_sigma"] = np.full(n, 0.01)
    t["spf"] = 10 ** (cls * 0.4 + rng.normal(0, 0.2, n))
    t["bumpiness"] = 10 ** (-2 + cls * 0.2 + rng.normal(0, 0.1, n))
    t["rff"] = 10 ** (-2 + cls * 0.3 + rng.normal(0, 0.1, n))
    t["split"] = np.where(rng.random(n) < 0.8, "train", "test")
    return t


def write_stamps(ws: Workspace, classes: np.ndarray, size: int = 24, seed: int = 0) -> None:
    from core.io.stamps import STAMP_KINDS, StampStore

    n = len(classes)
    rng = np.random.default_rng(seed)
    store = StampStore.create(ws.stamps_path, n=n, size=size, chunk=min(256, max(n, 1)))
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r2 = xx**2 + yy**2
    host = np.exp(-r2 / (2 * (size / 8) ** 2)).astype(np.float32)
    for start in range(0, n, store.chunk):
        m = min(store.chunk, n - start)
        c = classes[start:start + m]
        noise = rng.normal(0, 0.01, (m, size, size)).astype(np.float32)
        # residual substructure grows with the class index; the sign pattern makes it visible
        sub = (c[:, None, None] * 0.05 * np.sin(np.arctan2(yy, xx) * 2)[None] * host[None]).astype(np.float32)
        residual = noise + sub
        for kind in STAMP_KINDS:
            if kind == "original":
                arr = host[None] + residual
            elif kind == "model":
                arr = np.broadcast_to(host, (m, size, size)).copy()
            elif kind == "goi_mask":
                arr = np.broadcast_to(r2 < (size / 3) ** 2, (m, size, size)).astype(np.uint8)
            else:
                arr = residual
            store.write(kind, start, arr)


def write_run(ws: Workspace, run_id: str, model: str, classes: np.ndarray, ids: np.ndarray, seed: int = 0,
              init: str | None = None, flip: float = 0.1) -> None:
    """A finished run folder with run.json, evaluation.json and embedding.npz (no model)."""
    from core.latent.embedding import Embedding

    rng = np.random.default_rng(seed)
    n = len(ids)
    folder = ws.runs_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    pcs = np.zeros((n, 3))
    pcs[:, :2] = CENTRES[classes] + rng.normal(0, 0.7, (n, 2))
    pcs[:, 2] = rng.normal(0, 0.5, n)
    latents = rng.normal(0, 1, (n, 8)).astype(np.float32)
    k = 5
    gx = np.linspace(-7, 7, 60)
    gy = np.linspace(-7, 7, 60)
    X, Y = np.meshgrid(gx, gy)
    d = (X[..., None] - CENTRES[:, 0]) ** 2 + (Y[..., None] - CENTRES[:, 1]) ** 2
    svc_z = d.argmin(axis=-1).astype(np.int16)
    kw = {}
    if model == "cnn":
        predicted = np.where(rng.random(n) < flip, rng.integers(0, 5, n), classes)
        prob = rng.dirichlet(np.ones(5), n) * 0.3
        prob[np.arange(n), predicted] += 0.7
        kw = {"probabilities": prob.astype(np.float32), "predicted": predicted.astype(np.int64)}
    emb = Embedding(
        run_id=run_id, model=model, ids=np.asarray(ids).astype(str), rows=np.arange(n), latents=latents, pcs=pcs,
        pcs_raw=pcs.copy(), explained_variance=np.array([0.45, 0.25, 0.1]), ks=np.arange(1, 11),
        inertia=1000.0 / np.arange(1, 11) ** 1.2, elbow_k=k, gmm_labels=classes.astype(np.int64),
        gmm_means=CENTRES.copy(), gmm_covariances=np.stack([np.eye(2) * 0.5] * k), svc_x=gx, svc_y=gy,
        svc_z=svc_z, svc_kernel="rbf", svc_target="class", **kw)
    emb.save(folder)
    acc = float((kw["predicted"] == classes).mean()) if kw else None
    (folder / "run.json").write_text(json.dumps({
        "id": run_id, "model": model, "labels": "catalog", "status": "done", "created": "2025-01-01T00:00:00",
        "finished": "2025-01-01T00:10:00", "error": None, "init": init, "epochs": 3, "accuracy": acc,
        "recon_mse": None if model == "cnn" else 0.01}))
    cm = np.zeros((5, 5), dtype=int)
    if kw:
        np.add.at(cm, (classes, kw["predicted"]), 1)
    (folder / "evaluation.json").write_text(json.dumps({"accuracy": acc, "confusion_matrix": cm.tolist()}))


def make_workspace(root: str | Path, n: int = 300, seed: int = 0, size: int = 24, runs: bool = True,
                   stamps: bool | str = True) -> Workspace:
    """A workspace with ``n`` galaxies, stamps, and (``runs``) one CNN and one CvAE run, active.

    ``stamps="empty"`` creates the stamp store without writing it (every stamp reads as zeros):
    what the benchmarks at 10⁶ galaxies use to stay small on disk.
    """
    ws = Workspace.create(root, exist_ok=True)
    cat = make_catalog(n, seed)
    ws.write_catalog(cat)
    classes = np.array([CLASSES.index(c) for c in cat["catalog_class"]])
    if stamps == "empty":
        from core.io.stamps import StampStore

        StampStore.create(ws.stamps_path, n=n, size=size, chunk=4096)
    elif stamps:
        write_stamps(ws, classes, size=size, seed=seed)
    if runs:
        write_run(ws, "cnn-a", "cnn", classes, cat["id"], seed=seed)
        write_run(ws, "cvae-a", "cvae", classes, cat["id"], seed=seed + 1)
        ws.set_active_run("cnn", "cnn-a")
        ws.set_active_run("cvae", "cvae-a")
    return ws
