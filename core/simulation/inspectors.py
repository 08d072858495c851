"""Simulated inspectors: votes on a simulated survey that agree with the truth at a chosen rate.

The confusions are the ones a person makes on these residuals (Clean <-> Core/Asymmetric,
General <-> Peculiar <-> Asymmetric, some Skip), and marginal galaxies (low substructure S/N)
split the inspectors more often.

Two kinds of simulated inspectors:

* :func:`simulate_votes` — three inspectors who agree with the truth at one mean rate, more
  often wrong on marginal galaxies (what ``resx simulate`` writes to ``votes.csv``);
* :func:`simulate_campaign_votes` — inspectors with **known per-class confusion matrices**
  (:func:`inspector_confusion`, :data:`CAMPAIGN_INSPECTORS`: two careful, one careless, one
  biased toward Core), each chosen galaxy voted by a random subset of them: the ground truth
  against which Dawid–Skene's estimates and the active-learning campaign
  (``tests/benchmarks/bench_campaign.py``) are measured.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from core.labels import CLASSES, FIT_QUALITY, SKIP
from core.simulation.errors import SimulationError

__all__ = ["INSPECTORS", "CAMPAIGN_INSPECTORS", "JUDGMENTS", "inspector_confusion", "campaign_confusions",
           "simulate_campaign_votes", "simulate_votes", "write_votes"]

INSPECTORS = ("sim_inspector_1", "sim_inspector_2", "sim_inspector_3")

#: Where an inspector who does not give the true label goes instead, per true class (weights;
#: ``"Clean"`` weights are scaled up for marginal substructure, see :func:`simulate_votes`).
_CONFUSION: dict[str, dict[str, float]] = {
    "Clean": {"Core": 0.35, "Asymmetric": 0.45, "General": 0.04, "Peculiar": 0.01, SKIP: 0.10,
              FIT_QUALITY: 0.05},
    "General": {"Peculiar": 0.35, "Asymmetric": 0.35, "Clean": 0.08, "Core": 0.05, SKIP: 0.12,
                FIT_QUALITY: 0.05},
    "Core": {"Clean": 0.40, "Asymmetric": 0.35, "General": 0.05, "Peculiar": 0.05, SKIP: 0.10,
             FIT_QUALITY: 0.05},
    "Asymmetric": {"Clean": 0.30, "Core": 0.25, "Peculiar": 0.17, "General": 0.15, SKIP: 0.10,
                   FIT_QUALITY: 0.03},
    "Peculiar": {"Asymmetric": 0.45, "General": 0.30, "Core": 0.08, SKIP: 0.10, FIT_QUALITY: 0.07},
    FIT_QUALITY: {"Clean": 0.25, "Asymmetric": 0.25, "Core": 0.15, "Peculiar": 0.10, "General": 0.05,
                  SKIP: 0.20},
}


def _difficulty(true_class: str, sub_snr: float) -> float:
    """How marginal a galaxy is for a person, in [0, 1] (1: the substructure is invisible)."""
    if true_class in ("Clean", FIT_QUALITY):
        return 0.3
    return float(1.0 / (1.0 + (max(sub_snr, 0.0) / 15.0) ** 2))


def simulate_votes(catalog: Any, agreement: float = 0.8, seed: int = 0,
                   inspectors: tuple[str, ...] = INSPECTORS) -> list[dict[str, str]]:
    """Votes of simulated inspectors who agree with the truth at rate ``agreement`` on average.

    Each inspector votes once per galaxy. The probability of giving the true label is
    ``agreement - 0.4 (d - mean d)`` (clipped to [0.02, 0.99]), where ``d`` is the galaxy's
    difficulty (:func:`_difficulty`, from the substructure's S/N), so marginal galaxies split the
    inspectors more often. Otherwise the label is drawn from the class's confusion row
    (:data:`_CONFUSION`: Clean ↔ Core/Asymmetric, General ↔ Peculiar ↔ Asymmetric, some Skip);
    for a substructure class the weight of Clean grows with the difficulty. A fit-quality galaxy
    that is not voted FitQuality is mostly voted its underlying residual class.

    Parameters
    ----------
    catalog : astropy.table.Table or sequence of dict
        Needs ``id``, ``true_class``, ``sub_class``, ``sub_snr``, ``status``; only ``status == "ok"``
        galaxies get votes.
    agreement : float
        Mean probability that an inspector gives the true label (0–1).
    seed : int
    inspectors : tuple of str

    Returns
    -------
    list of dict
        ``{"id", "inspector", "label", "comment"}`` rows.
    """
    if not 0.0 <= agreement <= 1.0:
        raise SimulationError(f"agreement must be within [0, 1], got {agreement}")
    rows = [r for r in (dict(zip(catalog.colnames, row)) if hasattr(catalog, "colnames") else row
                        for row in catalog) if str(r.get("status", "ok")) == "ok"]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    if not rows:
        return []
    d = np.array([_difficulty(str(r["true_class"]), float(r["sub_snr"])) for r in rows])
    p = np.clip(agreement - 0.4 * (d - d.mean()), 0.02, 0.99) if agreement < 1.0 else np.ones(len(rows))
    votes = []
    for r, di, pi in zip(rows, d, p):
        truth = str(r["true_class"])
        conf = dict(_CONFUSION[truth])
        if truth in ("General", "Core", "Asymmetric", "Peculiar") and "Clean" in conf:
            conf["Clean"] *= 0.5 + 2.0 * di
        if truth == FIT_QUALITY:
            under = str(r.get("sub_class", "")) or "Clean"
            conf[under] = conf.get(under, 0.0) + 0.5
        labels = list(conf)
        w = np.array([conf[k] for k in labels])
        w = w / w.sum()
        for name in inspectors:
            if rng.random() < pi:
                label = truth
            else:
                label = labels[int(rng.choice(len(labels), p=w))]
            comment = "faint, hard to tell" if label == SKIP else ""
            votes.append({"id": str(r["id"]), "inspector": name, "label": label, "comment": comment})
    return votes


#: Labels of the campaign inspectors' confusion matrices (rows: true class, columns: vote).
JUDGMENTS: tuple[str, ...] = CLASSES + (FIT_QUALITY,)

#: The campaign's inspectors: name -> (accuracy on every class, class they over-use, extra share
#: of each row's votes moved to it). Two careful, one careless, one biased toward Core.
CAMPAIGN_INSPECTORS: dict[str, tuple[float, str | None, float]] = {
    "careful_1": (0.90, None, 0.0),
    "careful_2": (0.85, None, 0.0),
    "careless": (0.45, None, 0.0),
    "biased_core": (0.65, "Core", 0.25),
}


def inspector_confusion(accuracy: float, bias_to: str | None = None, bias: float = 0.0) -> np.ndarray:
    """A confusion matrix over :data:`JUDGMENTS`: ``theta[k, l] = P(votes l | true class k)``.

    Row ``k`` puts ``accuracy`` on the true class; the rest goes where a person's errors go on
    these residuals (the class's row of :data:`_CONFUSION`, Skip left out). With ``bias_to``,
    a further ``bias`` of every other row is taken from its errors (or, when they are smaller,
    from its diagonal) and put on ``bias_to``.

    Parameters
    ----------
    accuracy : float
        In (0, 1].
    bias_to : str, optional
        A label of :data:`JUDGMENTS`.
    bias : float
        In [0, 1 - accuracy] ideally.

    Returns
    -------
    ndarray, shape (6, 6)
        Rows sum to 1.
    """
    if not 0.0 < accuracy <= 1.0:
        raise SimulationError(f"accuracy must be in (0, 1], got {accuracy}")
    K = len(JUDGMENTS)
    theta = np.zeros((K, K))
    for k, truth in enumerate(JUDGMENTS):
        errs = np.array([_CONFUSION[truth].get(lab, 0.0) if lab != truth else 0.0 for lab in JUDGMENTS])
        errs = errs / errs.sum() if errs.sum() > 0 else np.full(K, 1.0 / (K - 1)) * (np.arange(K) != k)
        theta[k] = (1.0 - accuracy) * errs
        theta[k, k] = accuracy
        if bias_to is not None and truth != bias_to:
            j = JUDGMENTS.index(bias_to)
            other = np.ones(K, dtype=bool)
            other[[j, k]] = False
            e = theta[k, other].sum()
            from_errors = min(bias, e)
            if e > 0:
                theta[k, other] *= 1.0 - from_errors / e
            theta[k, k] -= min(bias - from_errors, theta[k, k])
            theta[k, j] = 0.0
            theta[k, j] = 1.0 - theta[k].sum()
    return theta


def campaign_confusions(inspectors: dict[str, tuple[float, str | None, float]] | None = None
                        ) -> dict[str, np.ndarray]:
    """The confusion matrix of each campaign inspector (default :data:`CAMPAIGN_INSPECTORS`)."""
    spec = CAMPAIGN_INSPECTORS if inspectors is None else inspectors
    return {name: inspector_confusion(*args) for name, args in spec.items()}


def simulate_campaign_votes(ids, true_classes, confusions: dict[str, np.ndarray], per_galaxy: int = 3,
                            seed: int | np.random.Generator = 0) -> list[dict[str, str]]:
    """Votes of inspectors with known confusion matrices, ``per_galaxy`` of them per galaxy.

    Each galaxy is voted by ``per_galaxy`` inspectors drawn at random without replacement;
    each draws their label from their confusion row of the galaxy's true class.

    Parameters
    ----------
    ids : sequence of str
    true_classes : sequence of str
        Labels of :data:`JUDGMENTS`.
    confusions : dict of str to ndarray
        Inspector -> (6, 6) matrix (:func:`inspector_confusion`).
    per_galaxy : int
        At most the number of inspectors.
    seed : int or numpy.random.Generator

    Returns
    -------
    list of dict
        ``{"id", "inspector", "label", "comment"}`` rows, galaxy by galaxy.
    """
    names = list(confusions)
    if not 1 <= per_galaxy <= len(names):
        raise SimulationError(f"per_galaxy must be in [1, {len(names)}], got {per_galaxy}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    mats = np.stack([np.asarray(confusions[n], dtype=float) for n in names])
    votes = []
    for gid, truth in zip(ids, true_classes):
        k = JUDGMENTS.index(str(truth))
        for j in rng.choice(len(names), size=per_galaxy, replace=False):
            label = JUDGMENTS[int(rng.choice(len(JUDGMENTS), p=mats[j, k]))]
            votes.append({"id": str(gid), "inspector": names[j], "label": label, "comment": ""})
    return votes


def write_votes(votes: list[dict[str, str]], path: Path) -> None:
    """Write vote rows as the CSV that ``resx votes import`` reads."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "inspector", "label", "comment"])
        w.writeheader()
        w.writerows(votes)
