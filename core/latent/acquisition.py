"""Acquisition scores: which galaxies the model most needs an inspector to look at.

Plain array functions (the workspace-level queue is :mod:`core.latent.queue`):

* :func:`predictive_entropy` ``H[p] = -sum_k p_k ln p_k`` of the class probabilities;
* :func:`margin_score` ``1 - (p_(1) - p_(2))``, one minus the gap between the two most probable
  classes (higher: closer to the decision boundary);
* :func:`bald` — Bayesian Active Learning by Disagreement (Houlsby et al. 2011; Gal, Islam &
  Ghahramani 2017; used by Galaxy Zoo, Walmsley et al. 2020): the mutual information between
  the prediction and the model's weights, estimated from ``T`` Monte-Carlo dropout passes
  (:func:`mc_dropout_probabilities`) as ``H[mean_t p_t] - mean_t H[p_t]``. It is high where the
  passes disagree (the model is unsure *which* class, not merely that the galaxy is ambiguous)
  and exactly 0 for ``T = 1``;
* :func:`vote_entropy` — the entropy of a galaxy's current non-skip votes (from the store, live);
* :func:`diverse_order` — a greedy ranking that spreads the queue across GMM clusters: each
  galaxy already picked from a cluster multiplies the (rank-normalised) score of the next pick
  from that cluster by ``1 - diversity``, so the queue is not 48 near-copies of one galaxy.

MC dropout follows the paper's CNN (§4.1: Dropout 0.5 after each convolutional block): the
layers before the first Dropout run once per galaxy, the rest ``T`` times with dropout on and
every other layer in inference mode (no GaussianNoise), seeded by ``seed``.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["predictive_entropy", "margin_score", "bald", "vote_entropy", "mc_dropout_probabilities",
           "diverse_order", "STRATEGIES"]

log = logging.getLogger(__name__)

#: The queue's ranking strategies.
STRATEGIES: tuple[str, ...] = ("bald", "entropy", "margin", "disagreement", "random")

_TINY = 1e-12


def predictive_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of class probabilities.

    Parameters
    ----------
    probabilities : ndarray, shape (..., n_classes)

    Returns
    -------
    ndarray, shape (...)

    Examples
    --------
    >>> float(predictive_entropy(np.array([0.5, 0.5])).round(6))
    0.693147
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    return 0.0 - (p * np.log(np.maximum(p, _TINY))).sum(axis=-1) + 0.0


def margin_score(probabilities: np.ndarray) -> np.ndarray:
    """``1 - (p_(1) - p_(2))`` per row: 0 for a certain prediction, 1 for a tie of the top two.

    Examples
    --------
    >>> margin_score(np.array([[0.7, 0.2, 0.1]])).round(6).tolist()
    [0.5]
    """
    p = np.sort(np.asarray(probabilities, dtype=np.float64), axis=-1)
    return 1.0 - (p[..., -1] - p[..., -2])


def bald(mc_probabilities: np.ndarray) -> np.ndarray:
    """BALD mutual information from Monte-Carlo passes.

    Parameters
    ----------
    mc_probabilities : ndarray, shape (T, n, n_classes)
        Class probabilities of each of ``T`` stochastic passes.

    Returns
    -------
    ndarray, shape (n,)
        ``H[mean_t p_t] - mean_t H[p_t]`` (nats), >= 0; 0 when ``T == 1``.

    Examples
    --------
    >>> float(bald(np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))[0].round(6))  # two passes, opposite
    0.693147
    """
    p = np.asarray(mc_probabilities, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"mc_probabilities must be (T, n, n_classes), not shape {p.shape}")
    mi = predictive_entropy(p.mean(axis=0)) - predictive_entropy(p).mean(axis=0)
    return np.maximum(mi, 0.0)


def vote_entropy(counts: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each galaxy's vote shares; 0 with fewer than two votes.

    Parameters
    ----------
    counts : ndarray, shape (n, n_labels)
        Non-skip votes per label (Skip columns left out by the caller).

    Examples
    --------
    >>> vote_entropy(np.array([[2, 1, 0], [3, 0, 0], [0, 0, 0]])).round(4).tolist()
    [0.6365, 0.0, 0.0]
    """
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, c / np.maximum(n, 1.0), 0.0)
    return predictive_entropy(p)


def _chain(model) -> list:
    """The layers of a single-input, single-chain Keras model, input layer excluded."""
    import keras

    layers = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)]
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("MC dropout needs a model with one input and one output")
    return layers


def mc_dropout_probabilities(model, x: np.ndarray, passes: int = 20, *, seed: int = 0,
                             batch_size: int = 256) -> np.ndarray:
    """Class probabilities of ``passes`` Monte-Carlo dropout passes of a chain model.

    Parameters
    ----------
    model : keras.Model
        A model whose layers form one chain (the paper's CNN: :func:`core.learn.models.build_cnn`)
        with at least one ``Dropout`` layer.
    x : ndarray, shape (n, ...)
        Inputs (scaled stamps ``(n, S, S, 1)`` for the CNN).
    passes : int
        ``T``, the number of stochastic passes (>= 1).
    seed : int
        Seeds the dropout masks: the same seed gives the same passes.
    batch_size : int
        Inputs per forward call (each call evaluates ``passes`` copies of them).

    Returns
    -------
    ndarray of float32, shape (passes, n, n_classes)
    """
    import keras
    from keras import ops

    passes = int(passes)
    if passes < 1:
        raise ValueError(f"passes must be >= 1, not {passes}")
    layers = _chain(model)
    first = next((i for i, lay in enumerate(layers) if isinstance(lay, keras.layers.Dropout)), None)
    if first is None:
        raise ValueError(f"model {model.name!r} has no Dropout layer: MC dropout needs one")
    gen = keras.random.SeedGenerator(int(seed))
    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    step = max(1, int(batch_size) // passes) if passes > 1 else int(batch_size)
    out = None
    for start in range(0, n, step):
        h = ops.convert_to_tensor(x[start:start + step])
        for lay in layers[:first]:
            h = lay(h, training=False)
        b = int(h.shape[0])
        h = ops.tile(h, (passes,) + (1,) * (len(h.shape) - 1))  # pass-major: rows t * b + i
        for lay in layers[first:]:
            if isinstance(lay, keras.layers.Dropout):
                h = keras.random.dropout(h, lay.rate, seed=gen)
            else:
                h = lay(h, training=False)
        p = np.asarray(ops.convert_to_numpy(h), dtype=np.float32).reshape(passes, b, -1)
        if out is None:
            out = np.empty((passes, n, p.shape[-1]), dtype=np.float32)
        out[:, start:start + b] = p
    if out is None:
        out = np.zeros((passes, 0, int(model.outputs[0].shape[-1])), dtype=np.float32)
    return out


def diverse_order(scores: np.ndarray, clusters: np.ndarray | None, n: int, diversity: float = 0.5,
                  ) -> np.ndarray:
    """The first ``n`` picks of a greedy ranking spread across clusters.

    Scores are replaced by their ranks scaled to (0, 1] (the best is 1), so the rule does not
    depend on the score's units. Each pick takes the galaxy with the highest
    ``rank_score * (1 - diversity) ** picked[cluster]``, where ``picked[cluster]`` counts the
    galaxies already picked from its cluster. ``diversity = 0`` is the plain ranking by score;
    ``diversity = 1`` takes one galaxy per cluster, the best first, before a second from any.

    Parameters
    ----------
    scores : ndarray, shape (m,)
        Higher is more wanted; NaN ranks last.
    clusters : ndarray of int, shape (m,), or None
        Cluster of each candidate (None: no clusters, the plain ranking).
    n : int
        Number of picks (at most ``m``).
    diversity : float
        In [0, 1].

    Returns
    -------
    ndarray of int, shape (min(n, m),)
        Indices into ``scores``, in pick order.

    Examples
    --------
    >>> diverse_order(np.array([0.9, 0.8, 0.7, 0.1]), np.array([0, 0, 0, 1]), 2, 0.5).tolist()
    [0, 1]
    >>> diverse_order(np.array([0.9, 0.8, 0.7, 0.1]), np.array([0, 0, 0, 1]), 2, 1.0).tolist()
    [0, 3]
    """
    if not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], not {diversity!r}")
    s = np.asarray(scores, dtype=np.float64)
    m = len(s)
    n = min(int(n), m)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    key = np.where(np.isfinite(s), s, -np.inf)
    order = np.lexsort((np.arange(m), -key))  # best first, ties by position
    if clusters is None or float(diversity) == 0.0:
        return order[:n].astype(np.int64)
    rank = np.empty(m)
    rank[order] = (m - np.arange(m)) / m  # best = 1
    cl = np.asarray(clusters)
    uniq, cl_code = np.unique(cl[order], return_inverse=True)
    # Each cluster's candidates, best first (a stable split of the global order).
    by_cluster = [order[cl_code == c] for c in range(len(uniq))]
    sizes = np.array([len(b) for b in by_cluster])
    head = np.zeros(len(uniq), dtype=np.int64)
    picked = np.zeros(len(uniq), dtype=np.int64)
    keep = 1.0 - float(diversity)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        avail = head < sizes
        top = np.array([rank[b[h]] if h < len(b) else -1.0 for b, h in zip(by_cluster, head)])
        if keep > 0:
            vals = np.where(avail, top * keep ** picked, -1.0)
        else:  # round robin: only the clusters picked least often so far compete
            vals = np.where(avail & (picked == picked[avail].min()), top, -1.0)
        best = int(np.argmax(vals))
        out[i] = by_cluster[best][head[best]]
        head[best] += 1
        picked[best] += 1
    return out
