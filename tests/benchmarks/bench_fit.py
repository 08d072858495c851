"""Benchmark: cost of one single-Sérsic fit per galaxy, as a ratio to one model evaluation.

The baseline, measured in the same run on the same 100×100 stamp, is one evaluation of the
PSF-convolved model (``sersic_image`` + FFT convolution with a PSF transform computed once), i.e.
what every iteration of the fit pays at least once. Times are CPU times of this process
(``time.process_time``, single-threaded BLAS/FFT), the minimum over ``--repeat`` runs, to keep the
noise of a shared machine out. Run:

    .venv/bin/python tests/benchmarks/bench_fit.py [--n 12] [--size 100] [--repeat 3] [--full]

``--full`` also times the fit with ``sampling="full"`` (the central sub-sampling of
``sersic_image`` at every step instead of the adaptive one).
"""

from __future__ import annotations

import argparse
import inspect
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.fitting.fit import fit_sersic  # noqa: E402
from core.fitting.sersic import PSFConvolver, convolve_psf, sersic_image  # noqa: E402

ZP = 25.9463


def gaussian_psf(fwhm: float = 3.0, size: int = 25) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    s = fwhm / (2 * math.sqrt(2 * math.log(2)))
    return np.exp(-((x - size // 2) ** 2 + (y - size // 2) ** 2) / (2 * s * s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12, help="galaxies (default 12)")
    parser.add_argument("--size", type=int, default=100, help="stamp side, px (default 100)")
    parser.add_argument("--snr", type=float, default=100.0, help="matched-filter S/N (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats, min taken (default 3)")
    parser.add_argument("--full", action="store_true", help="also time sampling='full'")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    psf = gaussian_psf()
    size = args.size
    shape = (size, size)
    c = size / 2

    def cpu(func, reps: int) -> float:
        """Minimum CPU time of ``func()`` over ``reps`` calls."""
        best = math.inf
        for _ in range(reps):
            t = time.process_time()
            func()
            best = min(best, time.process_time() - t)
        return best

    # Baseline: one PSF-convolved model evaluation on the stamp (min over blocks of 20).
    conv = PSFConvolver(psf, shape)

    def model_eval() -> None:
        for _ in range(20):
            conv(sersic_image(shape, c + 0.3, c - 0.2, 21.0, 4.0, 2.5, 0.6, 30.0, ZP))

    t_model = cpu(model_eval, 10 * args.repeat) / 20

    variants = {"default": {}}
    if args.full and "sampling" in inspect.signature(fit_sersic).parameters:
        variants["sampling='full'"] = {"sampling": "full"}
    results = {k: ([], [], [], []) for k in variants}
    for _ in range(args.n):
        n = float(rng.uniform(0.5, 6.0))
        re = float(rng.uniform(1.5, 10.0))
        ar = float(rng.uniform(0.3, 1.0))
        pa = float(rng.uniform(-90, 90))
        truth = convolve_psf(sersic_image(shape, c + rng.uniform(-1, 1), c + rng.uniform(-1, 1),
                                          21.0, re, n, ar, pa, ZP), psf)
        sig = np.sqrt((truth**2).sum()) / args.snr
        img = truth + rng.normal(0, sig, shape)
        for name, kw in variants.items():
            fit_times, nfevs, dn, dre = results[name]
            fit = fit_sersic(img, psf, zeropoint=ZP, **kw)
            fit_times.append(cpu(lambda: fit_sersic(img, psf, zeropoint=ZP, **kw), args.repeat))
            nfevs.append(fit.nfev)
            dn.append(fit.value("N") / n - 1)
            dre.append(fit.value("RE") / re - 1)
    print(f"stamp {size}x{size}, Gaussian PSF FWHM 3 px, {args.n} galaxies, S/N {args.snr:g} "
          f"(n 0.5-6, Re 1.5-10 px); CPU times, min of {args.repeat}")
    print(f"one PSF-convolved model evaluation: {t_model * 1e3:8.2f} ms  (baseline)")
    for name, (fit_times, nfevs, dn, dre) in results.items():
        t_fit = statistics.median(fit_times)
        print(f"[{name}]")
        print(f"  one fit per galaxy (median):      {t_fit * 1e3:8.2f} ms  "
              f"= {t_fit / t_model:6.1f} model evaluations")
        print(f"  fit time min / max:               {min(fit_times) * 1e3:8.2f} / "
              f"{max(fit_times) * 1e3:.2f} ms")
        print(f"  optimiser steps (nfev) median:    {statistics.median(nfevs):8.1f}")
        print(f"  galaxies per second per core:     {1.0 / t_fit:8.2f}")
        print(f"  median |dn/n| {statistics.median(np.abs(dn)):.3f}, median |dRe/Re| "
              f"{statistics.median(np.abs(dre)):.3f}")


if __name__ == "__main__":
    main()
