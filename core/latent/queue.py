"""The Inspect-next queue: unretired galaxies ranked by what the model most needs.

:func:`build_queue` ranks a workspace's galaxies for inspection:

1. **Source.** The active CNN run's embedding (its class probabilities, GMM clusters and the
   run's stored acquisition scores, :func:`compute_acquisition`). Without one — a real survey
   arrives without classes — the queue is a **cold start**: from the active CvAE run's map
   (its reconstruction error, spread across its GMM clusters) or, without any run, at random;
   :attr:`Queue.labels_missing` says how many decided consensus labels are still needed before
   the first CNN run (config ``queue.cold_start_labels``), which trains on consensus labels.
2. **Retirement** (:func:`retired_mask`), as Galaxy Zoo retires subjects: a galaxy leaves the
   queue once its consensus is decided (``votes.min_votes`` non-skip votes under the configured
   ``votes.method``, or an expert's vote) or, when ``queue.retire_confidence`` is set, once the
   model's probability of its class reaches that value and at least ``queue.retire_votes``
   non-skip votes agree with it (none disagreeing). Retired galaxies stay votable by hand.
3. **Scores** by strategy (:data:`core.latent.acquisition.STRATEGIES`): ``bald`` (MC dropout,
   stored with the run), ``entropy`` and ``margin`` (the embedding's deterministic
   probabilities), ``disagreement`` (the entropy of the current votes, read live from the
   store: it changes with every vote), ``random`` (seeded by ``queue.seed``).
4. **Diversity** (:func:`core.latent.acquisition.diverse_order`, ``queue.diversity``) across the
   run's GMM clusters; ``random`` is not reordered.

BALD costs ``T`` forward passes per galaxy (``queue.mc_passes``, default 20), so
:func:`compute_acquisition` scores only the unretired galaxies and, when more than
``queue.pool_size`` of them (default 20,000) remain, only the ``pool_size`` of highest predictive
entropy — one deterministic pass, which the embedding already holds. Galaxies outside the pool
keep a NaN BALD score and rank after every scored one. :func:`core.latent.embed.embed_run`
calls it for every run it embeds (so the scores are recomputed after each retrain) and writes
``acquisition.npz`` beside ``embedding.npz``; above ``embed.dask_threshold`` pool galaxies the
passes run chunk-wise on Dask.

**Scores after the map.** The refreshed map of a retrain must not wait for the T passes, so
:func:`core.latent.embed.embed_run` first marks the run's scores as pending
(:func:`mark_acquisition_pending`: ``acquisition.pending``, the scoring process's id, and any
older ``acquisition.npz`` removed), writes the embedding (the map), and only then scores.
While they are pending (:func:`acquisition_status`) :func:`build_queue` never waits for them nor
reads old ones: it ranks a BALD queue by the embedding's predictive entropy (the deterministic
pass of the same run), and says so (:attr:`Queue.scores_pending`, ``note``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ResxError
from core.labels import CLASSES
from core.latent.acquisition import (
    STRATEGIES,
    bald,
    diverse_order,
    margin_score,
    mc_dropout_probabilities,
    predictive_entropy,
    vote_entropy,
)

__all__ = ["ACQUISITION_NPZ", "ACQUISITION_PENDING", "Queue", "QueueError", "acquisition_status",
           "active_probabilities", "build_queue", "compute_acquisition", "load_acquisition",
           "mark_acquisition_pending", "retired_mask"]

log = logging.getLogger(__name__)

#: The acquisition scores of a run, beside its ``embedding.npz``.
ACQUISITION_NPZ = "acquisition.npz"
#: Present while a process computes a run's acquisition scores (JSON: pid, host, started).
ACQUISITION_PENDING = "acquisition.pending"

PREPPED = ("ok", "flagged")


class QueueError(ResxError, ValueError):
    """A queue that cannot be built (unknown strategy, a workspace without prepared galaxies)."""


@dataclass
class Queue:
    """A ranked batch of galaxies to inspect next.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per queued galaxy, in queue order: ``rank`` (1-based, counting from the start
        of the queue, not of this batch), ``id``, ``row`` (catalog row), ``score``, ``cluster``.
    strategy : str
        The ranking used (may differ from the one asked for: see ``note``).
    source : str
        Where the scores come from, in words (``"CNN run cnn-1"``, ``"cold start: CvAE run ..."``).
    cold_start : bool
        No CNN run yet.
    labels_missing : int
        Decided consensus labels still needed before the first CNN run (0 when enough).
    n_candidates, n_retired : int
        Unretired and retired galaxies among those the source covers.
    note : str
        Why the strategy differs from the one asked for, if it does.
    scores : pandas.Series
        The score of every candidate (index: catalog row), for colouring the map.
    scores_pending : bool
        The run's stored scores (BALD, or a CvAE's reconstruction error) are still being
        computed: the queue is ranked by a stand-in (``strategy``, ``note`` say which).
    """

    table: pd.DataFrame
    strategy: str
    source: str
    cold_start: bool
    labels_missing: int
    n_candidates: int
    n_retired: int
    note: str = ""
    scores: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    scores_pending: bool = False

    def to_text(self) -> str:
        """What ``resx queue`` prints."""
        head = (f"queue ({self.strategy}, {self.source}): {len(self.table)} of {self.n_candidates} unretired "
                f"galaxies ({self.n_retired} retired)")
        lines = [head]
        if self.note:
            lines.append(f"note: {self.note}")
        if self.cold_start and self.labels_missing:
            lines.append(f"cold start: {self.labels_missing} more decided consensus labels are needed before "
                         "training the first CNN (`resx train WORKSPACE --model cnn --labels consensus --embed`)")
        if len(self.table):
            lines.append(self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Retirement
# ----------------------------------------------------------------------------------------
def retired_mask(consensus: pd.DataFrame, probabilities: np.ndarray | None = None, *,
                 retire_confidence: float | None = None, retire_votes: int = 1) -> np.ndarray:
    """Which galaxies have left the queue.

    Parameters
    ----------
    consensus : pandas.DataFrame
        A consensus table (``label``, ``n_votes`` and one count column per class, as from
        :func:`core.votes.methods.compute_consensus` or the store).
    probabilities : ndarray, shape (len(consensus), 5), optional
        The model's class probabilities per row (NaN rows where it has none).
    retire_confidence : float, optional
        Also retire a galaxy whose most probable class has at least this probability and whose
        non-skip votes include at least ``retire_votes`` for that class and none for another.
    retire_votes : int

    Returns
    -------
    ndarray of bool, shape (len(consensus),)
    """
    from core.votes.consensus import UNDECIDED

    retired = (consensus["label"].astype(str) != UNDECIDED).to_numpy().copy()
    if retire_confidence is not None and probabilities is not None and len(consensus):
        p = np.asarray(probabilities, dtype=float)
        ok = np.isfinite(p).all(axis=1)
        top = np.where(ok, np.nan_to_num(p).argmax(axis=1), -1)
        conf = np.where(ok, np.nan_to_num(p).max(axis=1), 0.0)
        counts = consensus[list(CLASSES)].to_numpy()
        n_votes = consensus["n_votes"].to_numpy()
        agree = np.where(top >= 0, counts[np.arange(len(counts)), np.maximum(top, 0)], 0)
        retired |= (conf >= float(retire_confidence)) & (agree >= int(retire_votes)) & (agree == n_votes)
    return retired


# ----------------------------------------------------------------------------------------
# Stored scores
# ----------------------------------------------------------------------------------------
def mark_acquisition_pending(run_dir: str | Path) -> None:
    """Say that this process is about to compute the run's acquisition scores.

    Writes ``acquisition.pending`` (this process's id, host and the time) and removes any older
    ``acquisition.npz`` of the run, so that until :func:`compute_acquisition` has written the new
    scores no queue reads old ones (:func:`acquisition_status` is ``"pending"``).

    Parameters
    ----------
    run_dir : str or Path
    """
    import json
    import os
    import socket

    run_dir = Path(run_dir)
    tmp = run_dir / (ACQUISITION_PENDING + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S")}))
    tmp.replace(run_dir / ACQUISITION_PENDING)
    (run_dir / ACQUISITION_NPZ).unlink(missing_ok=True)


def _pending_record(run_dir: Path) -> dict[str, Any] | None:
    import json

    try:
        return json.loads((run_dir / ACQUISITION_PENDING).read_text())
    except (OSError, ValueError):
        return None


def acquisition_status(run_dir: str | Path) -> str:
    """``"ready"`` (``acquisition.npz`` written), ``"pending"`` (a live process is computing it) or
    ``"missing"`` (neither: never computed, or its process died before it finished).

    Parameters
    ----------
    run_dir : str or Path

    Returns
    -------
    str
    """
    import os
    import socket

    run_dir = Path(run_dir)
    rec = _pending_record(run_dir)
    if rec is not None:
        if rec.get("host") != socket.gethostname():
            return "pending"  # another machine's process: cannot be checked, trust the marker
        try:
            os.kill(int(rec["pid"]), 0)
            return "pending"
        except ProcessLookupError:
            pass  # died while scoring
        except PermissionError:
            return "pending"  # alive, another user's
        except (KeyError, TypeError, ValueError):
            pass
    return "ready" if (run_dir / ACQUISITION_NPZ).exists() else "missing"


def _clear_pending(run_dir: Path) -> None:
    """Remove this process's ``acquisition.pending`` (another live process's marker stays)."""
    import os

    rec = _pending_record(run_dir)
    if rec is not None and rec.get("pid") == os.getpid():
        (run_dir / ACQUISITION_PENDING).unlink(missing_ok=True)


def load_acquisition(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """A run's ``acquisition.npz`` (``ids``, ``entropy``, ``margin``, ``bald``, ``recon_error``...), or None."""
    path = Path(run_dir) / ACQUISITION_NPZ
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _queue_config(ws, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    from core.workspace.config import DEFAULT_CONFIG

    return {**DEFAULT_CONFIG["queue"], **ws.config.get("queue", {}), **(overrides or {})}


_MODELS: dict[str, Any] = {}


def load_model_cached(path: str):
    """A saved ``model.keras`` (loaded once per process; the custom layers registered)."""
    import keras

    import core.learn.models  # noqa: F401  (registers the custom layers)

    path = str(path)
    if path not in _MODELS:
        _MODELS[path] = keras.models.load_model(path, compile=False)
    return _MODELS[path]


def _mc_bald_chunk(stamps_path: str, model_path: str, rows: np.ndarray, config: dict, passes: int, seed: int,
                   batch_size: int) -> np.ndarray:
    from core.io.stamps import StampStore
    from core.latent.inference import _scaled

    store = StampStore.open(stamps_path, mode="r")
    x = _scaled(store.read("object_only", rows=rows), config)
    return bald(mc_dropout_probabilities(load_model_cached(model_path), x, passes, seed=seed,
                                         batch_size=batch_size)).astype(np.float32)


def compute_acquisition(ws, run_id: str, *, store=None, scheduler: Any = None,
                        overrides: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Acquisition scores of a run's embedded galaxies; written to ``runs/<run>/acquisition.npz``.

    CNN runs: ``entropy`` and ``margin`` of the embedding's probabilities for every galaxy, and
    ``bald`` (``queue.mc_passes`` MC-dropout passes) for the pool of unretired galaxies (at most
    ``queue.pool_size``, those of highest entropy; NaN outside it). CvAE runs:
    ``recon_error``, the mean squared error of the reconstruction from the encoder mean (the
    cold-start score). Pool galaxies beyond ``embed.dask_threshold`` (or with ``scheduler``)
    are scored chunk-wise on Dask.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace
    run_id : str
        An embedded run.
    store : core.votes.store.VoteStore, optional
        For retirement (default: the workspace's store).
    scheduler : str or distributed.Client, optional
        A ``dask.distributed`` cluster (:func:`core.parallel.run_tasks`).
    overrides : dict, optional
        ``queue`` settings overriding the workspace's.

    Returns
    -------
    dict of str to ndarray
    """
    run_dir = ws.run_dir(run_id)
    try:
        return _compute_acquisition(ws, run_id, run_dir, store, scheduler, overrides)
    finally:
        _clear_pending(run_dir)  # written or failed: no longer pending (a failure leaves "missing")


def _compute_acquisition(ws, run_id: str, run_dir: Path, store, scheduler: Any,
                         overrides: dict[str, Any] | None) -> dict[str, np.ndarray]:
    from core.latent.embedding import Embedding
    from core.latent.inference import _scaled
    from core.workspace.config import read_config

    qc = _queue_config(ws, overrides)
    emb = Embedding.load(run_dir, only=["ids", "rows", "probabilities", "model"])
    config = read_config(run_dir / "config.toml") if (run_dir / "config.toml").exists() else ws.config
    ec = {**ws.config.get("embed", {}), **config.get("embed", {})}
    ids = np.asarray(emb.ids).astype(str)
    rows = np.asarray(emb.rows, dtype=np.int64)
    out: dict[str, np.ndarray] = {"ids": ids}
    meta: dict[str, Any] = {"run": run_id}
    model_path = run_dir / "model.keras"
    t0 = time.perf_counter()
    if emb.model == "cnn" and emb.probabilities is not None:
        probs = np.asarray(emb.probabilities, dtype=np.float64)
        out["entropy"] = predictive_entropy(probs).astype(np.float32)
        out["margin"] = margin_score(probs).astype(np.float32)
        bald_scores = np.full(len(ids), np.nan, dtype=np.float32)
        if model_path.exists():
            retired = _retired_for(ws, ids, probs, qc, store)
            cand = np.flatnonzero(~retired)
            pool_size = int(qc["pool_size"])
            if len(cand) > pool_size:
                order = np.lexsort((cand, -out["entropy"][cand]))
                cand = np.sort(cand[order[:pool_size]])
            passes, seed = int(qc["mc_passes"]), int(qc["seed"])
            batch = int(ec.get("batch_size", 256))
            if len(cand):
                if len(cand) > int(ec.get("dask_threshold", 50000)) or scheduler:
                    bald_scores[cand] = _bald_on_dask(ws, model_path, rows[cand], config, passes, seed, batch,
                                                      scheduler)
                else:
                    x = _scaled(ws.stamps().read("object_only", rows=rows[cand]), config)
                    mc = mc_dropout_probabilities(load_model_cached(str(model_path)), x, passes, seed=seed,
                                                  batch_size=batch)
                    bald_scores[cand] = bald(mc)
            meta.update(mc_passes=passes, pool=int(len(cand)), seed=seed)
        out["bald"] = bald_scores
    elif emb.model == "cvae" and model_path.exists():
        out["recon_error"] = _recon_error(ws, model_path, rows, config, int(ec.get("batch_size", 256)))
    meta["seconds"] = round(time.perf_counter() - t0, 3)
    out["meta"] = np.array(str(meta))
    tmp = run_dir / (ACQUISITION_NPZ + ".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(run_dir / ACQUISITION_NPZ)
    log.info("acquisition scores of run %s: %s", run_id, meta)
    return out


def _bald_on_dask(ws, model_path: Path, rows: np.ndarray, config: dict, passes: int, seed: int, batch: int,
                  scheduler: Any) -> np.ndarray:
    """BALD of ``rows`` (increasing), one Dask task per stamp chunk (:func:`core.parallel.run_tasks`,
    as the latent inference); chunk ``c`` is seeded by ``(seed, c)``, so the scores do not depend on
    the scheduler."""
    import os

    from core.parallel import is_distributed, run_tasks

    chunk = ws.stamps().chunk
    stamps_path, model_path = os.path.abspath(ws.stamps_path), os.path.abspath(model_path)
    tasks = []
    for start in range(0, int(rows.max()) + 1 if len(rows) else 0, chunk):
        sel = rows[(rows >= start) & (rows < start + chunk)]
        if len(sel):
            tasks.append((stamps_path, model_path, sel, config, passes, seed * 1_000_003 + start // chunk, batch))
    distributed = is_distributed(scheduler)
    parts = run_tasks(_mc_bald_chunk, tasks, scheduler=scheduler if distributed else "threads", progress=False,
                      desc="BALD", unit="galaxy", weights=[len(t[2]) for t in tasks],
                      shared=[stamps_path, model_path] if distributed else ())
    return np.concatenate(parts) if parts else np.empty(0, np.float32)


def _recon_error(ws, model_path: Path, rows: np.ndarray, config: dict, batch: int) -> np.ndarray:
    from core.latent.inference import _scaled
    from core.learn.backend import quiet_tensorflow

    model = load_model_cached(str(model_path))
    out = np.empty(len(rows), dtype=np.float32)
    store = ws.stamps()
    step = 4096
    for start in range(0, len(rows), step):
        x = _scaled(store.read("object_only", rows=rows[start:start + step]), config)
        with quiet_tensorflow():
            rec = model.predict(x, batch_size=batch, verbose=0)
        out[start:start + step] = ((np.asarray(rec) - x) ** 2).mean(axis=(1, 2, 3))
    return out


# ----------------------------------------------------------------------------------------
# The queue
# ----------------------------------------------------------------------------------------
def _embedding_if_any(ws, run_id: str | None, fields: list[str]):
    from core.latent.embedding import Embedding, EmbeddingError

    if not run_id:
        return None
    try:
        return Embedding.load(ws.run_dir(run_id), only=fields)
    except (EmbeddingError, OSError, ValueError):
        return None


def active_probabilities(ws, ids) -> np.ndarray | None:
    """The active CNN run's class probabilities aligned to ``ids`` (NaN rows where absent); None without one."""
    emb = _embedding_if_any(ws, ws.active_run("cnn"), ["ids", "probabilities"])
    if emb is None or emb.probabilities is None:
        return None
    pos = pd.Index(np.asarray(emb.ids).astype(str)).get_indexer(np.asarray(ids).astype(str))
    out = np.full((len(pos), len(CLASSES)), np.nan)
    out[pos >= 0] = np.asarray(emb.probabilities)[pos[pos >= 0]]
    return out


def _consensus_for(ws, ids: np.ndarray, probs: np.ndarray | None, store=None, method: str | None = None):
    """The consensus of ``ids`` (in that order) by the configured method."""
    from core.votes.methods import store_consensus
    from core.votes.store import open_store

    own = store is None
    store = store or open_store(ws)
    try:
        sid = np.asarray(store.galaxy_ids()).astype(str)
        pos = pd.Index(sid).get_indexer(ids)
        p_store = None
        if probs is not None:
            p_store = np.full((len(sid), len(CLASSES)), np.nan)
            p_store[pos[pos >= 0]] = probs[pos >= 0]
        res = store_consensus(store, method, model_probabilities=p_store)
    finally:
        if own:
            store.close()
    table = res.table.set_index(res.table["id"].astype(str)).reindex(ids)
    table["label"] = table["label"].fillna("undecided")
    counts = [c for c in table.columns if c not in ("id", "label", "confidence", "expert")]
    table[counts] = table[counts].fillna(0)
    table["id"] = ids
    return table.reset_index(drop=True)


def _retired_for(ws, ids: np.ndarray, probs: np.ndarray | None, qc: dict[str, Any], store=None) -> np.ndarray:
    cons = _consensus_for(ws, ids, probs, store)
    return retired_mask(cons, probs, retire_confidence=qc.get("retire_confidence"),
                        retire_votes=int(qc.get("retire_votes", 1)))


def build_queue(ws, strategy: str | None = None, n: int | None = None, *, offset: int = 0, store=None,
                method: str | None = None, overrides: dict[str, Any] | None = None) -> Queue:
    """Rank the unretired galaxies for inspection (see the module docstring).

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace
    strategy : str, optional
        One of :data:`core.latent.acquisition.STRATEGIES` (default ``queue.strategy``).
    n : int, optional
        Galaxies in the batch (default ``queue.n``).
    offset : int
        Skip this many galaxies of the queue first (the next batch: ``offset = n``, ...).
    store : core.votes.store.VoteStore, optional
        The vote store (default: the workspace's).
    method : str, optional
        Consensus method for retirement (default ``votes.method``).
    overrides : dict, optional
        ``queue`` settings overriding the workspace's.

    Returns
    -------
    Queue
    """
    qc = _queue_config(ws, overrides)
    strategy = strategy or qc["strategy"]
    if strategy not in STRATEGIES:
        raise QueueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    n = int(qc["n"] if n is None else n)
    if n < 0 or offset < 0:
        raise QueueError("n and offset must be >= 0")
    cat = ws.read_catalog()
    cat_ids = np.asarray(cat["id"]).astype(str)
    row_of = pd.Index(cat_ids)
    cnn_run, cvae_run = ws.active_run("cnn"), ws.active_run("cvae")
    cnn = _embedding_if_any(ws, cnn_run, ["ids", "probabilities", "gmm_labels"])
    note = ""
    if cnn is not None and cnn.probabilities is not None:
        emb, run_id, cold = cnn, cnn_run, False
        source = f"CNN run {cnn_run}"
    else:
        emb = _embedding_if_any(ws, cvae_run, ["ids", "gmm_labels"])
        run_id, cold = (cvae_run if emb is not None else None), True
        source = f"cold start: CvAE run {cvae_run}" if emb is not None else "cold start: no run, at random"
    if emb is not None:
        ids = np.asarray(emb.ids).astype(str)
        rows = row_of.get_indexer(ids)
        keep = rows >= 0
        ids, rows = ids[keep], rows[keep]
        clusters = np.asarray(emb.gmm_labels)[keep] if emb.gmm_labels is not None else None
        probs = np.asarray(emb.probabilities, dtype=float)[keep] if not cold else None
    else:
        status = np.asarray(cat["prep_status"]).astype(str) if "prep_status" in cat.colnames else None
        rows = np.flatnonzero(np.isin(status, PREPPED)) if status is not None else np.arange(len(cat))
        ids, clusters, probs = cat_ids[rows], None, None
    if len(ids) == 0:
        raise QueueError(f"no prepared galaxies in {ws.root}: run `resx prep` first")
    cons = _consensus_for(ws, ids, probs, store, method)
    retired = retired_mask(cons, probs, retire_confidence=qc.get("retire_confidence"),
                           retire_votes=int(qc.get("retire_votes", 1)))
    n_decided = int(cons["label"].isin(CLASSES).sum())
    labels_missing = max(0, int(qc["cold_start_labels"]) - n_decided) if cold else 0

    rng = np.random.default_rng(np.random.SeedSequence([int(qc["seed"]), 7]))
    used = strategy
    # scores being computed (a retrain's map shown before them): never waited for, never old ones
    pending = bool(run_id) and acquisition_status(ws.run_dir(run_id)) == "pending"
    stored = load_acquisition(ws.run_dir(run_id)) if run_id and not pending else None
    if stored is not None and not np.array_equal(np.asarray(stored["ids"]).astype(str), np.asarray(emb.ids).astype(str)):
        stored = None  # written for another embedding of the run
    if stored is not None and emb is not None:
        stored = {k: (np.asarray(v)[keep] if np.ndim(v) == 1 and len(v) == len(keep) else v) for k, v in stored.items()}
    if strategy == "random":
        scores = rng.random(len(ids))
    elif strategy == "disagreement":
        from core.votes.methods import JUDGMENT_LABELS

        scores = vote_entropy(cons[list(JUDGMENT_LABELS)].to_numpy(dtype=float))
    elif cold:
        if stored is not None and "recon_error" in stored:
            scores, used = np.asarray(stored["recon_error"], dtype=float), "reconstruction error"
        else:
            scores, used = rng.random(len(ids)), "random"
        note = (f"{strategy} needs a CNN run; cold start ranks by {used}"
                + (" across the CvAE map's GMM clusters" if clusters is not None else ""))
        if pending:
            note += f" while the reconstruction errors of run {run_id} are being computed (scores updating)"
    elif strategy in ("entropy", "margin"):
        scores = predictive_entropy(probs) if strategy == "entropy" else margin_score(probs)
    elif pending:  # bald, its scores not written yet: the same run's deterministic entropy meanwhile
        scores, used = predictive_entropy(probs), "entropy"
        note = (f"scores updating: the BALD scores of run {run_id} are being computed; ranked by entropy "
                "until they are ready (Inspect next again then)")
    else:  # bald
        if stored is None or "bald" not in stored or not np.isfinite(stored["bald"]).any():
            if (ws.run_dir(run_id) / "model.keras").exists():
                full = compute_acquisition(ws, run_id, store=store, overrides=overrides)
                stored = {k: (np.asarray(v)[keep] if np.ndim(v) == 1 and len(v) == len(keep) else v)
                          for k, v in full.items()}
            else:
                stored = None
        if stored is not None:
            scores = np.asarray(stored["bald"], dtype=float)
        else:
            scores, used = predictive_entropy(probs), "entropy"
            note = f"run {run_id} has no model.keras for MC dropout; ranked by entropy"
    scores = np.asarray(scores, dtype=float)
    cand = np.flatnonzero(~retired)
    div = 0.0 if strategy == "random" else float(qc["diversity"])
    order = diverse_order(scores[cand], None if clusters is None else clusters[cand], offset + n, div)
    pick = cand[order[offset:]]
    table = pd.DataFrame({
        "rank": np.arange(offset + 1, offset + 1 + len(pick)),
        "id": ids[pick], "row": rows[pick], "score": scores[pick],
        "cluster": (clusters[pick].astype(int) if clusters is not None else np.full(len(pick), -1)),
    })
    return Queue(table=table, strategy=used, source=source, cold_start=cold, labels_missing=labels_missing,
                 n_candidates=int(len(cand)), n_retired=int(retired.sum()), note=note,
                 scores=pd.Series(np.where(retired, np.nan, scores), index=pd.Index(rows, name="row")),
                 scores_pending=pending and strategy not in ("random", "disagreement") and (cold or strategy == "bald"))
