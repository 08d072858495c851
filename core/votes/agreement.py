"""How much inspectors agree: Fleiss' kappa, agreement with the consensus, confusion matrices.

All functions take plain tables: the current votes (columns ``id``, ``inspector``, ``label``)
and the consensus (columns ``id``, ``label`` and one count column per label, as made by
:func:`core.votes.consensus.consensus_from_votes`). Skip votes are not judgments: they are left out
of kappa and of the agreement rates (their number is reported).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.labels import CLASSES, FIT_QUALITY, SKIP, VOTE_LABELS
from core.votes.consensus import UNDECIDED

#: Labels a judgment (non-skip vote) can carry; the categories of kappa and the confusion rows.
JUDGMENT_LABELS: tuple[str, ...] = CLASSES + (FIT_QUALITY,)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of a subjects x categories table of rating counts.

    Subjects may have different numbers of raters (the usual generalisation: each subject's
    observed agreement ``P_i = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))``, category shares pooled
    over all ratings). Subjects with fewer than two ratings are ignored.

    Parameters
    ----------
    counts : array-like of int, shape (n_subjects, n_categories)
        ``counts[i, j]`` raters put subject ``i`` in category ``j``.

    Returns
    -------
    float
        Kappa; NaN when fewer than one subject has two ratings, or when every rating falls in
        one category (chance agreement is then 1 and kappa is undefined).

    Examples
    --------
    >>> round(fleiss_kappa([[2, 0], [0, 2]]), 6)
    1.0
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D (subjects x categories), not shape {counts.shape}")
    n = counts.sum(axis=1)
    counts, n = counts[n >= 2], n[n >= 2]
    if len(n) == 0:
        return float("nan")
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / n.sum()
    p_e = float((p_j**2).sum())
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def inspector_agreement(votes: pd.DataFrame, consensus: pd.DataFrame) -> pd.DataFrame:
    """Each inspector's agreement with the consensus.

    Only galaxies with a decided consensus and a non-skip vote of the inspector are compared.
    The inspector's own vote is part of the consensus it is compared with (no leave-one-out).

    Returns
    -------
    pandas.DataFrame
        One row per inspector (sorted by name): ``inspector``, ``n_votes`` (current votes),
        ``n_skip``, ``n_compared``, ``n_agree`` and ``agreement`` (``n_agree / n_compared``,
        NaN when nothing could be compared).
    """
    merged = _merge(votes, consensus)
    rows = []
    for name, group in merged.groupby("inspector", sort=True):
        judged = group[(group["label"] != SKIP) & (group["consensus"] != UNDECIDED) & group["consensus"].notna()]
        n_agree = int((judged["label"] == judged["consensus"]).sum())
        rows.append({
            "inspector": name,
            "n_votes": len(group),
            "n_skip": int((group["label"] == SKIP).sum()),
            "n_compared": len(judged),
            "n_agree": n_agree,
            "agreement": n_agree / len(judged) if len(judged) else float("nan"),
        })
    columns = ["inspector", "n_votes", "n_skip", "n_compared", "n_agree", "agreement"]
    return pd.DataFrame(rows, columns=columns)


def confusion_matrices(votes: pd.DataFrame, consensus: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per inspector, the confusion matrix of their votes against the decided consensus.

    Returns
    -------
    dict of str to pandas.DataFrame
        Inspector name -> integer table with rows = consensus label (:data:`JUDGMENT_LABELS`,
        index named ``consensus``) and columns = the inspector's vote
        (:data:`core.labels.VOTE_LABELS`, Skip included, columns named ``vote``).
    """
    merged = _merge(votes, consensus)
    decided = merged[merged["consensus"].isin(JUDGMENT_LABELS)]
    out: dict[str, pd.DataFrame] = {}
    for name in sorted(merged["inspector"].unique()):
        group = decided[decided["inspector"] == name]
        table = pd.crosstab(
            pd.Categorical(group["consensus"], categories=JUDGMENT_LABELS),
            pd.Categorical(group["label"], categories=VOTE_LABELS),
            dropna=False,
        )
        table = table.reindex(index=list(JUDGMENT_LABELS), columns=list(VOTE_LABELS), fill_value=0).astype(int)
        table.index.name, table.columns.name = "consensus", "vote"
        out[name] = table
    return out


def _merge(votes: pd.DataFrame, consensus: pd.DataFrame) -> pd.DataFrame:
    cons = consensus[["id", "label"]].rename(columns={"label": "consensus"})
    merged = votes[["id", "inspector", "label"]].merge(cons, on="id", how="left")
    merged["label"] = merged["label"].astype(object)
    merged["consensus"] = merged["consensus"].astype(object)
    return merged


@dataclass
class Agreement:
    """Agreement statistics of a vote campaign (see :func:`compute_agreement`)."""

    #: Fleiss' kappa over galaxies with at least two non-skip votes (NaN when undefined).
    kappa: float
    #: Number of galaxies kappa was computed over.
    n_galaxies: int
    #: Per-inspector agreement with the consensus (:func:`inspector_agreement`).
    per_inspector: pd.DataFrame
    #: Per-inspector confusion matrices against the consensus (:func:`confusion_matrices`).
    confusion: dict[str, pd.DataFrame] = field(default_factory=dict)

    def to_text(self) -> str:
        """A readable report (what ``resx votes stats`` prints)."""
        lines = []
        kappa = "undefined" if np.isnan(self.kappa) else f"{self.kappa:.3f}"
        lines.append(f"Fleiss' kappa: {kappa} (over {self.n_galaxies} galaxies with >= 2 non-skip votes)")
        lines.append("")
        if self.per_inspector.empty:
            lines.append("No votes yet.")
            return "\n".join(lines)
        lines.append("Agreement with the consensus (decided galaxies, skips excluded):")
        table = self.per_inspector.copy()
        table["agreement"] = [("-" if np.isnan(a) else f"{100 * a:.1f} %") for a in table["agreement"]]
        lines.append(table.to_string(index=False))
        for name, matrix in self.confusion.items():
            lines.append("")
            lines.append(f"Confusion matrix of {name!r} (rows: consensus, columns: vote):")
            lines.append(matrix.to_string())
        return "\n".join(lines)


def compute_agreement(votes: pd.DataFrame, consensus: pd.DataFrame) -> Agreement:
    """All agreement statistics from current votes and their consensus.

    Parameters
    ----------
    votes : pandas.DataFrame
        Current votes with columns ``id``, ``inspector``, ``label``.
    consensus : pandas.DataFrame
        Consensus with ``id``, ``label`` and one count column per label in
        :data:`JUDGMENT_LABELS` (as from :func:`core.votes.consensus.consensus_from_votes`).
    """
    counts = consensus[list(JUDGMENT_LABELS)].to_numpy() if len(consensus) else np.zeros((0, len(JUDGMENT_LABELS)))
    n_galaxies = int((counts.sum(axis=1) >= 2).sum())
    return Agreement(
        kappa=fleiss_kappa(counts),
        n_galaxies=n_galaxies,
        per_inspector=inspector_agreement(votes, consensus),
        confusion=confusion_matrices(votes, consensus),
    )
