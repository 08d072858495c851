"""Consensus labels from inspectors' votes: the paper's 2/3 majority rule, vectorised.

The rule (paper §2.3, configurable in ``config.toml`` section ``[votes]``):

* Only each inspector's *current* vote on a galaxy counts (their latest, undone actions
  excluded — :mod:`core.votes` selects them).
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

:func:`consensus_from_votes` works on plain arrays; :func:`count_votes` and :func:`decide`
are the numpy kernels it is made of (integer codes in, integer codes out).
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
    """Count votes per galaxy and label.

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
        ``counts[g, l]`` is the number of votes for label ``l`` on galaxy ``g``. It is a
        transposed view of a label-major array, so each label's column is contiguous.
    """
    galaxy_codes = np.asarray(galaxy_codes, dtype=np.int64)
    label_codes = np.asarray(label_codes, dtype=np.int64)
    flat = label_codes * n_galaxies + galaxy_codes
    return np.bincount(flat, minlength=n_galaxies * n_labels).reshape(n_labels, n_galaxies).T


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
    # Column-at-a-time elementwise passes over length-n_galaxies vectors: fast for few labels.
    n_votes = np.zeros(n_galaxies, dtype=np.int64)
    best = np.full(n_galaxies, -1, dtype=np.int64)
    best_count = np.zeros(n_galaxies, dtype=np.int64)
    n_at_best = np.zeros(n_galaxies, dtype=np.int64)
    for j in range(n_labels):
        if j == skip_index:
            continue
        col = counts[:, j]
        n_votes += col
        higher = col > best_count
        n_at_best = np.where(higher, 1, n_at_best + (col == best_count))
        best = np.where(higher, j, best)
        np.maximum(best_count, col, out=best_count)
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
    """Index of each value in ``categories`` (fast for a pandas Categorical); unknown raises."""
    if isinstance(values, pd.Series):
        values = values.array if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()
    if isinstance(values, pd.Categorical):
        lookup = categories.get_indexer(values.categories)
        codes = np.append(lookup, -1)[values.codes]  # code -1 (missing) stays -1
    else:
        codes = categories.get_indexer(values)
    if (codes < 0).any():
        bad = pd.unique(np.asarray(values, dtype=object)[codes < 0])[:5]
        raise ValueError(f"unknown {what}: {', '.join(map(repr, bad))}")
    return codes.astype(np.int64)


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
    skip_index = labels.index(SKIP) if SKIP in labels else None
    counts = count_votes(g_codes, l_codes, len(ids), len(labels))
    expert_label = None
    if expert is not None:
        expert = np.asarray(expert, dtype=bool)
        if len(expert) != len(galaxy):
            raise ValueError("expert must have one flag per vote")
        expert_label = last_expert_label(g_codes, l_codes, expert, len(ids), skip_index)
    codes, n_votes = decide(counts, skip_index=skip_index, expert_label=expert_label,
                            min_votes=min_votes, fraction=fraction)
    names = np.array(labels + (UNDECIDED,), dtype=object)
    data: dict[str, object] = {"id": ids, "label": names[codes], "n_votes": n_votes}
    for j, name in enumerate(labels):
        data[name] = counts[:, j]
    data["expert"] = expert_label >= 0 if expert_label is not None else np.zeros(len(ids), dtype=bool)
    return pd.DataFrame(data)
