"""Consensus methods: Dawid–Skene recovers known confusion matrices, the classifier-aware method, experts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.labels import CLASSES
from core.votes.consensus import consensus_from_votes
from core.votes.methods import JUDGMENT_LABELS, compute_consensus, dawid_skene, skill_table

K = len(JUDGMENT_LABELS)


def confusion(accuracy: float, bias_to: int | None = None, bias: float = 0.0) -> np.ndarray:
    """A K x K confusion matrix over the 5 classes (+ FitQuality column, never voted)."""
    theta = np.zeros((K, K))
    for k in range(K):
        theta[k, :5] = (1 - accuracy - (bias if bias_to is not None and k != bias_to else 0.0)) / 4
        theta[k, k] = accuracy
        if bias_to is not None and k != bias_to:
            theta[k, bias_to] += bias
    theta[5] = 0
    theta[5, 5] = 1.0
    return theta


TRUE_CONFUSIONS = {
    "careful_a": confusion(0.9),
    "careful_b": confusion(0.85),
    "careless": confusion(0.45),
    "biased": confusion(0.6, bias_to=CLASSES.index("Core"), bias=0.25),
}


def simulate(n: int = 6000, seed: int = 1, per_galaxy: int = 3):
    rng = np.random.default_rng(seed)
    truth = rng.choice(5, size=n, p=[0.35, 0.1, 0.2, 0.25, 0.1])
    names = list(TRUE_CONFUSIONS)
    rows = []
    for i, t in enumerate(truth):
        for j in rng.choice(len(names), size=per_galaxy, replace=False):
            theta = TRUE_CONFUSIONS[names[j]]
            rows.append((f"g{i}", names[j], JUDGMENT_LABELS[rng.choice(K, p=theta[t])]))
    return truth, pd.DataFrame(rows, columns=["id", "inspector", "label"])


def test_dawid_skene_recovers_known_confusion_matrices():
    truth, votes = simulate()
    res = compute_consensus(votes, method="ds", prior_strength=1.0)
    for name, theta in TRUE_CONFUSIONS.items():
        est = res.confusion[name]
        # The rarest rows (prior 0.1) hold ~450 votes of each inspector: one sigma ~ 0.025.
        np.testing.assert_allclose(est[:5, :5], theta[:5, :5], atol=0.08, err_msg=name)
    assert res.confusion["careful_a"][0, 0] == pytest.approx(0.9, abs=0.04)
    # The biased inspector's Core column is recovered: ~0.25 + 0.0375 on every other row.
    core = CLASSES.index("Core")
    others = [k for k in range(5) if k != core]
    assert res.confusion["biased"][others, core].mean() == pytest.approx(0.2875, abs=0.04)
    skills = skill_table(res).set_index("inspector")["skill"]
    assert skills["careful_a"] > skills["careful_b"] > skills["biased"] > skills["careless"]
    ds_acc = (res.table["label"].to_numpy() == np.asarray(JUDGMENT_LABELS)[truth]).mean()
    maj = consensus_from_votes(votes["id"], votes["label"], ids=res.table["id"])
    maj_acc = (maj["label"].to_numpy() == np.asarray(JUDGMENT_LABELS)[truth]).mean()
    assert ds_acc > maj_acc  # majority leaves 2-1-0 splits... and 1-1-1 undecided


def test_dawid_skene_reduces_to_majority_for_identical_perfect_inspectors():
    rng = np.random.default_rng(0)
    truth = rng.choice(5, size=200)
    votes = pd.DataFrame([(f"g{i}", f"p{j}", CLASSES[t]) for i, t in enumerate(truth) for j in range(3)],
                         columns=["id", "inspector", "label"])
    ds = compute_consensus(votes, method="ds")
    maj = compute_consensus(votes, method="majority")
    assert (ds.table["label"] == maj.table["label"]).all()
    assert (ds.table["label"].to_numpy() == np.asarray(CLASSES)[truth]).all()
    for theta in ds.confusion.values():  # each near-perfect: diagonal ~ (n_k + 4) / (n_k + 5)
        assert np.diag(theta)[:5].min() > 0.9


def test_dawid_skene_hand_worked_case_and_prior():
    # One galaxy, three inspectors who vote class 1: the posterior puts it in class 1.
    post, conf, prior, _ = dawid_skene(np.array([0, 0, 0]), np.array([0, 1, 2]), np.array([1, 1, 1]), 1, 3, 2)
    assert post[0].argmax() == 1
    # A new inspector with no votes keeps the prior: accuracy 0.8 on the diagonal.
    post, conf, prior, _ = dawid_skene(np.array([0]), np.array([0]), np.array([0]), 1, 2, 3,
                                       prior_accuracy=0.8, prior_strength=5.0)
    np.testing.assert_allclose(conf[1], [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])


def test_min_votes_confidence_and_expert_override_every_method():
    votes = pd.DataFrame({"id": ["a", "a", "a", "b", "b", "c", "c", "c"],
                          "inspector": ["x", "y", "boss", "x", "y", "x", "y", "z"],
                          "label": ["Core", "Core", "Clean", "Core", "Core", "Core", "Core", "Skip"]})
    probs = np.array([[0.1, 0.1, 0.6, 0.1, 0.1]] * 3)
    for method in ("majority", "ds", "classifier"):
        res = compute_consensus(votes, method=method, experts={"boss"}, model_probabilities=probs)
        t = res.table.set_index("id")
        assert t.loc["a", "label"] == "Clean" and t.loc["a", "confidence"] == 1.0 and t.loc["a", "expert"]
        assert t.loc["b", "label"] == "undecided"  # 2 votes < min_votes 3
        assert t.loc["c", "label"] == "undecided"  # the Skip is no vote
        assert 0 < t.loc["b", "confidence"] <= 1
    maj = compute_consensus(votes, method="majority").table.set_index("id")
    assert maj.loc["a", "confidence"] == pytest.approx(2 / 3)


def test_classifier_aware_model_breaks_a_split():
    # Three inspectors split 1-1-1; the model is confident: the classifier method follows it.
    votes = pd.DataFrame({"id": ["a"] * 3 + ["b"] * 3 + ["c"] * 3,
                          "inspector": ["x", "y", "z"] * 3,
                          "label": ["Core", "Clean", "General", "Core", "Core", "Core", "Clean", "Clean", "Clean"]})
    probs = np.array([[0.05, 0.05, 0.8, 0.05, 0.05], [0.05, 0.05, 0.8, 0.05, 0.05],
                      [0.8, 0.05, 0.05, 0.05, 0.05]])
    res = compute_consensus(votes, method="classifier", model_probabilities=probs)
    t = res.table.set_index("id")
    assert compute_consensus(votes, method="majority").table.set_index("id").loc["a", "label"] == "undecided"
    assert t.loc["a", "label"] == "Core"
    assert t.loc[["b", "c"], "label"].tolist() == ["Core", "Clean"]
    assert res.weights["model"] > 0
    # Hand-computed: baseline error 1 - 1/2 (Core and Clean each decide one galaxy), inspectors
    # agree with the consensus on every comparable vote -> weight 1; the model agrees on both
    # decided galaxies -> weight 1 * sqrt(3 votes per galaxy).
    assert res.weights["model"] == pytest.approx(np.sqrt(3))
    assert res.weights["x"] == pytest.approx(1.0)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="consensus method"):
        compute_consensus(pd.DataFrame({"id": ["a"], "inspector": ["x"], "label": ["Core"]}), method="vote")
