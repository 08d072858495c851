"""The latent-space analysis of the paper's §5: latents -> PCA -> k-means elbow -> GMM -> SVC.

Estimators (scikit-learn conventions: hyper-parameters in ``__init__``, learning in ``fit``,
learned state in trailing-underscore attributes, ``random_state`` for what is stochastic):

* :class:`KMeansElbow` — k-means inertia for k = 1..k_max and the elbow k.
  **Elbow method**: the point of the *log*-inertia curve farthest from the chord joining its
  first and last points, after scaling both axes to [0, 1] (the "maximum distance to the
  chord" construction, which is what the Kneedle algorithm reduces to for a convex,
  decreasing curve without smoothing). On the log: inertia falls by orders of magnitude up to
  the true k of well-separated clusters and is then flat, and on a linear axis that flat tail
  drags the farthest point to k − 1 or k − 2; in log it does not (on 2-D/3-D blobs with k = 2..9
  the log version finds the true k where the clusters do not overlap, the linear one mostly
  does not). It is parameter-free and deterministic given the inertias.
* :class:`PCAlignment` — an orthogonal matrix (orthogonal Procrustes on the galaxies two runs
  share: rotation and sign flips) that maps a new run's PCs onto an earlier run's, so the map
  does not flip or spin between retrains.
* :class:`LatentAnalysis` — the whole chain on a latent matrix: PCA (3 components, explained
  variance), optional alignment, elbow on PC1–PC2, a GMM with the elbow's k on PC1–PC2, and an
  SVC on **standardised** PC1–PC2 (RBF γ = 0.7, C = 1 for the CNN; linear for the CvAE)
  evaluated on a grid for plotting. Standardising matters: on unscaled PCs of a few units
  γ = 0.7 makes almost every point a support vector (~50x slower, wiggly boundaries); the
  paper's PCs are of order one.

The paper fits its SVC to the GMM clusters (Figure 13); the default here (config
``embed.svc_target = "labels"``) fits it to the training split's class labels, the boundaries
an inspector compares votes with; ``"gmm"`` reproduces the paper.

Workspace level (:mod:`core.latent.embed`): :func:`~core.latent.embed.embed_run` computes the 512-d latents of every prepared galaxy
(``prep_status`` ok or flagged; unaugmented, no noise or dropout: the CNN's Dense-512 layer,
the CvAE's encoder mean), runs :class:`LatentAnalysis`, and writes ``embedding.npz`` and
``embedding.json`` into the run folder; :func:`~core.latent.embedding.load_embedding` reads them back.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.linalg import orthogonal_procrustes
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from core.latent.embedding import EMBEDDING_JSON, EMBEDDING_NPZ, Embedding, EmbeddingError, load_embedding  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

PREPPED = ("ok", "flagged")


# ----------------------------------------------------------------------------------------
# Estimators
# ----------------------------------------------------------------------------------------
def elbow_point(ks: np.ndarray, inertia: np.ndarray) -> int:
    """The elbow of a decreasing curve: the point farthest from the chord through its ends.

    Both axes are first scaled to [0, 1], so the answer does not depend on their units.

    Parameters
    ----------
    ks : (m,) array
        Numbers of clusters, increasing.
    inertia : (m,) array
        k-means inertia for each k.

    Returns
    -------
    int
        The elbow k (``ks[0]`` when the curve is a straight line or has < 3 points).

    Examples
    --------
    >>> elbow_point(np.arange(1, 6), np.array([100., 20., 15., 12., 10.]))
    2
    """
    ks = np.asarray(ks, dtype=float)
    y = np.asarray(inertia, dtype=float)
    if len(ks) < 3 or not np.isfinite(y).all() or y[0] == y[-1]:
        return int(ks[0])
    xn = (ks - ks[0]) / (ks[-1] - ks[0])
    yn = (y - y[-1]) / (y[0] - y[-1])
    # Distance below the chord from (0, 1) to (1, 0): the line x + y = 1.
    dist = (1.0 - xn - yn) / np.sqrt(2.0)
    i = int(np.argmax(dist))
    return int(ks[i]) if dist[i] > 0 else int(ks[0])


class KMeansElbow(BaseEstimator):
    """k-means inertia for k = 1..``k_max`` and the elbow k (see :func:`elbow_point`).

    Parameters
    ----------
    k_max : int
        Largest k tried (15 in the paper).
    n_init : int
        k-means restarts per k.
    max_samples : int
        Fit on a seeded random subset of at most this many points (the inertia is rescaled
        to the full count), so the elbow test stays fast for millions of galaxies.
    n_threads : int or None
        OpenMP threads for k-means (1 by default: see :class:`LatentAnalysis`).
    random_state : int or None
        Seed of the k-means initialisations and of the subset.

    Attributes
    ----------
    ks_ : (k_max,) int array
    inertia_ : (k_max,) float array
        Sum of squared distances to the nearest centre, per k.
    k_ : int
        The elbow.
    """

    def __init__(self, k_max: int = 15, n_init: int = 3, max_samples: int = 5000,
                 n_threads: int | None = 1, random_state: int | None = 0):
        self.k_max = k_max
        self.n_init = n_init
        self.max_samples = max_samples
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y=None) -> "KMeansElbow":
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.n_threads):
            return self._fit(X)

    def _fit(self, X) -> "KMeansElbow":
        X = np.asarray(X, dtype=float)
        n = len(X)
        if n > self.max_samples:
            rng = np.random.default_rng(self.random_state)
            X = X[np.sort(rng.choice(n, self.max_samples, replace=False))]
        k_max = max(1, min(int(self.k_max), len(X)))
        self.ks_ = np.arange(1, k_max + 1)
        self.inertia_ = np.array([
            KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(X).inertia_
            for k in self.ks_
        ]) * (n / len(X))
        self.k_ = elbow_point(self.ks_, np.log(np.maximum(self.inertia_, 1e-300)))
        return self


def svc_predict(model, X, chunk: int = 2048) -> np.ndarray:
    """Predict with a fitted (StandardScaler ->) SVC, vectorised with numpy for a dense grid.

    libsvm's ``predict`` evaluates the kernel one support vector at a time (~10⁷ kernel values
    per second), so a 300 x 300 grid against a few thousand support vectors takes tens of
    seconds. Here the kernel matrix of a chunk of points against all support vectors is one
    numpy expression and the one-vs-one decisions one matrix product; votes are counted as
    libsvm counts them (ties to the lower class index). RBF and linear kernels only; others,
    or any disagreement with ``model.predict`` on a check sample, fall back to ``model.predict``.

    Parameters
    ----------
    model : sklearn.svm.SVC or Pipeline ending in one
    X : (n, d) array

    Returns
    -------
    (n,) array of class labels (``svc.classes_``)
    """
    X = np.asarray(X, dtype=np.float64)
    steps = getattr(model, "steps", None)
    svc = steps[-1][1] if steps else model
    if svc.kernel not in ("rbf", "linear") or len(X) < 1000:
        return model.predict(X)
    Z = X
    if steps:
        for _, step in steps[:-1]:
            Z = step.transform(Z)
    # float32 kernel matrices: np.exp is ~6x faster than in float64, and a point whose vote
    # would flip at float32 precision sits on a boundary anyway (checked below).
    Z = np.asarray(Z, dtype=np.float32)
    sv = np.asarray(svc.support_vectors_, dtype=np.float32)
    starts = np.r_[0, np.cumsum(svc.n_support_)]
    n_cls = len(svc.classes_)
    pairs = [(i, j) for i in range(n_cls) for j in range(i + 1, n_cls)]
    dual, intercept = svc._dual_coef_, svc._intercept_  # libsvm's own signs (sklearn flips the binary public ones)
    C = np.zeros((len(sv), len(pairs)), dtype=np.float32)
    for p, (i, j) in enumerate(pairs):
        C[starts[i]:starts[i + 1], p] = dual[j - 1, starts[i]:starts[i + 1]]
        C[starts[j]:starts[j + 1], p] = dual[i, starts[j]:starts[j + 1]]
    gamma = float(getattr(svc, "_gamma", svc.gamma))
    sv2 = (sv**2).sum(axis=1)
    pi = np.array([p[0] for p in pairs])
    pj = np.array([p[1] for p in pairs])
    out = np.empty(len(Z), dtype=np.int64)
    for a in range(0, len(Z), chunk):
        z = Z[a:a + chunk]
        K = z @ sv.T
        if svc.kernel == "rbf":
            K = (z**2).sum(axis=1)[:, None] + sv2[None, :] - 2.0 * K
            np.maximum(K, 0.0, out=K)
            K *= np.float32(-gamma)
            np.exp(K, out=K)
        dec = K @ C + intercept
        votes = np.zeros((len(z), n_cls), dtype=np.int64)
        winner = np.where(dec > 0, pi[None, :], pj[None, :])
        for c in range(n_cls):
            votes[:, c] = (winner == c).sum(axis=1)
        out[a:a + chunk] = votes.argmax(axis=1)
    labels = svc.classes_[out]
    check = np.linspace(0, len(X) - 1, 200).astype(int)
    if np.mean(model.predict(X[check]) != labels[check]) > 0.01:
        log.warning("vectorised SVC prediction disagrees with scikit-learn; using model.predict")
        return model.predict(X)
    return labels


def predict_grid(model, x: np.ndarray, y: np.ndarray, stride: int = 4) -> np.ndarray:
    """Class of ``model`` at every point of the grid ``x`` x ``y``, as a ``(len(y), len(x))`` array.

    Coarse to fine: the classifier is evaluated on every ``stride``-th grid line first; a fine
    point whose enclosing coarse cell has the same class at its four corners takes that class,
    and only points in cells that a boundary crosses are evaluated. With ``stride = 4`` this is
    ~5x fewer evaluations on a 300 x 300 grid; an island of one class narrower than ``stride``
    grid steps that touches no coarse point can be missed (``stride = 1`` evaluates them all).
    """
    nx, ny = len(x), len(y)
    ix = np.unique(np.r_[np.arange(0, nx, stride), nx - 1])
    iy = np.unique(np.r_[np.arange(0, ny, stride), ny - 1])
    gx, gy = np.meshgrid(x[ix], y[iy])
    coarse = svc_predict(model, np.column_stack([gx.ravel(), gy.ravel()])).reshape(len(iy), len(ix))
    # Enclosing coarse cell of every fine line, and whether its four corners agree.
    cx = np.clip(np.searchsorted(ix, np.arange(nx), side="right") - 1, 0, len(ix) - 2) if len(ix) > 1 else np.zeros(nx, int)
    cy = np.clip(np.searchsorted(iy, np.arange(ny), side="right") - 1, 0, len(iy) - 2) if len(iy) > 1 else np.zeros(ny, int)
    c00 = coarse[:-1, :-1] if coarse.shape[0] > 1 and coarse.shape[1] > 1 else coarse
    same = c00 == coarse[1:, 1:] if c00 is not coarse else np.ones_like(coarse, bool)
    if c00 is not coarse:
        same &= (c00 == coarse[1:, :-1]) & (c00 == coarse[:-1, 1:])
    out = c00[np.ix_(cy, cx)].copy()
    todo = ~same[np.ix_(cy, cx)]
    if todo.any():
        r, c = np.nonzero(todo)
        out[r, c] = svc_predict(model, np.column_stack([x[c], y[r]]))
    return out


class PCAlignment(BaseEstimator, TransformerMixin):
    """Orthogonal map (rotation and sign flips) of new PCs onto reference PCs of the same galaxies.

    Fit on the rows both runs share (``reference`` rows that are NaN are ignored): the
    orthogonal ``R`` minimising ``||X R - reference||_F`` (scipy's ``orthogonal_procrustes``).
    No scaling and no translation: both sets of PCs are centred by PCA, and their spreads are
    left as each run learned them.

    Attributes
    ----------
    rotation_ : (d, d) array
        Orthogonal; ``transform(X) = X @ rotation_``.
    n_common_ : int
        Galaxies used in the fit.
    """

    def fit(self, X, reference) -> "PCAlignment":
        X = np.asarray(X, dtype=float)
        ref = np.asarray(reference, dtype=float)
        if X.shape != ref.shape:
            raise ValueError(f"X {X.shape} and reference {ref.shape} must have the same shape")
        ok = np.isfinite(ref).all(axis=1) & np.isfinite(X).all(axis=1)
        self.n_common_ = int(ok.sum())
        if self.n_common_ < X.shape[1] + 1:
            raise ValueError(f"need at least {X.shape[1] + 1} galaxies in common, found {self.n_common_}")
        self.rotation_, _ = orthogonal_procrustes(X[ok], ref[ok])
        return self

    def transform(self, X) -> np.ndarray:
        return np.asarray(X, dtype=float) @ self.rotation_


class LatentAnalysis(BaseEstimator):
    """PCA -> (alignment) -> k-means elbow -> GMM -> SVC on a latent matrix (§5).

    Parameters
    ----------
    n_components : int
        PCA components kept (3 in the paper).
    k_max : int
        Elbow search range 1..k_max.
    cluster_dims : int
        The elbow, the GMM and the SVC use PC1..PC<cluster_dims> (2: PC1–PC2, as the paper).
    svc_kernel : {"rbf", "linear"}
    svc_gamma, svc_c : float
        RBF width (on standardised PCs) and regularisation.
    svc_target : {"labels", "gmm"}
        Fit the SVC to the given class labels or to the GMM clusters (as the paper does).
        With fewer than two labelled classes it falls back to the GMM clusters.
    svc_max_train : int
        Fit the SVC on a seeded random subset of at most this many galaxies.
    grid : int
        Points per axis of the decision grid.
    n_threads : int or None
        BLAS/OpenMP threads during ``fit`` (via threadpoolctl). 1 by default: every step is
        small, and on a busy machine extra threads spin-wait (measured 6x slower at a load of 7
        on 2 cores). None keeps the libraries' defaults.
    random_state : int or None

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    pcs_raw_ : (n, n_components) array
        PCA scores before alignment.
    pcs_ : (n, n_components) array
        Aligned scores (equal to ``pcs_raw_`` without a reference).
    explained_variance_ : (n_components,) array
        Explained variance ratio of each PC.
    alignment_ : PCAlignment or None
    elbow_ : KMeansElbow
    gmm_ : sklearn.mixture.GaussianMixture
    gmm_labels_ : (n,) int array
    svc_ : sklearn.pipeline.Pipeline or None
        StandardScaler -> SVC, on PC1..PC<cluster_dims>.
    svc_target_ : str
        What the SVC was fitted to ("labels", "gmm", or "" when not fitted).
    grid_x_, grid_y_ : (grid,) arrays
        Grid axes over PC1 and PC2 (aligned).
    grid_z_ : (grid, grid) int array
        SVC prediction at ``(grid_x_[j], grid_y_[i])`` in row i, column j (−1 where no SVC).
    """

    def __init__(self, n_components: int = 3, k_max: int = 15, cluster_dims: int = 2,
                 svc_kernel: str = "rbf", svc_gamma: float = 0.7, svc_c: float = 1.0,
                 svc_target: str = "labels", svc_max_train: int = 5000, grid: int = 300,
                 n_threads: int | None = 1, random_state: int | None = 0):
        self.n_components = n_components
        self.k_max = k_max
        self.cluster_dims = cluster_dims
        self.svc_kernel = svc_kernel
        self.svc_gamma = svc_gamma
        self.svc_c = svc_c
        self.svc_target = svc_target
        self.svc_max_train = svc_max_train
        self.grid = grid
        self.n_threads = n_threads
        self.random_state = random_state

    def fit(self, X, y=None, reference=None) -> "LatentAnalysis":
        """Fit on latents ``X`` (n, d).

        Parameters
        ----------
        X : (n, d) array
            Latent vectors.
        y : (n,) int array, optional
            Class index per galaxy for the SVC, −1 where it must not be used (unlabelled, test).
        reference : (n, n_components) array, optional
            PCs of the same galaxies from an earlier run (NaN rows where unknown) to align to.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.n_threads):
            return self._fit(X, y, reference)

    def _fit(self, X, y, reference) -> "LatentAnalysis":
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or len(X) < 2:
            raise ValueError(f"need a (n >= 2, d) latent matrix, got shape {X.shape}")
        rng = np.random.default_rng(self.random_state)
        ncomp = min(self.n_components, X.shape[1], len(X))
        # "covariance_eigh": eigen-decomposition of the d x d covariance, exact and the fastest
        # for n >> d (10^4 x 512 in a few tens of ms).
        self.pca_ = PCA(n_components=ncomp, svd_solver="covariance_eigh" if len(X) > X.shape[1] else "full",
                        random_state=self.random_state)
        self.pcs_raw_ = self.pca_.fit_transform(X).astype(np.float64)
        self.explained_variance_ = self.pca_.explained_variance_ratio_.copy()

        self.alignment_ = None
        self.pcs_ = self.pcs_raw_
        if reference is not None:
            try:
                self.alignment_ = PCAlignment().fit(self.pcs_raw_, reference)
                self.pcs_ = self.alignment_.transform(self.pcs_raw_)
            except ValueError as exc:
                log.warning("PCs not aligned to the earlier run: %s", exc)

        P = self.pcs_[:, : min(self.cluster_dims, ncomp)]
        self.elbow_ = KMeansElbow(self.k_max, random_state=self.random_state).fit(P)
        self.gmm_ = GaussianMixture(n_components=self.elbow_.k_, covariance_type="full",
                                    random_state=self.random_state).fit(P)
        self.gmm_labels_ = self.gmm_.predict(P)

        self._fit_svc(P, y, rng)
        return self

    def _fit_svc(self, P: np.ndarray, y, rng: np.random.Generator) -> None:
        target = self.svc_target
        yy = None
        if target == "labels" and y is not None:
            yy = np.asarray(y)
            if len(np.unique(yy[yy >= 0])) < 2:
                log.warning("fewer than two labelled classes: the SVC is fitted to the GMM clusters")
                yy = None
        if yy is None:
            target, yy = "gmm", self.gmm_labels_
        use = np.flatnonzero(yy >= 0)
        if len(use) > self.svc_max_train:
            use = np.sort(rng.choice(use, self.svc_max_train, replace=False))
        self.svc_ = None
        self.svc_target_ = ""
        lo, hi = P[:, :2].min(axis=0), P[:, :2].max(axis=0)
        pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
        self.grid_x_ = np.linspace(lo[0] - pad[0], hi[0] + pad[0], self.grid)
        self.grid_y_ = (np.linspace(lo[1] - pad[1], hi[1] + pad[1], self.grid) if P.shape[1] > 1
                        else np.zeros(self.grid))
        self.grid_z_ = np.full((self.grid, self.grid), -1, dtype=np.int16)
        if len(np.unique(yy[use])) < 2:
            log.warning("a single cluster/class: no SVC boundaries")
            return
        kw = dict(gamma=self.svc_gamma) if self.svc_kernel == "rbf" else {}
        self.svc_ = make_pipeline(StandardScaler(), SVC(kernel=self.svc_kernel, C=self.svc_c, **kw))
        self.svc_.fit(P[use], yy[use])
        self.svc_target_ = target
        if P.shape[1] >= 2:
            self.grid_z_ = predict_grid(self.svc_, self.grid_x_, self.grid_y_).astype(np.int16)
