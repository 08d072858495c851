"""`resx embed` analysis on 10^4 galaxies, apart from latent inference (not a test).

Synthetic CNN-like latents (tanh of class means + noise, 512-d, five classes with overlap, 80 %
of them labelled for the SVC) go through :class:`core.latent.analysis.LatentAnalysis` — PCA to 3, k-means
inertia k = 1..15 and the elbow, GMM on PC1–PC2, RBF SVC (γ = 0.7, C = 1) on standardised PCs
and its 300 x 300 decision grid — timed per step. Goal: <= 2 s in total.

Baselines measured in the same run: scikit-learn's own ``SVC.predict`` on the full grid (what
the vectorised coarse-to-fine grid replaces), and the whole analysis with the libraries'
default thread pools. Run:

    .venv/bin/python tests/benchmarks/bench_embed.py [--n 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numpy as np
    from sklearn.cluster import KMeans  # noqa: F401  (import cost outside the timings)
    from threadpoolctl import threadpool_limits

    from core.latent.analysis import KMeansElbow, LatentAnalysis, predict_grid

    rng = np.random.default_rng(0)
    n = args.n
    y = rng.choice(5, n, p=[0.38, 0.06, 0.2, 0.3, 0.06])
    means = rng.normal(0, 0.4, (5, 512))
    X = np.tanh(means[y] + rng.normal(0, 0.5, (n, 512))).astype(np.float32)
    y_train = np.where(rng.random(n) < 0.8, y, -1)

    def timed(fn):
        best, out = np.inf, None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t0)
        return best, out

    t_total, a = timed(lambda: LatentAnalysis(random_state=0).fit(X, y_train))
    print(f"LatentAnalysis on {n} x 512 latents: {t_total:.2f} s in total (goal <= 2 s), best of {args.repeat}")
    print(f"  elbow k = {a.elbow_.k_}, explained variance {np.round(a.explained_variance_, 3).tolist()}, "
          f"{len(a.svc_[-1].support_vectors_)} support vectors")

    with threadpool_limits(1):
        from sklearn.decomposition import PCA
        from sklearn.mixture import GaussianMixture

        t_pca, P = timed(lambda: PCA(3, svd_solver="covariance_eigh").fit_transform(X))
        P2 = P[:, :2]
        t_elb, _ = timed(lambda: KMeansElbow(random_state=0).fit(P2))
        t_gmm, _ = timed(lambda: GaussianMixture(a.elbow_.k_, random_state=0).fit(P2))
        t_grid, _ = timed(lambda: predict_grid(a.svc_, a.grid_x_, a.grid_y_))
        gx, gy = np.meshgrid(a.grid_x_, a.grid_y_)
        pts = np.column_stack([gx.ravel(), gy.ravel()])
        sub = pts[:: 10]
        t0 = time.perf_counter()
        a.svc_.predict(sub)
        t_sk_grid = (time.perf_counter() - t0) * len(pts) / len(sub)
    print(f"  PCA (covariance eigh)      {t_pca:6.3f} s")
    print(f"  k-means k=1..15 + elbow    {t_elb:6.3f} s")
    print(f"  GMM                        {t_gmm:6.3f} s")
    print(f"  SVC 300x300 grid           {t_grid:6.3f} s  vs scikit-learn predict {t_sk_grid:6.2f} s "
          f"(extrapolated from 1/10): {t_sk_grid / t_grid:.0f}x faster")
    t_def, _ = timed(lambda: LatentAnalysis(random_state=0, n_threads=None).fit(X, y_train))
    print(f"  with the libraries' default thread pools: {t_def:.2f} s = {t_def / t_total:.1f}x the single-thread time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
