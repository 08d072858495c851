"""Benchmark: consensus labels for 10^6 galaxies (target: well under a second).

Run ``.venv/bin/python tests/benchmarks/bench_votes.py [--galaxies N] [--repeat R] [--db FILE]``.

Part 1 (in memory): the vectorised rule.

Times :func:`core.votes.consensus.consensus_from_votes` on ~4 votes per galaxy (random labels, 1 % of
votes by experts) with the inputs the vote store provides (string ids and labels), and with
integer / categorical inputs; the baseline, measured in the same run, is the same rule written
the obvious way with pandas (``groupby`` + ``value_counts`` + a per-galaxy ``apply``) on a
subset, scaled per galaxy. Speeds are reported as ratios to it. The vectorised result is
checked against the baseline on the subset.

Part 2 (store): a SQLite vote store holding N galaxies x ~4 current votes (plus 2 % superseded
votes and one undone action), built directly with sqlite3 in one transaction (``--db FILE``
keeps it for the next run). Times ``VoteStore.consensus()`` end to end (first call, which also
reads the galaxy ids, and a repeated call, which reuses them), its integer export of the
current votes alone, and the string path it replaced (``current_votes()`` + the rule on
strings; ``--skip-old`` leaves it out). The store result is checked against the string path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.labels import SKIP, VOTE_LABELS  # noqa: E402
from core.votes.consensus import consensus_from_codes, consensus_from_votes, count_votes, decide  # noqa: E402


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
    parser.add_argument("--db", type=Path, default=None, help="SQLite store to build or reuse (default: temporary)")
    parser.add_argument("--skip-old", action="store_true", help="do not time the old string path")
    parser.add_argument("--store-only", action="store_true", help="only part 2")
    args = parser.parse_args()
    n = args.galaxies

    galaxy, label_code, expert = make_votes(n)
    if not args.store_only:
        in_memory(args, n, galaxy, label_code, expert)
    bench_store(args, n, galaxy, label_code, expert)


def in_memory(args, n, galaxy, label_code, expert) -> None:
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
    t, _ = best_of(args.repeat, lambda: consensus_from_codes(galaxy, label_code, expert, ids=ids))
    rows.append(("consensus_from_codes: integer codes (the store's path)", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(galaxy, lab_cat, expert, ids=np.arange(n)))
    rows.append(("consensus_from_votes: integer ids, categorical labels", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(gal_str, lab_str, expert))
    rows.append(("consensus_from_votes: string ids and labels", t))
    t, _ = best_of(args.repeat, lambda: consensus_from_votes(gal_str, lab_str, expert, ids=ids))
    rows.append(("consensus_from_votes: string ids + full id list", t))

    width = max(len(r[0]) for r in rows)
    for name, t in rows:
        print(f"{name:<{width}}  {t:7.3f} s   {base_per_galaxy * n / t:8.0f}x baseline")


def build_store(path: Path, n: int, galaxy, label_code, expert) -> None:
    """A vote store with these votes (inspector j of a galaxy is (offset + j) % 12; experts are
    inspector 12), 2 % superseded earlier votes and one undone action, via sqlite3 directly."""
    import sqlite3

    from core.votes.store import open_store

    rng = np.random.default_rng(1)
    open_store(f"sqlite:///{path}").close()  # the schema
    ids = [f"G{i:07d}" for i in range(n)]
    start = np.r_[0, np.flatnonzero(np.diff(galaxy)) + 1]
    rank = np.arange(len(galaxy)) - np.repeat(start, np.diff(np.r_[start, len(galaxy)]))
    inspector = np.where(expert, 13, (rng.integers(0, 12, n)[galaxy] + rank) % 12 + 1)
    # Superseded: 2 % of the votes were first cast with another label, in an earlier action.
    old = rng.random(len(galaxy)) < 0.02
    names = list(VOTE_LABELS)
    now = "2024-01-01 00:00:00.000000"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    con.executemany("INSERT INTO galaxies (pk, id) VALUES (?, ?)", ((i + 1, g) for i, g in enumerate(ids)))
    con.executemany("INSERT INTO inspectors (id, name, role, created_at) VALUES (?, ?, ?, ?)",
                    [(k, f"insp{k:02d}", "expert" if k == 13 else "inspector", now) for k in range(1, 14)])
    # Action k (1..13): inspector k's earlier (superseded) votes; 14..26: their current ones;
    # 27: a cast by inspector 1 that was undone (action 28).
    con.executemany("INSERT INTO actions (id, inspector_id, kind, undoes, source, n_votes, created_at) "
                    "VALUES (?, ?, 'cast', NULL, 'simulated', 0, ?)", [(a, (a - 1) % 13 + 1, now) for a in range(1, 28)])
    con.execute("INSERT INTO actions (id, inspector_id, kind, undoes, source, n_votes, created_at) "
                "VALUES (28, 1, 'undo', 27, 'simulated', 0, ?)", (now,))

    def rows(mask, action_base, labels):
        for g, i, lab in zip(galaxy[mask].tolist(), inspector[mask].tolist(), labels.tolist()):
            yield (action_base + i, ids[g], i, names[lab], "", "simulated", now, g + 1, lab)

    sql = ("INSERT INTO votes (action_id, galaxy_id, inspector_id, label, comment, source, created_at, "
           "galaxy_pk, label_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    con.executemany(sql, rows(old, 0, (label_code[old] + 1) % len(names)))
    con.executemany(sql, rows(np.ones(len(galaxy), bool), 13, label_code))
    undone = rng.random(len(galaxy)) < 0.001
    con.executemany(sql, ((27,) + r[1:] for r in rows(undone, 0, np.full(undone.sum(), names.index("Peculiar")))))
    con.execute("COMMIT")
    con.close()


def bench_store(args, n, galaxy, label_code, expert) -> None:
    import tempfile

    from core.votes.store import open_store

    tmp = None
    path = args.db
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_votes_")
        path = Path(tmp.name) / "votes.sqlite"
    if not path.exists():
        t0 = time.perf_counter()
        build_store(path, n, galaxy, label_code, expert)
        print(f"\nbuilt {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
    else:
        print(f"\nreusing {path}")
    rows = []
    with open_store(f"sqlite:///{path}") as store:
        t0 = time.perf_counter()
        first = store.consensus()
        rows.append(("VoteStore.consensus(), first call (reads the galaxy ids)", time.perf_counter() - t0))
        t, again = best_of(args.repeat, store.consensus)
        rows.append(("VoteStore.consensus(), repeated (galaxy ids cached)", t))
        with store.engine.connect() as conn:
            t, codes = best_of(args.repeat, lambda: store._current_codes(conn))
            expert_flags = store._expert_lut(conn)[codes[2]]
        rows.append(("  of which: current votes as integer codes (SQL + parse + dedup)", t))
        t, _ = best_of(args.repeat, lambda: consensus_from_codes(codes[0] - 1, codes[1], expert_flags,
                                                                  ids=again["id"].to_numpy()))
        rows.append(("  of which: the vectorised rule on those codes", t))
        pd.testing.assert_frame_equal(first, again)
        print(f"store: {len(first):,} galaxies, {len(codes[0]):,} current votes")
        if not args.skip_old:
            def old_path():
                votes = store.current_votes()
                return consensus_from_votes(votes["id"].to_numpy(object), votes["label"].to_numpy(object),
                                            (votes["role"] == "expert").to_numpy(bool), ids=store.galaxy_ids())
            t, old = best_of(1, old_path)
            rows.append(("old path: current_votes() (strings) + the rule on strings", t))
            pd.testing.assert_frame_equal(first, old)
            print("store consensus identical to the string path")
    base = rows[-1][1] if not args.skip_old else None
    width = max(len(r[0]) for r in rows)
    for name, t in rows:
        ratio = f"   {base / t:6.1f}x the old path" if base else ""
        print(f"{name:<{width}}  {t:7.3f} s{ratio}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
