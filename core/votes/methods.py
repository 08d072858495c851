"""Consensus methods that weigh inspectors by skill: 2/3 majority, Dawid–Skene, classifier-aware.

Three methods turn the current votes into one label per galaxy (config ``votes.method``):

* ``"majority"`` — the paper's 2/3 rule (:mod:`core.votes.consensus`, the default). Its
  confidence is the winning label's share of the non-skip votes.
* ``"ds"`` — Dawid & Skene (1979): each inspector ``j`` has a confusion matrix
  ``theta_j[k, l] = P(votes l | true class k)``; EM alternates the posterior of each galaxy's
  class (E step) with the class prior and the confusion matrices (M step). The M step is a MAP
  estimate under a Dirichlet prior on each row of ``theta_j``: ``votes.ds_prior_strength``
  pseudo-votes per row, ``votes.ds_prior_accuracy`` of them on the diagonal and the rest spread
  over the other labels, so an inspector with few votes starts near "reliable" and moves away
  only as their votes disagree with the others'. EM starts from the vote shares (majority).
* ``"classifier"`` — in the spirit of CROWDLAB (Goh, Tkachenko & Mueller 2022; cleanlab's
  ``get_label_quality_multiannotator``): the CNN's class probabilities are one more annotator,
  weighted by how well the model agrees with the inspectors' consensus. The consensus
  distribution of a galaxy is the weighted average of the model's probabilities (weight
  ``w_model``) and each voting inspector's smoothed one-hot vote (weight ``w_j``), with
  CROWDLAB's weights: ``w = max(1 - error / baseline_error, 1e-6)`` where ``error`` is the
  annotator's (or model's) disagreement with the majority consensus and ``baseline_error`` that
  of always answering the most common consensus class; ``w_model`` is multiplied by
  ``sqrt(mean votes per voted galaxy)``. A vote's smoothed one-hot puts ``P`` (the inspectors'
  mean agreement with the consensus) on the voted label and ``(1 - P) / (K - 1)`` on each other.
  ``votes.classifier_weight`` replaces the estimated ``w_model`` by a fixed value. The model
  gives no FitQuality probability; it is smoothed with ``1e-3`` before use.

For every method, as in the 2/3 rule:

* Skip votes are no judgments (counted in their own column, never a label);
* a galaxy is decided only with at least ``votes.min_votes`` non-skip votes (the label is then
  the most probable class, or, for the majority, the 2/3 winner); the confidence (the
  posterior probability of the label) is reported for every galaxy;
* an **expert's vote overrides every method**: the label is the expert's (the latest expert
  vote), the confidence 1, and ``expert`` is True.

The labels of these methods are :data:`JUDGMENT_LABELS` (the five classes and FitQuality).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from core.labels import CLASSES, FIT_QUALITY, SKIP, VOTE_LABELS
from core.votes.consensus import UNDECIDED, consensus_from_codes, last_expert_label

__all__ = ["METHODS", "JUDGMENT_LABELS", "ConsensusResult", "dawid_skene", "classifier_aware",
           "compute_consensus", "store_consensus", "skill_table"]

log = logging.getLogger(__name__)

#: The consensus methods (config ``votes.method``).
METHODS: tuple[str, ...] = ("majority", "ds", "classifier")

#: The labels the methods decide between (no Skip), in this order in every matrix.
JUDGMENT_LABELS: tuple[str, ...] = CLASSES + (FIT_QUALITY,)

_FLOOR = 1e-6


@dataclass
class ConsensusResult:
    """The outcome of a consensus method.

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    table : pandas.DataFrame
        One row per galaxy: ``id``, ``label`` (a judgment label or ``"undecided"``),
        ``confidence`` (probability of the most probable label, 1 for an expert's), ``n_votes``
        (non-skip), one count column per label of :data:`core.labels.VOTE_LABELS`, ``expert``.
    posterior : ndarray, shape (n_galaxies, 6)
        Probability of each :data:`JUDGMENT_LABELS` label (before the expert override).
    confusion : dict of str to ndarray
        Inspector -> estimated confusion matrix (rows: true label, columns: vote, both in
        :data:`JUDGMENT_LABELS` order; rows sum to 1). Dawid–Skene only (empty otherwise).
    class_prior : ndarray or None
        Dawid–Skene's class prior.
    weights : dict of str to float
        The classifier-aware method's weights (each inspector's and ``"model"``).
    n_iter : int
        EM iterations (Dawid–Skene).
    """

    method: str
    table: pd.DataFrame
    posterior: np.ndarray
    confusion: dict[str, np.ndarray] = field(default_factory=dict)
    class_prior: np.ndarray | None = None
    weights: dict[str, float] = field(default_factory=dict)
    n_iter: int = 0

    def skills(self) -> pd.DataFrame:
        """Each inspector's estimated skill (see :func:`skill_table`)."""
        return skill_table(self)


# ----------------------------------------------------------------------------------------
# Dawid–Skene
# ----------------------------------------------------------------------------------------
def _dirichlet_prior(n_classes: int, accuracy: float, strength: float) -> np.ndarray:
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"ds_prior_accuracy must be in (0, 1), not {accuracy!r}")
    if strength < 0:
        raise ValueError(f"ds_prior_strength must be >= 0, not {strength!r}")
    off = (1.0 - accuracy) / (n_classes - 1)
    alpha = np.full((n_classes, n_classes), off * strength)
    np.fill_diagonal(alpha, accuracy * strength)
    return alpha


def dawid_skene(
    galaxy: np.ndarray,
    inspector: np.ndarray,
    label: np.ndarray,
    n_galaxies: int,
    n_inspectors: int,
    n_classes: int = len(JUDGMENT_LABELS),
    *,
    prior_accuracy: float = 0.8,
    prior_strength: float = 5.0,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Dawid–Skene EM with a Dirichlet prior on each inspector's confusion rows.

    Parameters
    ----------
    galaxy, inspector, label : ndarray of int, shape (n_votes,)
        Galaxy index, inspector index and label index (in ``[0, n_classes)``) of each judgment
        (no Skip votes).
    n_galaxies, n_inspectors, n_classes : int
        Sizes.
    prior_accuracy : float
        Share of each row's pseudo-votes on the diagonal (an inspector with no votes has this
        accuracy on every class).
    prior_strength : float
        Pseudo-votes per row of each confusion matrix (0: maximum likelihood, the original DS).
    max_iter : int
        Maximum EM iterations.
    tol : float
        Stop when no posterior probability changes by more than this.

    Returns
    -------
    posterior : ndarray, shape (n_galaxies, n_classes)
        Probability of each true class; the class prior for a galaxy without votes.
    confusion : ndarray, shape (n_inspectors, n_classes, n_classes)
        ``confusion[j, k, l]`` = P(inspector j votes l | true class k).
    class_prior : ndarray, shape (n_classes,)
    n_iter : int

    Examples
    --------
    >>> post, conf, prior, _ = dawid_skene(np.array([0, 0, 0]), np.array([0, 1, 2]),
    ...                                    np.array([1, 1, 1]), 1, 3, 2)
    >>> int(post[0].argmax())
    1
    """
    g = np.asarray(galaxy, dtype=np.int64)
    a = np.asarray(inspector, dtype=np.int64)
    lab = np.asarray(label, dtype=np.int64)
    K = int(n_classes)
    alpha = _dirichlet_prior(K, float(prior_accuracy), float(prior_strength))
    voted = np.bincount(g, minlength=n_galaxies) > 0
    # Initialise with the vote shares (the majority's soft version).
    counts = np.bincount(g * K + lab, minlength=n_galaxies * K).reshape(n_galaxies, K).astype(float)
    post = np.full((n_galaxies, K), 1.0 / K)
    post[voted] = counts[voted] / counts[voted].sum(axis=1, keepdims=True)
    confusion = np.empty((n_inspectors, K, K))
    prior = np.full(K, 1.0 / K)
    n_iter = 0
    for n_iter in range(1, int(max_iter) + 1):
        # M step: class prior (one pseudo-count each) and MAP confusion rows.
        prior = post[voted].sum(axis=0) + 1.0
        prior /= prior.sum()
        flat = a * K + lab  # (inspector, vote) of each judgment
        for k in range(K):
            confusion[:, k, :] = np.bincount(flat, weights=post[g, k], minlength=n_inspectors * K).reshape(n_inspectors, K)
        confusion += alpha[None]
        confusion /= np.maximum(confusion.sum(axis=2, keepdims=True), _FLOOR)
        # E step: log P(class) + sum over the galaxy's votes of log theta_j[class, vote].
        log_theta = np.log(np.maximum(confusion, _FLOOR))
        per_vote = log_theta[a, :, lab]  # (n_votes, K)
        log_post = np.tile(np.log(prior), (n_galaxies, 1))
        for k in range(K):
            log_post[:, k] += np.bincount(g, weights=per_vote[:, k], minlength=n_galaxies)
        new = np.exp(log_post - logsumexp(log_post, axis=1, keepdims=True))
        change = float(np.abs(new - post).max()) if n_galaxies else 0.0
        post = new
        if change < tol:
            break
    return post, confusion, prior, n_iter


# ----------------------------------------------------------------------------------------
# Classifier-aware (CROWDLAB-like)
# ----------------------------------------------------------------------------------------
def classifier_aware(
    galaxy: np.ndarray,
    inspector: np.ndarray,
    label: np.ndarray,
    n_galaxies: int,
    n_inspectors: int,
    model_probabilities: np.ndarray | None,
    majority: np.ndarray,
    n_classes: int = len(JUDGMENT_LABELS),
    *,
    model_weight: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The consensus distribution with the classifier as one more, weighted, annotator.

    Parameters
    ----------
    galaxy, inspector, label : ndarray of int, shape (n_votes,)
        As :func:`dawid_skene` (judgments only).
    n_galaxies, n_inspectors, n_classes : int
        Sizes.
    model_probabilities : ndarray, shape (n_galaxies, n_classes), or None
        The model's probabilities per galaxy (rows of NaN where the model has none).
    majority : ndarray of int, shape (n_galaxies,)
        The majority consensus label index, ``-1`` where undecided: the reference for the
        annotators' and the model's errors.
    model_weight : float, optional
        Use this weight for the model instead of the estimated one.

    Returns
    -------
    posterior : ndarray, shape (n_galaxies, n_classes)
    inspector_weights : ndarray, shape (n_inspectors,)
    model_weight : float
    """
    g = np.asarray(galaxy, dtype=np.int64)
    a = np.asarray(inspector, dtype=np.int64)
    lab = np.asarray(label, dtype=np.int64)
    K = int(n_classes)
    majority = np.asarray(majority, dtype=np.int64)
    decided = majority >= 0
    if decided.any():
        share = np.bincount(majority[decided], minlength=K) / decided.sum()
        baseline = max(1.0 - float(share.max()), _FLOOR)
    else:
        baseline = 1.0 - 1.0 / K
    # Each inspector's error against the consensus of the other votes (leave-one-out: a vote
    # is compared with the decided majority only where at least one other vote exists).
    n_per = np.bincount(g, minlength=n_galaxies)
    comparable = decided[g] & (n_per[g] >= 2)
    agree = (lab == majority[g]) & comparable
    n_cmp = np.bincount(a[comparable], minlength=n_inspectors).astype(float)
    n_ok = np.bincount(a[agree], minlength=n_inspectors).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_cmp > 0, n_ok / n_cmp, np.nan)
    mean_acc = float(np.nanmean(acc)) if np.isfinite(acc).any() else 0.8
    acc = np.where(np.isfinite(acc), acc, mean_acc)
    w_insp = np.maximum(1.0 - (1.0 - acc) / baseline, _FLOOR)
    P = min(max(mean_acc, 1.0 / K + _FLOOR), 1.0 - _FLOOR)
    # Weighted sum of the smoothed one-hot votes.
    total = np.zeros((n_galaxies, K))
    onehot_w = w_insp[a]
    for k in range(K):
        total[:, k] = np.bincount(g, weights=onehot_w * np.where(lab == k, P, (1.0 - P) / (K - 1)),
                                  minlength=n_galaxies)
    weight_sum = np.bincount(g, weights=onehot_w, minlength=n_galaxies)
    w_model = 0.0
    if model_probabilities is not None:
        probs = np.asarray(model_probabilities, dtype=float)
        has = np.isfinite(probs).all(axis=1)
        if model_weight is not None:
            w_model = float(model_weight)
        elif (has & decided).any():
            model_err = float((probs[has & decided].argmax(axis=1) != majority[has & decided]).mean())
            mean_votes = float(n_per[n_per > 0].mean()) if (n_per > 0).any() else 1.0
            w_model = max(1.0 - model_err / baseline, _FLOOR) * np.sqrt(mean_votes)
        else:
            w_model = 1.0
        total[has] += w_model * probs[has]
        weight_sum = weight_sum + np.where(has, w_model, 0.0)
    post = np.full((n_galaxies, K), 1.0 / K)
    ok = weight_sum > 0
    post[ok] = total[ok] / weight_sum[ok, None]
    return post, w_insp, w_model


# ----------------------------------------------------------------------------------------
# One entry point
# ----------------------------------------------------------------------------------------
def _model_matrix(model_probabilities: np.ndarray | None, n_galaxies: int) -> np.ndarray | None:
    """The model's 5-class probabilities as :data:`JUDGMENT_LABELS` columns (FitQuality smoothed in)."""
    if model_probabilities is None:
        return None
    p = np.asarray(model_probabilities, dtype=float)
    if p.shape != (n_galaxies, len(CLASSES)) and p.shape != (n_galaxies, len(JUDGMENT_LABELS)):
        raise ValueError(f"model probabilities must be ({n_galaxies}, {len(CLASSES)}), not {p.shape}")
    if p.shape[1] == len(CLASSES):
        p = np.concatenate([p, np.zeros((n_galaxies, 1))], axis=1)
    p = p + 1e-3
    return p / p.sum(axis=1, keepdims=True)


def compute_consensus(
    votes: pd.DataFrame,
    *,
    ids: Sequence | None = None,
    method: str = "majority",
    experts: Sequence[str] | set[str] = (),
    min_votes: int = 3,
    fraction: float = 2 / 3,
    prior_accuracy: float = 0.8,
    prior_strength: float = 5.0,
    model_probabilities: np.ndarray | None = None,
    model_weight: float | None = None,
) -> ConsensusResult:
    """The consensus of current votes by one of :data:`METHODS`.

    Parameters
    ----------
    votes : pandas.DataFrame
        Current votes (one per inspector and galaxy), oldest first: ``id``, ``inspector``,
        ``label`` and optionally ``expert`` (bool; else experts are the names in ``experts``).
    ids : sequence, optional
        Galaxies to report, in order (default: the voted ones, first appearance).
    method : {"majority", "ds", "classifier"}
    experts : collection of str
        Inspectors whose votes override (when ``votes`` has no ``expert`` column).
    min_votes, fraction : int, float
        The decision rule (``fraction`` is used by the majority only).
    prior_accuracy, prior_strength : float
        Dawid–Skene's prior (see :func:`dawid_skene`).
    model_probabilities : ndarray, shape (len(ids), 5), optional
        The classifier's probabilities per galaxy (NaN rows where it has none); needed by
        ``"classifier"``, which without it is the inspectors' weighted vote.
    model_weight : float, optional
        Fixed weight of the model (``"classifier"``; default estimated).

    Returns
    -------
    ConsensusResult
    """
    if method not in METHODS:
        raise ValueError(f"consensus method must be one of {', '.join(METHODS)}, not {method!r}")
    votes = votes.reset_index(drop=True)
    gid = votes["id"].astype(str).to_numpy()
    if ids is None:
        ids = pd.unique(gid)
    ids = np.asarray(ids).astype(str)
    index = pd.Index(ids)
    g_all = index.get_indexer(gid)
    if (g_all < 0).any():
        raise ValueError(f"votes on galaxies not in ids: {', '.join(map(repr, gid[g_all < 0][:5]))}")
    l_all = pd.Index(VOTE_LABELS).get_indexer(votes["label"].astype(str).to_numpy())
    if (l_all < 0).any():
        bad = votes["label"].astype(str).to_numpy()[l_all < 0][:5]
        raise ValueError(f"unknown label: {', '.join(map(repr, bad))}")
    names = votes["inspector"].astype(str).to_numpy()
    if "expert" in votes:
        expert = votes["expert"].to_numpy(dtype=bool)
    else:
        expert = np.isin(names, list(experts))
    base = consensus_from_codes(g_all, l_all, expert, ids=ids, labels=VOTE_LABELS, min_votes=min_votes,
                                fraction=fraction)
    n = len(ids)
    K = len(JUDGMENT_LABELS)
    judged = l_all != VOTE_LABELS.index(SKIP)
    g, lab = g_all[judged], l_all[judged]
    people, a = np.unique(names[judged], return_inverse=True)
    n_votes = base["n_votes"].to_numpy()
    majority_idx = pd.Index(JUDGMENT_LABELS).get_indexer(base["label"].astype(str).to_numpy())
    result = ConsensusResult(method=method, table=base, posterior=np.zeros((n, K)))
    if method == "majority":
        counts = base[list(JUDGMENT_LABELS)].to_numpy(dtype=float)
        post = np.full((n, K), 1.0 / K)
        has = counts.sum(axis=1) > 0
        post[has] = counts[has] / counts[has].sum(axis=1, keepdims=True)
        label_idx = majority_idx
        confidence = np.where(label_idx >= 0, post.max(axis=1), np.where(has, post.max(axis=1), 0.0))
    else:
        if method == "ds":
            post, conf, prior, n_iter = dawid_skene(g, a, lab, n, len(people), K, prior_accuracy=prior_accuracy,
                                                    prior_strength=prior_strength)
            result.confusion = {str(p): conf[j] for j, p in enumerate(people)}
            result.class_prior, result.n_iter = prior, n_iter
        else:
            probs = _model_matrix(model_probabilities, n)
            post, w_insp, w_model = classifier_aware(g, a, lab, n, len(people), probs,
                                                     np.where(majority_idx >= 0, majority_idx, -1), K,
                                                     model_weight=model_weight)
            result.weights = {**{str(p): float(w) for p, w in zip(people, w_insp)}, "model": float(w_model)}
        label_idx = np.where(n_votes >= int(min_votes), post.argmax(axis=1), -1)
        confidence = post.max(axis=1)
    result.posterior = post
    # The expert override (consensus_from_codes already applied it to the majority's label).
    expert_idx = last_expert_label(g_all, l_all, expert, n, VOTE_LABELS.index(SKIP))
    label_idx = np.where(expert_idx >= 0, expert_idx, label_idx)
    confidence = np.where(expert_idx >= 0, 1.0, confidence)
    names_out = np.array(JUDGMENT_LABELS + (UNDECIDED,), dtype=object)
    table = base.copy()
    table["label"] = names_out[label_idx]
    table.insert(2, "confidence", confidence.astype(float))
    result.table = table
    return result


def skill_table(result: ConsensusResult) -> pd.DataFrame:
    """Each inspector's estimated skill from a Dawid–Skene result.

    ``skill`` is the expected accuracy ``sum_k prior_k theta[k, k]``; one ``recall <class>``
    column per judgment label holds the diagonal ``theta[k, k]``. Empty for other methods.
    """
    if not result.confusion or result.class_prior is None:
        return pd.DataFrame(columns=["inspector", "skill"])
    rows = []
    for name, theta in result.confusion.items():
        row: dict[str, Any] = {"inspector": name, "skill": float(result.class_prior @ np.diag(theta))}
        for k, lab in enumerate(JUDGMENT_LABELS):
            row[f"recall {lab}"] = float(theta[k, k])
        rows.append(row)
    return pd.DataFrame(rows)


def store_consensus(store, method: str | None = None, *, model_probabilities: np.ndarray | None = None,
                    config: dict[str, Any] | None = None) -> ConsensusResult:
    """The consensus of every galaxy of a vote store by ``method`` (default ``votes.method``).

    Parameters
    ----------
    store : core.votes.store.VoteStore
    method : str, optional
        One of :data:`METHODS`; default the store's ``votes.method`` setting.
    model_probabilities : ndarray, shape (n_galaxies, 5), optional
        Rows aligned with :meth:`~core.votes.store.VoteStore.galaxy_ids` (the classifier method).
    config : dict, optional
        A ``votes`` section overriding the store's.

    Returns
    -------
    ConsensusResult
        Rows in the store's galaxy order.
    """
    cfg = {**store.config, **(config or {})}
    method = method or cfg.get("method", "majority")
    votes = store.current_labels()
    roles = store.inspectors()
    experts = set(roles.loc[roles["role"] == "expert", "name"]) | set(cfg.get("experts") or [])
    ids = np.asarray(store.galaxy_ids()).astype(str)
    return compute_consensus(
        votes, ids=ids, method=method, experts=experts, min_votes=int(cfg.get("min_votes", 3)),
        fraction=float(cfg.get("fraction", 2 / 3)), prior_accuracy=float(cfg.get("ds_prior_accuracy", 0.8)),
        prior_strength=float(cfg.get("ds_prior_strength", 5.0)), model_probabilities=model_probabilities,
        model_weight=cfg.get("classifier_weight"))
