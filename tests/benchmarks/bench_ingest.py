"""Benchmark of `resx ingest` header reading (not a test).

Run as ``.venv/bin/python tests/benchmarks/bench_ingest.py [N] [REPS] [CHUNK]``.

Writes N small GALFIT blocks (20x20 pixels, with :func:`core.io.galfit.write_block`; default 2000)
and a catalog of them, then measures ``core.workspace.ingestion.ingest`` (cuts off) with 1 worker (headers read
in the driver) and 2 workers (local process scheduler, worker start-up included), the two runs
interleaved ``REPS`` times (best of each kept; default 3). Reports blocks/s of each and the ratio
2 workers / 1 worker measured in the same run. CHUNK (default ``core.workspace.ingestion.HEADER_CHUNK``) is
the blocks per task. Also reports the cost of the header reading alone
(:func:`core.workspace.ingestion.read_header_chunk` on every block) to show what the rest of ingest costs.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import core.workspace.ingestion  # noqa: E402
from core.io.galfit import GalfitParameter, write_block  # noqa: E402
from core.parallel import start_method  # noqa: E402
from core.workspace.ingestion import ingest, read_header_chunk  # noqa: E402

NO_CUTS = {"cuts": {k: None for k in ("hmag_max", "logmass_min", "z_min", "z_max", "photflag")}}


def write_survey(root: Path, n: int) -> Path:
    """N blocks in root/blocks and root/catalog.ecsv (id, block)."""
    blocks = root / "blocks"
    blocks.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"g{i:07d}" for i in range(n)]
    for i, gid in enumerate(ids):
        model = rng.random((20, 20)).astype(np.float32)
        params = {"XC": GalfitParameter(10.5 + rng.random(), 0.01), "YC": GalfitParameter(10.5, 0.01),
                  "MAG": GalfitParameter(22.0 + rng.random(), 0.05), "RE": GalfitParameter(3.0, 0.1),
                  "N": GalfitParameter(2.0, 0.1), "AR": GalfitParameter(0.8, 0.01),
                  "PA": GalfitParameter(30.0, 1.0), "SKY": GalfitParameter(1e-3, 1e-4)}
        write_block(blocks / f"{gid}.fits", model + 0.01, model, params=params, zeropoint=25.9463,
                    chi2nu=1.1, extra_header={"DATAIN": "gal.fits", "PSF": "psf.fits"})
    cat = root / "catalog.ecsv"
    Table({"id": ids, "block": [f"blocks/{g}.fits" for g in ids]}).write(cat)
    return cat


def main(n: int = 2000, reps: int = 3, chunk: int | None = None) -> None:
    logging.basicConfig(level=logging.WARNING)
    if chunk:
        core.workspace.ingestion.HEADER_CHUNK = chunk
    size = core.workspace.ingestion.HEADER_CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        cat = write_survey(tmp / "survey", n)
        print(f"wrote {n} blocks (20x20) in {time.perf_counter() - t0:.1f} s")
        paths = sorted(str(p) for p in (tmp / "survey" / "blocks").glob("*.fits"))
        read_header_chunk(paths[:20])  # warm up
        t0 = time.perf_counter()
        read_header_chunk(paths)
        t_read = time.perf_counter() - t0
        load0 = os.getloadavg()[0]
        times: dict[int, list[float]] = {1: [], 2: []}
        for rep in range(max(1, reps)):  # interleaved; keep the best (a shared machine is noisy)
            for workers in (1, 2):
                t0 = time.perf_counter()
                ingest(cat, tmp / f"ws{workers}", config=NO_CUTS, force=True, workers=workers,
                       progress=False)
                times[workers].append(time.perf_counter() - t0)
        best = {w: min(t) for w, t in times.items()}
        print("all runs (s): " + "; ".join(f"{w} worker(s) " + ", ".join(f"{x:.2f}" for x in t)
                                          for w, t in times.items()))
        print(f"read_header_chunk alone, in this process: {n / t_read:.0f} blocks/s")
        tasks = -(-n // size)
        for workers, dt in best.items():
            how = ("serial, in this process" if workers == 1 else
                   f"{tasks} tasks of <= {size} blocks, processes started by {start_method()}, "
                   "start-up included")
            print(f"ingest, {workers} worker(s): {n / dt:.0f} blocks/s ({n} blocks in {dt:.2f} s; "
                  f"{how}; best of {max(1, reps)})")
        print(f"speed-up 2 workers / 1 worker: {best[1] / best[2]:.2f}x (best of each); "
              f"{np.median(times[1]) / np.median(times[2]):.2f}x (median of each)")
        print(f"1-min load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after, on "
              f"{len(os.sched_getaffinity(0))} cores (other work on the machine slows the 2-worker runs most)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
