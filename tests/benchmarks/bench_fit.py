"""Benchmark: cost of one single-Sérsic fit per galaxy, as a ratio to one model evaluation.

The baseline, measured in the same run on the same 100×100 stamp, is one evaluation of the
PSF-convolved model (``sersic_image`` + FFT convolution with a PSF transform computed once), i.e.
what every iteration of the fit pays at least once. Run:

    .venv/bin/python tests/benchmarks/bench_fit.py [--n 12] [--size 100]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.sersic import PSFConvolver, convolve_psf, sersic_image  # noqa: E402
from core.sersic_fit import fit_sersic  # noqa: E402

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
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    psf = gaussian_psf()
    size = args.size
    shape = (size, size)
    c = size / 2

    # Baseline: one PSF-convolved model evaluation on the stamp (median of many).
    conv = PSFConvolver(psf, shape)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        conv(sersic_image(shape, c + 0.3, c - 0.2, 21.0, 4.0, 2.5, 0.6, 30.0, ZP))
        times.append(time.perf_counter() - t)
    t_model = statistics.median(times)

    fit_times, nfevs, dn, dre = [], [], [], []
    for _ in range(args.n):
        n = float(rng.uniform(0.5, 6.0))
        re = float(rng.uniform(1.5, 10.0))
        ar = float(rng.uniform(0.3, 1.0))
        pa = float(rng.uniform(-90, 90))
        truth = convolve_psf(sersic_image(shape, c + rng.uniform(-1, 1), c + rng.uniform(-1, 1),
                                          21.0, re, n, ar, pa, ZP), psf)
        sig = np.sqrt((truth**2).sum()) / args.snr
        img = truth + rng.normal(0, sig, shape)
        t = time.perf_counter()
        fit = fit_sersic(img, psf, zeropoint=ZP)
        fit_times.append(time.perf_counter() - t)
        nfevs.append(fit.nfev)
        dn.append(fit.value("N") / n - 1)
        dre.append(fit.value("RE") / re - 1)
    t_fit = statistics.median(fit_times)
    print(f"stamp {size}x{size}, Gaussian PSF FWHM 3 px, {args.n} galaxies, S/N {args.snr:g} "
          f"(n 0.5-6, Re 1.5-10 px)")
    print(f"one PSF-convolved model evaluation: {t_model * 1e3:8.2f} ms  (baseline)")
    print(f"one fit per galaxy (median):        {t_fit * 1e3:8.2f} ms  "
          f"= {t_fit / t_model:6.1f} model evaluations")
    print(f"fit time min / max:                 {min(fit_times) * 1e3:8.2f} / "
          f"{max(fit_times) * 1e3:.2f} ms")
    print(f"optimiser steps (nfev) median:      {statistics.median(nfevs):8.1f}  "
          f"(each step also pays up to 6 model evaluations for the Jacobian)")
    print(f"galaxies per second per core:       {1.0 / t_fit:8.2f}")
    print(f"median |dn/n| {statistics.median(np.abs(dn)):.3f}, median |dRe/Re| "
          f"{statistics.median(np.abs(dre)):.3f}")


if __name__ == "__main__":
    main()
