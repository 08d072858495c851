"""The galaxies a run trains and tests on: labels (catalog or consensus), stamps, the split.

Labels (``source=``):

* ``"catalog"`` — the catalog's ``catalog_class`` column;
* ``"consensus"`` — the inspectors' consensus (:meth:`core.votes.store.VoteStore.consensus`);
  ``undecided``, ``Skip`` and ``FitQuality`` are never trained on (a FitQuality consensus
  also excludes the galaxy from the test set).

The train/test split is the catalog's ``split`` column (``resx prep`` stores it: 80/20,
stratified by catalog class, fit-quality excluded), so a retrain on consensus labels is tested
on the same held-out galaxies as the catalog run; a workspace without that column gets
:func:`core.learn.augment.split_sample` on the chosen labels. Only galaxies whose ``prep_status`` is
ok or flagged are used.

Early stopping (:mod:`core.learn.training`) watches the loss on a *validation split* carved from
the training galaxies by :func:`validation_split` (``train.validation_fraction`` of each class,
seeded): the test split is never looked at before the final evaluation. ``role`` says what each
galaxy is used for: ``"fit"`` (the gradient steps), ``"validation"`` or ``"test"``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ResxError
from core.labels import CLASSES, FIT_QUALITY
from core.workspace.workspace import Workspace

__all__ = ["LABEL_SOURCES", "PREPPED", "TrainingData", "TrainingError", "load_training_data", "training_labels",
           "validation_split"]

log = logging.getLogger(__name__)

PREPPED = ("ok", "flagged")
LABEL_SOURCES = ("catalog", "consensus")


class TrainingError(ResxError, RuntimeError):
    """Training could not start or did not finish (the run folder records why)."""


@dataclass
class TrainingData:
    """The galaxies a run trains and tests on.

    ``rows`` are catalog rows; ``labels`` the class names (:data:`core.labels.CLASSES`);
    ``split`` ``"train"`` or ``"test"``; ``images`` the scaled object-only stamps
    ``(n, S, S)`` float32 in [-1, 1]. ``provenance`` goes to ``labels.json``.
    """

    ids: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    images: np.ndarray
    provenance: dict[str, Any]
    role: np.ndarray | None = None

    def part(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Images and labels of ``"train"`` / ``"test"`` (the split), or ``"fit"`` / ``"validation"``
        (the training galaxies' roles after :meth:`carve_validation`; without it every training
        galaxy is ``"fit"``)."""
        if which in ("fit", "validation"):
            role = self.role if self.role is not None else np.where(self.split == "train", "fit", self.split)
            m = role == which
        else:
            m = self.split == which
        return self.images[m], self.labels[m]

    def carve_validation(self, fraction: float, seed: int) -> int:
        """Hold out ``fraction`` of each class's training galaxies as the validation split.

        Sets :attr:`role` and the provenance (``n_validation``, ``counts["validation"]``); returns
        the number of validation galaxies (0 when the training set is too small to spare one).
        """
        val = validation_split(self.labels, self.split == "train", fraction, seed)
        self.role = np.where(self.split == "train", np.where(val, "validation", "fit"), self.split)
        self.provenance["n_validation"] = int(val.sum())
        self.provenance.setdefault("counts", {})["validation"] = {
            c: int(np.sum(val & (self.labels == c))) for c in CLASSES}
        return int(val.sum())


def validation_split(labels: np.ndarray, train: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded, stratified validation subset of the training galaxies.

    Parameters
    ----------
    labels : (n,) array of str
        Class of each galaxy.
    train : (n,) bool array
        The training galaxies (the only candidates).
    fraction : float
        Share of each class held out, rounded per class; a class keeps at least one galaxy to fit
        on (a class of one galaxy gives none to validation).
    seed : int
        The same seed, labels and training set give the same split.

    Returns
    -------
    (n,) bool array
        True for the validation galaxies.

    Examples
    --------
    >>> int(validation_split(np.array(["Clean"] * 10), np.ones(10, bool), 0.2, 0).sum())
    2
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), not {fraction}")
    labels = np.asarray(labels).astype(str)
    train = np.asarray(train, bool)
    out = np.zeros(labels.shape[0], bool)
    rng = np.random.default_rng(seed)
    for cls in sorted(set(labels[train].tolist())):
        idx = rng.permutation(np.flatnonzero(train & (labels == cls)))
        n_val = min(int(round(fraction * idx.size)), idx.size - 1)
        out[idx[:max(n_val, 0)]] = True
    return out


def _column(cat, name: str, default) -> np.ndarray:
    if name in cat.colnames:
        return np.asarray(cat[name])
    return np.full(len(cat), default)


def training_labels(ws: Workspace, source: str = "catalog", method: str | None = None,
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per catalog row: the training label ("" when none), an exclusion flag, and provenance.

    Parameters
    ----------
    ws : Workspace
    source : {"catalog", "consensus"}
    method : {"majority", "ds", "classifier"}, optional
        The consensus method (:mod:`core.votes.methods`; default config ``votes.method``).

    Returns
    -------
    labels : (n,) str array
        A class of :data:`CLASSES` or "".
    excluded : (n,) bool array
        Fit-quality galaxies (catalog flag, or a FitQuality consensus).
    provenance : dict
        ``source`` and, for consensus, the vote counts it came from.
    """
    cat = ws.read_catalog()
    fq = _column(cat, "fit_quality", False).astype(bool)
    prov: dict[str, Any] = {"source": source}
    if source == "catalog":
        labels = np.array([str(c).strip() for c in _column(cat, "catalog_class", "")], dtype=object)
        prov["column"] = "catalog_class"
    elif source == "consensus":
        from core.votes.methods import store_consensus
        from core.votes.store import open_store

        store = open_store(ws)
        try:
            rule = dict(store.config)
            method = method or rule.get("method", "majority")
            if method == "majority":
                cons = store.consensus()
            else:
                probs = None
                if method == "classifier":
                    from core.latent.queue import active_probabilities

                    probs = active_probabilities(ws, store.galaxy_ids())
                cons = store_consensus(store, method, model_probabilities=probs).table
        finally:
            store.close()
        lookup = dict(zip(cons["id"].astype(str), cons["label"].astype(str)))
        ids = np.asarray(cat["id"]).astype(str)
        raw = np.array([lookup.get(g, "") for g in ids], dtype=object)
        fq = fq | (raw == FIT_QUALITY)
        labels = raw.copy()
        prov.update({
            "rule": {k: rule.get(k) for k in ("min_votes", "fraction") if k in rule},
            "method": method,
            "galaxies_with_votes": int((cons["n_votes"] > 0).sum()) if "n_votes" in cons else None,
            "undecided": int((raw == "undecided").sum()),
            "fit_quality": int((raw == FIT_QUALITY).sum()),
        })
    else:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, not {source!r}")
    labels = np.where(np.isin(labels, CLASSES), labels, "").astype(str)
    return labels, fq, prov


def load_training_data(ws: Workspace, source: str = "catalog", config: dict[str, Any] | None = None) -> TrainingData:
    """Labels, split and scaled stamps of every labelled, prepared galaxy (see module docstring)."""
    from core.learn.augment import split_sample
    from core.learn.scaling import scale_stamps

    cfg = config or ws.config
    cat = ws.read_catalog()
    labels, fq, prov = training_labels(ws, source, (cfg.get("votes") or {}).get("method"))
    status = np.array([str(s).strip() for s in _column(cat, "prep_status", "ok")])
    prepped = np.isin(status, PREPPED)
    if "split" in cat.colnames:
        split = np.array([str(s).strip() for s in cat["split"]])
        prov["split"] = "catalog column 'split'"
    else:
        sc = cfg.get("split", {})
        split = split_sample(labels, fq | ~prepped, sc.get("test_fraction", 0.2), sc.get("seed", 42))
        prov["split"] = "core.learn.augment.split_sample on these labels"
    use = prepped & ~fq & (labels != "") & np.isin(split, ("train", "test"))
    rows = np.flatnonzero(use)
    if not np.any(split[rows] == "train"):
        raise TrainingError(
            f"no labelled training galaxies in {ws.root} (labels: {source}); "
            + ("vote on galaxies first, or train with --labels catalog" if source == "consensus"
               else "does the catalog have a catalog_class column? try --labels consensus"))
    stamps = ws.stamps().read("object_only", rows=rows)
    bad = ~np.isfinite(stamps).all(axis=(1, 2))
    if bad.any():
        log.warning("%d stamps with NaN pixels set to 0 (prep status ok/flagged but incomplete)", int(bad.sum()))
    sc = cfg.get("scaling", {})
    images = scale_stamps(np.nan_to_num(stamps, nan=0.0, posinf=0.0, neginf=0.0),
                          method=sc.get("method", "maxabs"), per=sc.get("per", "stamp"))
    lab, spl = labels[rows], split[rows]
    counts = {s: {c: int(np.sum((lab == c) & (spl == s))) for c in CLASSES} for s in ("train", "test")}
    prov.update({"counts": counts, "n_train": int(np.sum(spl == "train")), "n_test": int(np.sum(spl == "test"))})
    return TrainingData(ids=np.asarray(cat["id"]).astype(str)[rows], rows=rows, labels=lab, split=spl,
                        images=np.asarray(images, np.float32), provenance=prov)
