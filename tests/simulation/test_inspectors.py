"""Simulated inspectors' votes (core.simulation.inspectors)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from core.labels import FIT_QUALITY, SKIP
from core.simulation import inspectors
from core.simulation.survey import assign_classes


def _fake_catalog(n: int = 3000) -> list[dict]:
    rng = np.random.default_rng(0)
    cl = assign_classes(n, 0)
    return [{"id": f"G{i}", "true_class": c, "sub_class": "Core" if c == FIT_QUALITY else c,
             "sub_snr": float(rng.uniform(0, 60)) if c != "Clean" else 0.0, "status": "ok"}
            for i, c in enumerate(cl)]


def test_votes_agreement_rate_and_confusions():
    cat = _fake_catalog()
    votes = inspectors.simulate_votes(cat, agreement=0.8, seed=0)
    assert len(votes) == 3 * len(cat)
    truth = {r["id"]: r["true_class"] for r in cat}
    agree = np.mean([v["label"] == truth[v["id"]] for v in votes])
    assert agree == pytest.approx(0.8, abs=0.03)
    wrong = Counter((truth[v["id"]], v["label"]) for v in votes if v["label"] != truth[v["id"]])
    # Clean is confused with Core/Asymmetric, not with Peculiar; Peculiar with Asymmetric/General
    assert wrong[("Clean", "Asymmetric")] + wrong[("Clean", "Core")] > 10 * wrong[("Clean", "Peculiar")]
    assert wrong[("Peculiar", "Asymmetric")] + wrong[("Peculiar", "General")] > 5 * wrong[("Peculiar", "Clean")]
    assert sum(k for (t, lab), k in wrong.items() if lab == SKIP) > 0
    fq = [v for v in votes if truth[v["id"]] == FIT_QUALITY]
    assert np.mean([v["label"] == FIT_QUALITY for v in fq]) > 0.6
    # marginal substructure splits the inspectors more often than obvious substructure
    snr = {r["id"]: r["sub_snr"] for r in cat}
    core = [v for v in votes if truth[v["id"]] == "Core"]
    low = np.mean([v["label"] == "Core" for v in core if snr[v["id"]] < 10])
    high = np.mean([v["label"] == "Core" for v in core if snr[v["id"]] > 40])
    assert high > low
    assert inspectors.simulate_votes(cat, 0.8, seed=0) == votes
    perfect = inspectors.simulate_votes(cat[:50], agreement=1.0, seed=0)
    assert all(v["label"] == truth[v["id"]] for v in perfect)
