"""The 2/3 consensus rule and the agreement statistics, on hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.labels import VOTE_LABELS
from core.votes.agreement import compute_agreement, confusion_matrices, fleiss_kappa, inspector_agreement
from core.votes.consensus import consensus_from_codes, consensus_from_votes, count_votes, decide


def one(labels, expert=None, **kw):
    """Consensus row of a single galaxy voted ``labels``."""
    df = consensus_from_votes(["g"] * len(labels), labels, expert, **kw)
    return df.iloc[0]


@pytest.mark.parametrize("labels, expected, n", [
    (["Core", "Core", "Clean"], "Core", 3),  # 2-1: exactly 2/3 wins
    (["Core", "Core", "Clean", "Clean"], "undecided", 4),  # 2-2
    (["Core", "Core"], "undecided", 2),  # fewer than min_votes
    (["Core"], "undecided", 1),
    (["Core", "Core", "Core"], "Core", 3),
    (["Core", "Core", "Clean", "General"], "undecided", 4),  # 2/4 < 2/3
    (["Core", "Core", "Core", "Clean"], "Core", 4),  # 3/4
    (["Core", "Core", "Core", "Clean", "Clean"], "undecided", 5),  # 3/5 < 2/3
    (["Core"] * 4 + ["Clean"] * 2, "Core", 6),  # 4/6 = 2/3 exactly
    (["FitQuality"] * 3, "FitQuality", 3),  # the flag can win
    (["Skip"] * 3, "undecided", 0),  # skips are no votes
    (["Core", "Core", "Skip"], "undecided", 2),  # ... so 2 judgments < 3
    (["Core", "Core", "Clean", "Skip"], "Core", 3),  # ... and do not dilute the 2/3
])
def test_two_thirds_rule(labels, expected, n):
    row = one(labels)
    assert row["label"] == expected
    assert row["n_votes"] == n
    assert row["Skip"] == labels.count("Skip")
    assert not row["expert"]


def test_expert_overrides_and_latest_expert_wins():
    row = one(["Core", "Core", "Core", "Clean"], expert=[False, False, False, True])
    assert (row["label"], bool(row["expert"]), row["n_votes"]) == ("Clean", True, 4)
    row = one(["Peculiar"], expert=[True])  # a lone expert validates
    assert (row["label"], bool(row["expert"])) == ("Peculiar", True)
    row = one(["Core", "Asymmetric", "General"], expert=[True, True, False])  # last expert vote
    assert row["label"] == "Asymmetric"
    row = one(["Core", "Core", "Core", "Skip"], expert=[False, False, False, True])  # expert skip: no validation
    assert (row["label"], bool(row["expert"])) == ("Core", False)


def test_rule_is_configurable():
    assert one(["Core", "Core"], min_votes=2)["label"] == "Core"
    assert one(["Core", "Core", "Clean"], fraction=0.75)["label"] == "undecided"
    assert one(["Core", "Clean"], min_votes=2, fraction=0.5)["label"] == "undecided"  # tie
    assert one(["Core", "Core", "Clean", "General"], fraction=0.5)["label"] == "Core"
    with pytest.raises(ValueError, match="fraction"):
        one(["Core"], fraction=0)
    with pytest.raises(ValueError, match="min_votes"):
        one(["Core"], min_votes=0)


def test_many_galaxies_columns_and_unvoted_ids():
    df = consensus_from_votes(
        ["b", "a", "b", "b", "a"], ["Clean", "Core", "Clean", "Clean", "Core"],
        ids=["a", "b", "c"])
    assert list(df.columns) == ["id", "label", "n_votes", *VOTE_LABELS, "expert"]
    assert list(df["id"]) == ["a", "b", "c"]
    assert list(df["label"]) == ["undecided", "Clean", "undecided"]
    assert list(df["n_votes"]) == [2, 3, 0]
    assert list(df["Core"]) == [2, 0, 0]
    with pytest.raises(ValueError, match="unknown galaxy"):
        consensus_from_votes(["z"], ["Core"], ids=["a"])
    with pytest.raises(ValueError, match="unknown label"):
        consensus_from_votes(["a"], ["Spiral"])


def test_categorical_input_gives_the_same_result():
    rng = np.random.default_rng(1)
    g = rng.integers(0, 200, 1000)
    lab = np.array(VOTE_LABELS, dtype=object)[rng.integers(0, len(VOTE_LABELS), 1000)]
    ex = rng.random(1000) < 0.05
    a = consensus_from_votes(g, lab, ex, ids=np.arange(200))
    b = consensus_from_votes(g, pd.Categorical(lab, categories=VOTE_LABELS[::-1]), ex, ids=np.arange(200))
    pd.testing.assert_frame_equal(a, b)


def test_vectorised_matches_a_plain_loop():
    rng = np.random.default_rng(7)
    n_gal = 300
    g = np.repeat(np.arange(n_gal), rng.integers(0, 7, n_gal))
    lab = np.array(VOTE_LABELS, dtype=object)[rng.choice(len(VOTE_LABELS), len(g), p=[.4, .1, .2, .15, .05, .03, .07])]
    df = consensus_from_votes(g, lab, ids=np.arange(n_gal))
    for i in range(n_gal):
        mine = [x for x in lab[g == i] if x != "Skip"]
        n = len(mine)
        best = max(set(mine), key=mine.count) if mine else None
        ok = n >= 3 and 3 * mine.count(best) >= 2 * n
        assert df.loc[i, "label"] == (best if ok else "undecided")
        assert df.loc[i, "n_votes"] == n


def test_integer_codes_give_the_string_result():
    rng = np.random.default_rng(11)
    n_gal, n_votes = 500, 2500
    ids = np.array([f"J{i:05d}+{i % 13}" for i in range(n_gal)], dtype=object)
    g = rng.integers(0, n_gal - 20, n_votes)  # the last 20 galaxies have no votes
    lab = rng.choice(len(VOTE_LABELS), n_votes, p=[.35, .15, .2, .1, .05, .05, .1])
    ex = rng.random(n_votes) < 0.03
    names = np.array(VOTE_LABELS, dtype=object)
    for kw in ({}, {"min_votes": 2, "fraction": 0.5}, {"min_votes": 4, "fraction": 0.75}):
        by_code = consensus_from_codes(g, lab, ex, ids=ids, **kw)
        by_string = consensus_from_votes(ids[g], names[lab], ex, ids=ids, **kw)
        pd.testing.assert_frame_equal(by_code, by_string)
        # Order of the vocabulary does not matter (codes follow the given labels).
        rev = consensus_from_codes(g, len(VOTE_LABELS) - 1 - lab, ex, ids=ids, labels=VOTE_LABELS[::-1], **kw)
        pd.testing.assert_frame_equal(rev[by_code.columns], by_code)
    assert set(by_string["label"]) > {"undecided"} and by_string["expert"].any()
    assert (by_code["n_votes"].iloc[-20:] == 0).all()
    with pytest.raises(ValueError, match="galaxy codes"):
        consensus_from_codes([0, 3], [0, 0], ids=["a", "b"])
    with pytest.raises(ValueError, match="label codes"):
        consensus_from_codes([0], [len(VOTE_LABELS)], ids=["a"])
    with pytest.raises(ValueError, match="unknown galaxy"):
        consensus_from_votes(["a", None], ["Core", "Core"], ids=["a"])


def test_kernels():
    counts = count_votes(np.array([0, 0, 1, 1, 1]), np.array([2, 2, 0, 0, 1]), 3, 4)
    assert counts.tolist() == [[0, 0, 2, 0], [2, 1, 0, 0], [0, 0, 0, 0]]
    label, n = decide(counts, min_votes=2, expert_label=np.array([-1, -1, 3]))
    assert label.tolist() == [2, 0, 3] and n.tolist() == [2, 3, 0]


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------
def test_fleiss_kappa_matches_the_textbook_example():
    # Fleiss (1971) as tabulated on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    # Published: P_bar = 0.378, P_e = 0.213, kappa = 0.210.
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_edge_cases():
    assert fleiss_kappa([[2, 0], [0, 2]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)  # (0 - 0.5) / 0.5
    assert np.isnan(fleiss_kappa([[3, 0], [2, 0]]))  # one category only: undefined
    assert np.isnan(fleiss_kappa([[1, 0]]))  # nobody with two ratings
    # Unequal raters: subjects (a: 3 of A), (b: 1 A 1 B); P = [1, 0], p = [4/5, 1/5]
    # P_e = 0.68 -> kappa = (0.5 - 0.68) / 0.32 = -0.5625; the 1-rating subject is ignored.
    assert fleiss_kappa([[3, 0], [1, 1], [0, 1]]) == pytest.approx(-0.5625)


def test_inspector_agreement_and_confusion():
    votes = pd.DataFrame({
        "id": ["a", "a", "a", "b", "b", "b", "c"],
        "inspector": ["x", "y", "z", "x", "y", "z", "z"],
        "label": ["Core", "Core", "Clean", "General", "General", "Skip", "Core"],
    })
    cons = consensus_from_votes(votes["id"], votes["label"], min_votes=2)
    assert list(cons["label"]) == ["Core", "General", "undecided"]
    per = inspector_agreement(votes, cons).set_index("inspector")
    assert per.loc["x", ["n_votes", "n_compared", "n_agree"]].tolist() == [2, 2, 2]
    assert per.loc["z", ["n_votes", "n_skip", "n_compared", "n_agree"]].tolist() == [3, 1, 1, 0]
    assert per.loc["z", "agreement"] == 0.0 and per.loc["x", "agreement"] == 1.0
    cm = confusion_matrices(votes, cons)
    assert cm["z"].loc["Core", "Clean"] == 1 and cm["z"].loc["General", "Skip"] == 1
    assert int(cm["z"].to_numpy().sum()) == 2  # c is undecided: not in the matrix
    assert cm["x"].loc["General", "General"] == 1
    ag = compute_agreement(votes, cons)
    assert ag.n_galaxies == 2
    # a: Core 2 Clean 1; b: General 2. P = [1/3, 1]; p = [1/5 Clean, 2/5 General, 2/5 Core]
    # P_e = 0.36, kappa = (2/3 - 0.36) / 0.64
    assert ag.kappa == pytest.approx((2 / 3 - 0.36) / 0.64)
    text = ag.to_text()
    assert "Fleiss' kappa: 0.479" in text and "Confusion matrix of 'z'" in text
