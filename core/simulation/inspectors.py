"""Simulated inspectors: votes on a simulated survey that agree with the truth at a chosen rate.

The confusions are the ones a person makes on these residuals (Clean <-> Core/Asymmetric,
General <-> Peculiar <-> Asymmetric, some Skip), and marginal galaxies (low substructure S/N)
split the inspectors more often.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from core.labels import FIT_QUALITY, SKIP
from core.simulation.errors import SimulationError

__all__ = ["INSPECTORS", "simulate_votes", "write_votes"]

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


def write_votes(votes: list[dict[str, str]], path: Path) -> None:
    """Write vote rows as the CSV that ``resx votes import`` reads."""
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "inspector", "label", "comment"])
        w.writeheader()
        w.writerows(votes)
