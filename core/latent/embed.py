"""A run's latent analysis end to end: latents of every prepared galaxy, :class:`~core.latent.analysis.LatentAnalysis`, the files.

:func:`embed_run` computes the 512-d latents of every prepared galaxy (``prep_status`` ok or
flagged; :func:`core.latent.inference.extract_latents`), runs
:class:`core.latent.analysis.LatentAnalysis` (aligned to the model's previous run), and writes
``embedding.npz`` and ``embedding.json`` into the run folder;
:func:`core.latent.embedding.load_embedding` reads them back. It then computes the run's
acquisition scores for the Inspect-next queue (:func:`core.latent.queue.compute_acquisition`:
entropy, margin and MC-dropout BALD for a CNN, reconstruction error for a CvAE) into
``acquisition.npz``, so every retrain (``resx train --embed``) refreshes them. The scores are
marked pending (:func:`core.latent.queue.mark_acquisition_pending`) before the embedding is
written, so a queue built between the two never reads the run's older scores; with
``acquisition=False`` the caller scores later (:func:`score_run`: the retrain shows its map
first).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from core.labels import CLASSES
from core.latent.analysis import PREPPED, LatentAnalysis
from core.latent.embedding import EMBEDDING_NPZ, Embedding, EmbeddingError
from core.latent.inference import extract_latents
from core.learn.runs import read_run

__all__ = ["embed_run", "score_run"]

log = logging.getLogger(__name__)


def _reference_run(ws, run_id: str, model: str) -> str | None:
    """The run to align to: the active run of the same model if embedded, else the newest
    earlier embedded done run of that model."""
    from core.learn.runs import list_runs

    runs = [r for r in list_runs(ws) if r.model == model and r.id != run_id and r.status == "done"
            and (r.path / EMBEDDING_NPZ).exists()]
    active = ws.active_run(model)
    for r in runs:
        if r.id == active:
            return r.id
    this = next((r for r in list_runs(ws) if r.id == run_id), None)
    earlier = [r for r in runs if this is None or r.created <= this.created]
    return earlier[-1].id if earlier else (runs[-1].id if runs else None)


def _run_labels(run_dir: Path, ids: np.ndarray) -> np.ndarray:
    """Class index per galaxy from the run's ``labels.csv`` (train split only; −1 elsewhere)."""
    import pandas as pd

    y = np.full(len(ids), -1, dtype=np.int64)
    path = run_dir / "labels.csv"
    if not path.exists():
        return y
    table = pd.read_csv(path, dtype={"id": str, "label": str, "split": str}, keep_default_na=False)
    train = table[(table["split"] == "train") & table["label"].isin(CLASSES)]
    index = {c: i for i, c in enumerate(CLASSES)}
    lookup = dict(zip(train["id"], train["label"].map(index)))
    for i, gid in enumerate(ids):
        y[i] = lookup.get(gid, -1)
    return y


def embed_run(ws, run_id: str, *, scheduler: str | None = None, acquisition: bool = True) -> Embedding:
    """Latents + latent analysis of a finished run; writes ``embedding.npz``/``.json`` there.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace
    run_id : str
    scheduler : str, optional
        A ``dask.distributed`` scheduler address for the latent inference.
    acquisition : bool
        Compute the run's acquisition scores too (:func:`score_run`). When False they are left
        pending (``acquisition.pending``, this process's id) for this process to compute next:
        a queue meanwhile ranks by a stand-in and says so.

    Returns
    -------
    Embedding
    """
    from core.workspace.config import read_config
    from core.workspace.workspace import WorkspaceError

    info = read_run(ws, run_id)
    run_dir = info.path
    model_path = run_dir / "model.keras"
    if not model_path.exists():
        raise EmbeddingError(f"{model_path} is missing: run {run_id} has no trained model")
    config = read_config(run_dir / "config.toml") if (run_dir / "config.toml").exists() else ws.config
    ec = {**ws.config.get("embed", {}), **config.get("embed", {})}

    cat = ws.read_catalog()
    status = np.asarray(cat["prep_status"]).astype(str) if "prep_status" in cat.colnames else None
    rows = np.flatnonzero(np.isin(status, PREPPED)) if status is not None else np.arange(len(cat))
    if len(rows) < 2:
        raise WorkspaceError(f"only {len(rows)} prepared galaxies in {ws.root}: run `resx prep` first")
    ids = np.asarray(cat["id"]).astype(str)[rows]

    t0 = time.perf_counter()
    latents, probs = extract_latents(ws, model_path, rows, config, batch_size=int(ec.get("batch_size", 256)),
                                     dask_threshold=int(ec.get("dask_threshold", 50000)), scheduler=scheduler)
    t_infer = time.perf_counter() - t0

    reference, ref_id = None, ""
    if ec.get("align", True):
        ref_id = _reference_run(ws, run_id, info.model) or ""
        if ref_id:
            ref = Embedding.load(ws.run_dir(ref_id))
            pos = {g: i for i, g in enumerate(ref.ids.astype(str))}
            reference = np.full((len(ids), ref.pcs.shape[1]), np.nan)
            for i, g in enumerate(ids):
                j = pos.get(g)
                if j is not None:
                    reference[i] = ref.pcs[j]
    t1 = time.perf_counter()
    kernel = ec.get(f"svc_kernel_{info.model}", "rbf" if info.model == "cnn" else "linear")
    analysis = LatentAnalysis(
        n_components=int(ec.get("n_components", 3)), k_max=int(ec.get("k_max", 15)),
        cluster_dims=int(ec.get("cluster_dims", 2)), svc_kernel=kernel,
        svc_gamma=float(ec.get("svc_gamma", 0.7)), svc_c=float(ec.get("svc_c", 1.0)),
        svc_target=ec.get("svc_target", "labels"), svc_max_train=int(ec.get("svc_max_train", 5000)),
        grid=int(ec.get("grid", 300)), random_state=int(ec.get("seed", 0)),
    )
    if reference is not None and reference.shape[1] != int(ec.get("n_components", 3)):
        reference = None
    analysis.fit(latents, _run_labels(run_dir, ids), reference=reference)
    t_analysis = time.perf_counter() - t1

    emb = Embedding(
        run_id=run_id, model=info.model, ids=ids, rows=rows, latents=latents,
        pcs=analysis.pcs_.astype(np.float32), pcs_raw=analysis.pcs_raw_.astype(np.float32),
        explained_variance=analysis.explained_variance_, ks=analysis.elbow_.ks_,
        inertia=analysis.elbow_.inertia_, elbow_k=analysis.elbow_.k_, gmm_labels=analysis.gmm_labels_,
        gmm_means=analysis.gmm_.means_, gmm_covariances=analysis.gmm_.covariances_,
        svc_x=analysis.grid_x_, svc_y=analysis.grid_y_, svc_z=analysis.grid_z_,
        svc_kernel=kernel, svc_target=analysis.svc_target_,
        rotation=None if analysis.alignment_ is None else analysis.alignment_.rotation_,
        aligned_to=ref_id if analysis.alignment_ is not None else "",
        probabilities=probs, predicted=None if probs is None else probs.argmax(axis=1).astype(np.int16),
        meta={"inference_s": round(t_infer, 3), "analysis_s": round(t_analysis, 3),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    from core.latent.queue import mark_acquisition_pending

    mark_acquisition_pending(run_dir)  # before the new map: no queue reads the run's older scores
    emb.save(run_dir)
    log.info("embedded %d galaxies of run %s (inference %.1f s, analysis %.1f s)",
             len(ids), run_id, t_infer, t_analysis)
    if acquisition:
        score_run(ws, run_id, scheduler=scheduler)
    return emb


def score_run(ws, run_id: str, *, scheduler: str | None = None) -> bool:
    """The run's acquisition scores (:func:`core.latent.queue.compute_acquisition`), stored beside the
    embedding; a failure is logged, never raised (the map is usable without them; ``resx queue``
    recomputes them).

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace
    run_id : str
    scheduler : str, optional
        A ``dask.distributed`` scheduler address for the MC-dropout passes.

    Returns
    -------
    bool
        Whether the scores were written.
    """
    from core.latent.queue import compute_acquisition

    t0 = time.perf_counter()
    try:
        compute_acquisition(ws, run_id, scheduler=scheduler)
    except Exception as exc:  # noqa: BLE001 - the map is usable without the queue's scores
        log.warning("acquisition scores of run %s not computed: %s", run_id, exc)
        return False
    log.info("acquisition scores of run %s in %.1f s", run_id, time.perf_counter() - t0)
    return True
