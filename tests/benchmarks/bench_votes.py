"""Benchmark: consensus labels for 10^6 galaxies (target: well under a second).

Run ``.venv/bin/python tests/benchmarks/bench_votes.py [--galaxies N] [--repeat R]``.

Times :func:`core.consensus.consensus_from_votes` on ~4 votes per galaxy (random labels, 1 % of
votes by experts) with the inputs the vote store provides (string ids and labels), and with
integer / categorical inputs; the baseline, measured in the same run, is the same rule written
the obvious way with pandas (``groupby`` + ``value_counts`` + a per-galaxy ``apply``) on a
subset, scaled per galaxy. Speeds are reported as ratios to it. The vectorised result is
checked against the baseline on the subset.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.consensus import consensus_from_votes, count_votes, decide  # noqa: E402
from core.labels import SKIP, VOTE_LABELS  # noqa: E402


def make_votes(n_galaxies: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    per = rng.integers(1, 8, n_galaxies)  # 1..7 votes, mean 4
    galaxy = np.repeat(np.arange(n_galaxies), per)
    truth = rng.integers(0, 6, n_galaxies)
    agree = rng.random(len(galaxy)) < 0.7
    label = np.where(agree, truth[galaxy], rng.integers(0, len(VOTE_LABELS), len(galaxy)))
    expert = rng.random(len(galaxy)) < 0.01
    return galaxy, label, expert


def pandas_baseline(gal_ids, labels, expert, min_votes=3, fraction=2 / 3):
    """The rule written directly with pandas, one galaxy at a time."""
    df = pd.DataFrame({"id": gal_ids, "label": labels, "expert": expert})

    def rule(group: pd.DataFrame) -> str:
        judged = group[group["label"] != SKIP]
        exp = judged[judged["expert"]]
        if len(exp):
            return exp["label"].iloc[-1]
        counts = judged["label"].value_counts()
        n = len(judged)
        if n >= min_votes and len(counts) and counts.iloc[0] * 3 >= 2 * n and (counts == counts.iloc[0]).sum() == 1:
            return counts.index[0]
        return "undecided"

    return df.groupby("id", sort=True)[["label", "expert"]].apply(rule)


def best_of(repeat, fn):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=1_000_000)
    parser.add_argument("--baseline-galaxies", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.galaxies

    galaxy, label_code, expert = make_votes(n)
    names = np.array(VOTE_LABELS, dtype=object)
    ids = np.array([f"G{i:07d}" for i in range(n)], dtype=object)
    gal_str, lab_str = ids[galaxy], names[label_code]
    lab_cat = pd.Categorical.from_codes(label_code, categories=VOTE_LABELS)
    print(f"{n:,} galaxies, {len(galaxy):,} votes ({len(galaxy) / n:.2f} per galaxy), best of {args.repeat}")

    # Baseline on a subset, per galaxy.
    m = args.baseline_galaxies
    sub = galaxy < m
    t_base, base = best_of(1, lambda: pandas_baseline(ids[galaxy[sub]], lab_str[sub], expert[sub]))
    base_per_galaxy = t_base / m
    vec = consensus_from_votes(ids[galaxy[sub]], lab_str[sub], expert[sub], ids=ids[:m]).set_index("id")["label"]
    assert (vec.loc[base.index] == base).all(), "vectorised consensus disagrees with the pandas baseline"
    print(f"baseline (pandas groupby/apply): {t_base:.2f} s for {m:,} galaxies "
          f"-> {base_per_galaxy * n:.1f} s extrapolated to {n:,}; results identical on the subset")

    rows = []
    skip = VOTE_LABELS.index(SKIP)
    t, counts = best_of(args.repeat, lambda: count_votes(galaxy, label_code, n, len(VOTE_LABELS)))
    rows.append(("kernel: count_votes (integer codes)", t))
    t, _ = best_of(args.repeat, lambda: decide(counts, skip_index=skip))
    rows.append(("kernel: decide (2/3 rule on counts)", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(galaxy, lab_cat, expert, ids=np.arange(n)))
    rows.append(("consensus_from_votes: integer ids, categorical labels", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(gal_str, lab_str, expert))
    rows.append(("consensus_from_votes: string ids and labels", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(gal_str, lab_str, expert, ids=ids))
    rows.append(("consensus_from_votes: string ids + full id list", t))

    width = max(len(r[0]) for r in rows)
    for name, t in rows:
        print(f"{name:<{width}}  {t:7.3f} s   {base_per_galaxy * n / t:8.0f}x baseline")


if __name__ == "__main__":
    main()
