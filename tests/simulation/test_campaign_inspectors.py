"""Simulated inspectors with known confusion matrices (core.simulation.inspectors)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.simulation.errors import SimulationError
from core.simulation.inspectors import JUDGMENTS, campaign_confusions, inspector_confusion, simulate_campaign_votes


def test_confusion_matrices_are_what_they_say():
    mats = campaign_confusions()
    assert list(mats) == ["careful_1", "careful_2", "careless", "biased_core"]
    for theta in mats.values():
        np.testing.assert_allclose(theta.sum(axis=1), 1.0)
        assert (theta >= 0).all()
    np.testing.assert_allclose(np.diag(mats["careful_1"]), 0.90)
    np.testing.assert_allclose(np.diag(mats["careless"]), 0.45)
    core = JUDGMENTS.index("Core")
    # the biased inspector over-uses Core: every other row gives it >= 0.25 more than a careful one's
    assert (np.delete(mats["biased_core"][:, core], core) >= 0.25).all()
    # errors go where a person's go: Clean is confused with Core and Asymmetric, not Peculiar
    row = inspector_confusion(0.5)[JUDGMENTS.index("Clean")]
    assert row[JUDGMENTS.index("Asymmetric")] > row[JUDGMENTS.index("Peculiar")]
    with pytest.raises(SimulationError):
        inspector_confusion(0.0)


def test_votes_follow_the_matrices_three_inspectors_per_galaxy():
    mats = campaign_confusions()
    n = 4000
    ids = [f"g{i}" for i in range(n)]
    truth = ["Clean"] * n
    votes = pd.DataFrame(simulate_campaign_votes(ids, truth, mats, per_galaxy=3, seed=5))
    assert len(votes) == 3 * n
    assert (votes.groupby("id")["inspector"].nunique() == 3).all()
    share = votes.groupby("inspector").size() / n
    np.testing.assert_allclose(share.to_numpy(), 0.75, atol=0.03)  # each inspector on 3 of 4 galaxies
    for name, theta in mats.items():
        got = votes.loc[votes["inspector"] == name, "label"].value_counts(normalize=True)
        got = got.reindex(list(JUDGMENTS), fill_value=0.0).to_numpy()
        np.testing.assert_allclose(got, theta[0], atol=0.03)  # ~3000 votes: sigma <= 0.009
    again = pd.DataFrame(simulate_campaign_votes(ids[:50], truth[:50], mats, seed=5))
    pd.testing.assert_frame_equal(again, votes.iloc[:150].reset_index(drop=True))
