"""Acquisition scores on models and arrays with known behaviour: BALD, entropy, margin, diversity."""

from __future__ import annotations

import numpy as np
import pytest

from core.latent.acquisition import (
    bald,
    diverse_order,
    margin_score,
    mc_dropout_probabilities,
    predictive_entropy,
    vote_entropy,
)

LN2 = np.log(2.0)


def test_bald_hand_computed():
    # Two passes that disagree completely: H[mean] = ln 2, mean H = 0.
    assert bald(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))[0] == pytest.approx(LN2)
    # Passes that agree (even if uncertain) carry no information about the weights.
    agree = np.array([[[0.5, 0.5], [0.9, 0.1]]] * 5)
    np.testing.assert_allclose(bald(agree), [0.0, 0.0], atol=1e-12)
    # T = 1: zero mutual information whatever the prediction.
    np.testing.assert_allclose(bald(np.array([[[0.2, 0.8], [0.6, 0.4]]])), [0.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError):
        bald(np.ones((3, 2)))


def test_entropy_margin_vote_entropy_hand_computed():
    p = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.7, 0.2, 0.1]])
    np.testing.assert_allclose(predictive_entropy(p), [LN2, 0.0, -(0.7 * np.log(0.7) + 0.2 * np.log(0.2)
                                                              + 0.1 * np.log(0.1))])
    np.testing.assert_allclose(margin_score(p), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(vote_entropy(np.array([[1, 1, 0], [3, 0, 0], [0, 0, 0]])), [LN2, 0.0, 0.0])


@pytest.fixture(scope="module")
def dropout_model():
    """Input(4) -> Dropout(0.5) -> Dense(2, softmax): x0 pushes class 0, x3 class 1, by 10 each."""
    import keras

    inp = keras.Input(shape=(4,))
    x = keras.layers.Dropout(0.5)(inp)
    dense = keras.layers.Dense(2, activation="softmax")
    out = dense(x)
    model = keras.Model(inp, out)
    w = np.zeros((4, 2), np.float32)
    w[0, 0] = 10.0
    w[3, 1] = 10.0
    dense.set_weights([w, np.zeros(2, np.float32)])
    return model


def test_bald_by_mc_dropout_is_higher_where_the_passes_disagree(dropout_model):
    # Galaxy 0: dropout keeps x0 or x3 at random -> the passes flip between the classes.
    # Galaxy 1: all zeros -> every pass gives (0.5, 0.5) -> the passes agree.
    x = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]], np.float32)
    mc = mc_dropout_probabilities(dropout_model, x, passes=400, seed=3)
    assert mc.shape == (400, 2, 2)
    mi = bald(mc)
    assert mi[1] == pytest.approx(0.0, abs=1e-6)
    # Expected: p = (.5,.5) when both or neither input survive (prob 1/2), else ~one-hot:
    # MI = ln 2 - (1/2) ln 2 = 0.347.
    assert mi[0] == pytest.approx(0.5 * LN2, abs=0.05)
    # The default T = 20 ranks them the same way; T = 1 gives zero mutual information.
    assert bald(mc_dropout_probabilities(dropout_model, x, passes=20, seed=0))[0] > 0.1
    np.testing.assert_allclose(bald(mc_dropout_probabilities(dropout_model, x, passes=1, seed=0)), 0.0, atol=1e-9)
    # Seeded: the same seed gives the same passes.
    np.testing.assert_array_equal(mc, mc_dropout_probabilities(dropout_model, x, passes=400, seed=3))


def test_mc_dropout_needs_a_dropout_layer():
    import keras

    inp = keras.Input(shape=(3,))
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(inp))
    with pytest.raises(ValueError, match="Dropout"):
        mc_dropout_probabilities(model, np.zeros((1, 3), np.float32), passes=2)


def test_diversity_spreads_the_queue_across_clusters():
    rng = np.random.default_rng(0)
    clusters = np.repeat(np.arange(4), 50)
    scores = rng.random(200) + np.where(clusters == 0, 10.0, 0.0)  # cluster 0 holds the 50 best
    plain = diverse_order(scores, clusters, 12, diversity=0.0)
    assert set(clusters[plain]) == {0}
    spread = diverse_order(scores, clusters, 12, diversity=0.5)
    counts = np.bincount(clusters[spread], minlength=4)
    # Rank scores: cluster 0's best is 1, the others' best ~ 0.75; with the factor 0.5 per pick
    # cluster 0 takes the 1st pick, then 0.5 < 0.75: the others take their turns.
    assert counts.min() >= 2 and counts[0] <= 5
    robin = diverse_order(scores, clusters, 8, diversity=1.0)
    np.testing.assert_array_equal(np.bincount(clusters[robin], minlength=4), [2, 2, 2, 2])
    assert robin[0] == plain[0]  # the best galaxy first in every case
    assert len(set(spread.tolist())) == 12  # no galaxy twice
    with pytest.raises(ValueError):
        diverse_order(scores, clusters, 3, diversity=1.5)
