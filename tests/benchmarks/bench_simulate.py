"""Benchmark: survey simulation + single-Sérsic fit throughput (issue 2, item 6, simulate half).

Run: ``.venv/bin/python tests/benchmarks/bench_simulate.py [--n 24] [--workers 2]``

Reports, for one core (the synchronous scheduler, in this process; CPU time of this process, so
that other users of a shared machine disturb the numbers less):

* galaxies per second per core for the whole per-galaxy job (render + fit + write the block),
  and the split between rendering the scene, fitting and writing;
* each stage as a ratio to the baseline measured in the same run: one evaluation of the
  PSF-convolved Sérsic model on the same 100×100 stamp (``sersic_image`` + ``PSFConvolver``);

and, with ``--workers W`` (W > 1), the throughput of ``simulate_survey`` on W local processes
(wall time, including process start-up), with the speed-up over one core. The demo's budget is
1,000 galaxies in ≤ 40 s on 2 cores: 80 ms per galaxy per core, start-up included.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.fitting.fit import fit_sersic  # noqa: E402
from core.fitting.sersic import PSFConvolver, sersic_image  # noqa: E402
from core.io.galfit import write_block  # noqa: E402
from core.simulation import survey as simulate  # noqa: E402


def _best(f, repeat: int = 50) -> float:
    ts = []
    for _ in range(repeat):
        t = time.process_time()
        f()
        ts.append(time.process_time() - t)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24, help="galaxies (default 24)")
    ap.add_argument("--workers", type=int, default=2, help="local processes for the survey run (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    psf = simulate.wfc3_psf()
    size = 100
    conv = PSFConvolver(psf, (size, size))
    t_model = _best(lambda: conv(sersic_image((size, size), 50.7, 50.3, 22.0, 5.0, 2.0, 0.7, 30.0,
                                              simulate.ZEROPOINT)))

    classes = simulate.assign_classes(args.n, args.seed)
    t_render = t_fit = t_write = 0.0
    nfev = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, cls in enumerate(classes):
            row = dict(simulate._CATALOG_COLUMNS)
            rng = simulate.galaxy_rng(args.seed, i)
            t0 = time.process_time()
            image, rms, nodata = simulate._render_scene(rng, cls, size, psf, row)
            init = simulate._fit_init(rng, row, size)
            t1 = time.process_time()
            fit = fit_sersic(image, psf, mask=nodata, sigma=rms, zeropoint=simulate.ZEROPOINT, init=init)
            t2 = time.process_time()
            write_block(Path(tmp) / f"{i}.fits", image, fit.model, None, fit.params, simulate.ZEROPOINT)
            t3 = time.process_time()
            t_render += t1 - t0
            t_fit += t2 - t1
            t_write += t3 - t2
            nfev.append(fit.nfev)
    n = args.n
    per = (t_render + t_fit + t_write) / n
    print(f"baseline: one PSF-convolved Sérsic model evaluation, 100x100: {t_model * 1e3:.2f} ms")
    print(f"one core, {n} galaxies (Table-1 classes):")
    print(f"  render scene   {t_render / n * 1e3:8.1f} ms/galaxy  = {t_render / n / t_model:6.1f} x baseline")
    print(f"  fit_sersic     {t_fit / n * 1e3:8.1f} ms/galaxy  = {t_fit / n / t_model:6.1f} x baseline"
          f"  (median nfev {np.median(nfev):.0f})")
    print(f"  write block    {t_write / n * 1e3:8.1f} ms/galaxy  = {t_write / n / t_model:6.1f} x baseline")
    print(f"  total          {per * 1e3:8.1f} ms/galaxy  -> {1.0 / per:.2f} galaxies/s per core")
    print(f"  demo budget 80 ms/galaxy/core: {per / 0.080:.1f} x over" if per > 0.080 else
          f"  within the demo budget of 80 ms/galaxy/core ({per / 0.080:.2f} of it)")
    if args.workers > 1:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            simulate.simulate_survey(n, args.seed, tmp, workers=args.workers, progress=False)
            dt = time.perf_counter() - t0
        print(f"simulate_survey, {args.workers} processes: {dt:.1f} s wall, {n / dt:.2f} galaxies/s "
              f"({n / dt / args.workers:.2f} per core; speed-up {per * n / dt:.2f} x over one core, "
              f"incl. process start-up and catalog/votes)")


if __name__ == "__main__":
    main()
