"""Stamp-store layouts for the gallery's random access (not a test).

    .venv/bin/python tests/benchmarks/bench_stamps.py [--n 100000] [--pages 12] [--dir DIR]

A gallery page shows 48 galaxies picked anywhere in the catalog (a lasso over the map): with the
store chunked 256 galaxies per compressed block, reading one page decompresses up to 48 blocks of
256 stamps per stamp kind to use one stamp of each. This script builds a store of ``--n`` real-size
(50 x 50, five kinds) stamps in each layout and measures, in the same run:

* a page of 48 random galaxies through :meth:`core.io.stamps.StampStore.read` (the app's path),
  for the gallery's default kinds (residual, object-only) and for all five, median and p95 over
  ``--pages`` pages (the same pages in every layout);
* a page through a per-page read plan on today's layout (rows grouped by block, each block read
  once as a slice and the rows picked from it);
* a sequential scan of one kind block by block (what embedding and training read), galaxies/s;
* writing the store a prep task at a time (256 galaxies), galaxies/s; size on disk and files.

Layouts: 256 galaxies per block (today), 16 per block, and a zarr v3 shard of 256 galaxies (one
file per prep task, as today) holding blocks of 16 galaxies (``--all``: also blocks of 1 and 4).
Today's store stays on disk; each other layout is written, its pages read alternately with
today's (the same pages, so both see the same machine load; today's figures pool those pages),
then deleted, so at most two stores hold the page cache at a time.
Stamps: a pool of 512 synthetic galaxies (Sérsic host + substructure + noise,
tests/workspace_factory.make_galaxy), cropped to 50 x 50; stamp i is pool[i % 512], so
compression sees real-looking, distinct stamps within every block.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT))

from core.io.stamps import STAMP_KINDS, StampStore  # noqa: E402
from tests.workspace_factory import make_galaxy  # noqa: E402

SIZE = 50
PAGE = 48
POOL = 512
TASK = 256  # galaxies per prep task (prep.chunk)
LAYOUTS = [("256 per block (today)", 256, None), ("16 per block", 16, None),
           ("shard 256, blocks of 16", 256, 16)]
#: ``--all`` adds these (their writes and scans are several times slower than today's)
MORE_LAYOUTS = [("shard 256, blocks of 1", 256, 1), ("shard 256, blocks of 4", 256, 4)]
DEFAULT_KINDS = ("residual", "object_only")


def pool_stamps(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    classes = ["Clean", "Core", "General", "Asymmetric", "Peculiar"]
    out = {k: [] for k in STAMP_KINDS}
    lo = (100 - SIZE) // 2
    for i in range(POOL):
        inp, model, res, _ = make_galaxy(rng, 100, classes[i % 5])
        cut = (slice(lo, lo + SIZE), slice(lo, lo + SIZE))
        out["original"].append(inp[cut])
        out["model"].append(model[cut])
        out["residual"].append(res[cut])
        mask = model[cut] > np.percentile(model[cut], 70)
        out["object_only"].append(np.where(mask, res[cut], rng.normal(0, 0.01, (SIZE, SIZE))))
        out["goi_mask"].append(mask.astype(np.uint8))
    return {k: np.asarray(v, dtype=np.uint8 if k == "goi_mask" else np.float32) for k, v in out.items()}


def build(path: Path, n: int, chunk: int, read_chunk: int | None, pool: dict[str, np.ndarray]) -> float:
    """Write the store a prep task (TASK galaxies, a multiple of the chunk) at a time; seconds."""
    store = StampStore.create(path, n, SIZE, chunk=chunk, read_chunk=read_chunk)
    t = 0.0
    for start in range(0, n, TASK):
        stop = min(start + TASK, n)
        idx = np.arange(start, stop) % POOL
        blocks = {k: pool[k][idx] for k in STAMP_KINDS}
        t0 = time.perf_counter()
        for k in STAMP_KINDS:
            store.write(k, start, blocks[k])
        t += time.perf_counter() - t0
    return t


def read_plan(store: StampStore, kind: str, rows: np.ndarray) -> np.ndarray:
    """Rows grouped by block; each touched block read once as a slice; rows picked from it."""
    arr = store._array(kind)
    b = store.read_chunk
    order = np.argsort(rows)
    srt = rows[order]
    out = np.empty((len(rows), store.size, store.size), arr.dtype)
    blocks = srt // b
    for blk in np.unique(blocks):
        sel = blocks == blk
        lo, hi = srt[sel].min(), srt[sel].max() + 1
        part = arr[lo:hi]
        out[order[sel]] = part[srt[sel] - lo]
    return out


def disk(path: Path) -> tuple[int, int]:
    size = files = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            files += 1
            size += os.path.getsize(os.path.join(dirpath, name))
    return size, files


def timed(fn, reps) -> list[float]:
    out = []
    for r in reps:
        t0 = time.perf_counter()
        fn(r)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--all", action="store_true", help="also the sharded layouts with blocks of 1 and 4")
    ap.add_argument("--dir", default=None, help="where to build the stores (default: a temporary folder)")
    args = ap.parse_args()
    if args.all:
        LAYOUTS.extend(MORE_LAYOUTS)
    rng = np.random.default_rng(1)
    pages = [np.sort(rng.choice(args.n, PAGE, replace=False)) for _ in range(args.pages)]
    pool = pool_stamps()
    base = Path(tempfile.mkdtemp(prefix="bench_stamps_", dir=args.dir))
    print(f"{args.n} stamps of {SIZE} x {SIZE}, 5 kinds; pages of {PAGE} random galaxies, {args.pages} pages; "
          f"zarr {__import__('zarr').__version__}; stores in {base}")
    def measure(store: StampStore, inner, pages_) -> tuple[list, list, list]:
        p_def = timed(lambda r: [store.read(k, r) for k in DEFAULT_KINDS], pages_)
        p_all = timed(lambda r: [store.read(k, r) for k in STAMP_KINDS], pages_)
        p_plan = timed(lambda r: [read_plan(store, k, r) for k in DEFAULT_KINDS], pages_) if inner is None else []
        return p_def, p_all, p_plan

    def scan(store: StampStore) -> float:
        t0 = time.perf_counter()
        for s in range(0, args.n, TASK):
            store.read("object_only", slice(s, min(s + TASK, args.n)))
        return args.n / (time.perf_counter() - t0)

    def make(j: int) -> tuple[StampStore, tuple]:
        name, chunk, inner = LAYOUTS[j]
        path = base / f"stamps-{j}.zarr"
        t_write = build(path, args.n, chunk, inner, pool)
        size, files = disk(path)
        store = StampStore.open(path, mode="r")
        # the page answers are the same in every layout
        assert np.array_equal(store.read("residual", pages[0]), pool["residual"][pages[0] % POOL])
        print(f"  {name}: written", flush=True)
        return store, (args.n / t_write, size, files)

    # Today's layout stays on disk; each other layout is built, measured page by page alternately
    # with today's (so both see the same machine load), then deleted: two stores at a time, which
    # the page cache of a server with a store of this size would also hold.
    results = {}
    try:
        today, built0 = make(0)
        results[0] = ([], [], [], [], built0)
        for j in range(1, len(LAYOUTS)):
            store, built = make(j)
            mine = ([], [], [])
            for i, r in enumerate(pages):
                order = [(0, today), (j, store)] if i % 2 else [(j, store), (0, today)]
                for k, st in order:
                    out = measure(st, LAYOUTS[k][2], [r])
                    target = results[0][:3] if k == 0 else mine
                    for acc, val in zip(target, out):
                        acc += val
            results[j] = (*mine, [scan(store)], built)
            shutil.rmtree(store.path)
        results[0][3].append(scan(today))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = [(LAYOUTS[j][0], res[0], res[1], res[2] or None, float(np.mean(res[3])), *res[4])
            for j, res in sorted(results.items())]

    base_def = np.median(rows[0][1])
    print(f"\n{'layout':<26} {'page, 2 kinds':>22} {'page, 5 kinds':>22} {'scan':>12} {'write':>12} "
          f"{'disk':>9} {'files':>8}")
    print(f"{'':<26} {'median / p95 ms (x today)':>22} {'median / p95 ms':>22} {'gal/s':>12} {'gal/s':>12} "
          f"{'GB':>9} {'':>8}")
    for name, p_def, p_all, p_plan, scan, write, size, files in rows:
        md, pd = np.median(p_def) * 1e3, np.percentile(p_def, 95) * 1e3
        ma, pa = np.median(p_all) * 1e3, np.percentile(p_all, 95) * 1e3
        print(f"{name:<26} {md:7.1f} / {pd:6.1f} ({np.median(p_def) / base_def:5.3f}x) {ma:9.1f} / {pa:8.1f} "
              f"{scan:12.0f} {write:12.0f} {size / 1e9:9.2f} {files:8d}")
        if p_plan is not None:
            mp, pp = np.median(p_plan) * 1e3, np.percentile(p_plan, 95) * 1e3
            print(f"{'  + per-page read plan':<26} {mp:7.1f} / {pp:6.1f} ({np.median(p_plan) / base_def:5.3f}x)")
    print("\n(shared machine: 2 cores used by several engineers at once; ratios are within this run)")


if __name__ == "__main__":
    main()
