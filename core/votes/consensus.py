"""Consensus labels from inspectors' votes: the paper's 2/3 majority rule, vectorised.

The rule (paper §2.3, configurable in ``config.toml`` section ``[votes]``):

* Only each inspector's *current* vote on a galaxy counts (their latest, undone actions
  excluded — :mod:`core.votes.store` selects them).
* **Skip votes** ("I cannot decide") are recorded and counted in their own ``Skip`` column,
  but they are *not* votes for anything: they do not count toward ``n_votes`` nor toward the
  2/3 denominator, and a Skip can never become a consensus (training) label.
* A label wins when at least ``min_votes`` (default 3) non-skip votes exist and the label holds
  at least ``fraction`` (default 2/3) of them, and no other label holds as many (a tie is
  undecided; with ``fraction > 1/2`` ties cannot reach the threshold anyway). Otherwise the
  galaxy is ``"undecided"`` and the split is in the count columns.
* The fraction test is exact integer arithmetic (``count * q >= p * n_votes`` with
  ``fraction = p/q``), so 2 of 3 votes is exactly 2/3 and wins.
* **Expert validation** overrides: when an expert has a current non-skip vote on a galaxy,
  the consensus is the expert's label whatever the split (the latest expert vote when several
  experts voted), and the ``expert`` column is True. An expert's vote is also counted like any
  other vote in the count columns and ``n_votes``.
* ``FitQuality`` is an ordinary label here: it can win the consensus (the galaxy is then
  flagged and excluded from training by the training code).

:func:`consensus_from_codes` works on integer codes (galaxy positions, label positions): one
``np.bincount``, an ``argmax`` and the integer 2/3 test, no hashing. :func:`consensus_from_votes`
takes strings (or any ids) and factorizes them once into codes. :func:`count_votes` and
:func:`decide` are the numpy kernels (integer codes in, integer codes out).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Sequence

import numpy as np
import pandas as pd

from core.labels import SKIP, VOTE_LABELS

#: The consensus label of a galaxy no label wins.
UNDECIDED = "undecided"


def _as_fraction(fraction: float) -> Fraction:
    if not 0 < float(fraction) <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction!r}")
    return Fraction(fraction).limit_denominator(1000)


def count_votes(galaxy_codes: np.ndarray, label_codes: np.ndarray, n_galaxies: int, n_labels: int) -> np.ndarray:
    """Count votes per galaxy and label (one ``np.bincount`` on ``galaxy * n_labels + label``).

    Parameters
    ----------
    galaxy_codes : ndarray of int, shape (n_votes,)
        Galaxy index of each vote, in ``[0, n_galaxies)``.
    label_codes : ndarray of int, shape (n_votes,)
        Label index of each vote, in ``[0, n_labels)``.
    n_galaxies, n_labels : int
        Number of galaxies and labels.

    Returns
    -------
    ndarray of int64, shape (n_galaxies, n_labels)
        ``counts[g, l]`` is the number of votes for label ``l`` on galaxy ``g``.
    """
    flat = np.asarray(galaxy_codes, dtype=np.int64) * n_labels
    flat += np.asarray(label_codes, dtype=np.int64)
    return np.bincount(flat, minlength=n_galaxies * n_labels).reshape(n_galaxies, n_labels)


def decide(
    counts: np.ndarray,
    *,
    skip_index: int | None = None,
    expert_label: np.ndarray | None = None,
    min_votes: int = 3,
    fraction: float = 2 / 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the majority rule to a count matrix.

    Parameters
    ----------
    counts : ndarray of int, shape (n_galaxies, n_labels)
        Votes per galaxy and label (:func:`count_votes`).
    skip_index : int or None
        Column of the Skip label, which is excluded from ``n_votes`` and can never win.
    expert_label : ndarray of int, shape (n_galaxies,), optional
        Label index validated by an expert, ``-1`` where no expert voted. Overrides the rule.
    min_votes : int
        Minimum number of non-skip votes for a label to win.
    fraction : float
        Minimum share of the non-skip votes the winning label must hold.

    Returns
    -------
    label : ndarray of int64, shape (n_galaxies,)
        Winning label index, ``-1`` for undecided.
    n_votes : ndarray of int64, shape (n_galaxies,)
        Number of non-skip votes.
    """
    if int(min_votes) < 1:
        raise ValueError(f"min_votes must be at least 1, not {min_votes!r}")
    frac = _as_fraction(fraction)
    counts = np.asarray(counts)
    n_galaxies, n_labels = counts.shape
    judged = counts
    if skip_index is not None and 0 <= skip_index < n_labels:
        judged = counts.copy()
        judged[:, skip_index] = 0  # Skip never wins and is no vote
    n_votes = judged.sum(axis=1, dtype=np.int64)
    best = judged.argmax(axis=1)
    best_count = np.take_along_axis(judged, best[:, None], axis=1)[:, 0].astype(np.int64)
    n_at_best = (judged == best_count[:, None]).sum(axis=1)
    # Exact integer arithmetic: count / n_votes >= p / q  <=>  count * q >= p * n_votes.
    wins = (
        (n_votes >= int(min_votes))
        & (best_count * frac.denominator >= frac.numerator * n_votes)
        & (n_at_best == 1)
        & (best_count > 0)
    )
    label = np.where(wins, best, -1)
    if expert_label is not None:
        expert_label = np.asarray(expert_label, dtype=np.int64)
        label = np.where(expert_label >= 0, expert_label, label)
    return label, n_votes


def last_expert_label(
    galaxy_codes: np.ndarray, label_codes: np.ndarray, expert: np.ndarray, n_galaxies: int,
    skip_index: int | None = None,
) -> np.ndarray:
    """Label of the last (in input order) non-skip expert vote per galaxy, ``-1`` where none."""
    mask = np.asarray(expert, dtype=bool)
    if skip_index is not None:
        mask = mask & (label_codes != skip_index)
    out = np.full(n_galaxies, -1, dtype=np.int64)
    if not mask.any():
        return out
    g = galaxy_codes[mask][::-1]
    lab = label_codes[mask][::-1]
    uniq, first = np.unique(g, return_index=True)  # first in reversed order = last vote
    out[uniq] = lab[first]
    return out


def _codes(values, categories: pd.Index, what: str) -> np.ndarray:
    """Index of each value in ``categories``; unknown values raise ``ValueError``.

    The values are factorized once (one hash per value); only the distinct values are then
    looked up in ``categories``. A pandas Categorical needs no hashing at all.
    """
    if isinstance(values, pd.Series):
        values = values.array if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()
    if isinstance(values, pd.Categorical):
        codes, uniques = values.codes.astype(np.int64), values.categories
    else:
        codes, uniques = pd.factorize(np.asarray(values), use_na_sentinel=True)
    lookup = categories.get_indexer(uniques)
    if (lookup < 0).any() or (codes < 0).any():
        bad = [u for u, k in zip(uniques, lookup) if k < 0][:5] or [None]
        raise ValueError(f"unknown {what}: {', '.join(map(repr, bad))}")
    return lookup.astype(np.int64)[codes]


def consensus_from_codes(
    galaxy_codes: np.ndarray,
    label_codes: np.ndarray,
    expert: Sequence[bool] | None = None,
    *,
    ids: Sequence,
    labels: Sequence[str] = VOTE_LABELS,
    min_votes: int = 3,
    fraction: float = 2 / 3,
) -> pd.DataFrame:
    """Consensus per galaxy from integer-coded current votes (no hashing, no strings per vote).

    Parameters
    ----------
    galaxy_codes : ndarray of int, shape (n_votes,)
        Position in ``ids`` of each vote's galaxy.
    label_codes : ndarray of int, shape (n_votes,)
        Position in ``labels`` of each vote's label.
    expert : array-like of bool, shape (n_votes,), optional
        True where an expert cast the vote (the last expert vote in input order wins).
    ids : array-like, shape (n_galaxies,)
        Galaxy ids, in output order; used once, to label the output rows.
    labels, min_votes, fraction
        As :func:`consensus_from_votes`.

    Returns
    -------
    pandas.DataFrame
        As :func:`consensus_from_votes`.
    """
    labels = tuple(labels)
    ids = np.asarray(ids)
    n_galaxies, n_labels = len(ids), len(labels)
    g = np.asarray(galaxy_codes, dtype=np.int64)
    lab = np.asarray(label_codes, dtype=np.int64)
    if g.shape != lab.shape or g.ndim != 1:
        raise ValueError(f"galaxy and label codes differ in shape ({g.shape} vs {lab.shape})")
    if len(g) and (g.min() < 0 or g.max() >= n_galaxies):
        raise ValueError(f"galaxy codes must lie in [0, {n_galaxies})")
    if len(lab) and (lab.min() < 0 or lab.max() >= n_labels):
        raise ValueError(f"label codes must lie in [0, {n_labels})")
    skip_index = labels.index(SKIP) if SKIP in labels else None
    counts = count_votes(g, lab, n_galaxies, n_labels)
    expert_label = None
    if expert is not None:
        expert = np.asarray(expert, dtype=bool)
        if expert.shape != g.shape:
            raise ValueError("expert must have one flag per vote")
        expert_label = last_expert_label(g, lab, expert, n_galaxies, skip_index)
    codes, n_votes = decide(counts, skip_index=skip_index, expert_label=expert_label,
                            min_votes=min_votes, fraction=fraction)
    names = np.array(labels + (UNDECIDED,), dtype=object)
    data: dict[str, object] = {"id": ids, "label": names[codes], "n_votes": n_votes}
    for j, name in enumerate(labels):
        data[name] = counts[:, j]
    data["expert"] = expert_label >= 0 if expert_label is not None else np.zeros(n_galaxies, dtype=bool)
    return pd.DataFrame(data)


def consensus_from_votes(
    galaxy: Sequence,
    label: Sequence[str],
    expert: Sequence[bool] | None = None,
    *,
    ids: Sequence | None = None,
    labels: Sequence[str] = VOTE_LABELS,
    min_votes: int = 3,
    fraction: float = 2 / 3,
) -> pd.DataFrame:
    """Consensus label per galaxy from current votes (one per inspector and galaxy).

    Parameters
    ----------
    galaxy : array-like, shape (n_votes,)
        Galaxy id of each vote.
    label : array-like of str, shape (n_votes,)
        Label of each vote; each must be one of ``labels``.
    expert : array-like of bool, shape (n_votes,), optional
        True where the vote was cast by an expert. When several experts voted on a galaxy, the
        last of their votes in input order wins, so pass votes in chronological order.
    ids : array-like, optional
        All galaxy ids to report, in output order (galaxies without votes are undecided with
        ``n_votes`` 0). Default: the voted galaxies in order of first appearance. A vote on a
        galaxy not in ``ids`` raises ``ValueError``.
    labels : sequence of str
        The label vocabulary; one count column each. Default :data:`core.labels.VOTE_LABELS`.
    min_votes : int
        Minimum number of non-skip votes for a label to win (default 3).
    fraction : float
        Share of the non-skip votes the winning label needs (default 2/3).

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``id``, ``label`` (winning label or ``"undecided"``), ``n_votes``
        (non-skip votes), one integer column per label, ``expert`` (bool: expert-validated).

    Examples
    --------
    >>> df = consensus_from_votes(["a", "a", "a"], ["Core", "Core", "Clean"])
    >>> df.loc[0, "label"], int(df.loc[0, "n_votes"])
    ('Core', 3)
    """
    labels = tuple(labels)
    if not isinstance(galaxy, (pd.Series, pd.Categorical)):
        galaxy = np.asarray(galaxy)
    if not isinstance(label, (pd.Series, pd.Categorical)):
        label = np.asarray(label)
    if len(galaxy) != len(label):
        raise ValueError(f"galaxy and label differ in length ({len(galaxy)} vs {len(label)})")
    if ids is None:
        g_codes, uniques = pd.factorize(galaxy, sort=False)
        ids = np.asarray(uniques)
        g_codes = g_codes.astype(np.int64)
    else:
        ids = np.asarray(ids)
        g_codes = _codes(galaxy, pd.Index(ids), "galaxy id")
    l_codes = _codes(label, pd.Index(labels), "label")
    if expert is not None and len(expert) != len(galaxy):
        raise ValueError("expert must have one flag per vote")
    return consensus_from_codes(g_codes, l_codes, expert, ids=ids, labels=labels,
                                min_votes=min_votes, fraction=fraction)
