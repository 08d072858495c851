"""A finished run's evaluation on the test split: accuracy, recall, confusion matrix, reconstructions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.labels import CLASSES

__all__ = ["TRIVIAL_RECONSTRUCTION_RATIO", "evaluate_cnn", "evaluate_cvae", "plot_confusion",
           "plot_reconstructions", "reconstruction_warning"]

#: A CvAE whose test MSE is at least this share of the all-zero reconstruction's MSE has learned
#: (almost) nothing beyond the trivial solution; its run is flagged (:func:`reconstruction_warning`).
TRIVIAL_RECONSTRUCTION_RATIO = 0.98


def evaluate_cnn(model, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/support and the confusion matrix (rows: true class)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y = np.array([CLASSES.index(c) for c in labels])
    prob = model.predict(x[..., None], batch_size=batch_size, verbose=0)
    pred = prob.argmax(axis=1)
    p, r, _, s = precision_recall_fscore_support(y, pred, labels=range(len(CLASSES)), zero_division=0)
    cm = confusion_matrix(y, pred, labels=range(len(CLASSES)))
    return {
        "n_test": int(len(y)),
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "classes": list(CLASSES),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "support": int(s[i])}
                      for i, c in enumerate(CLASSES)},
        "confusion": cm.tolist(),
    }


def evaluate_cvae(model, x: np.ndarray, batch_size: int = 256) -> tuple[dict[str, Any], np.ndarray]:
    """Reconstruction MSE (decoded from the encoder mean) and mean KL on ``x``; also the reconstructions.

    ``recon_mse_zero`` is the MSE of the trivial reconstruction (all zeros) and ``recon_mse_ratio``
    the ratio of the two: a ratio near 1 means the CvAE learned (almost) nothing beyond the
    trivial solution, which on noise-dominated stamps is the failure to watch for.
    """
    from core.learn.models import kl_divergence

    xb = x[..., None]
    rec = model.predict(xb, batch_size=batch_size, verbose=0)
    z_mean, z_log_var, _ = model.encoder.predict(xb, batch_size=batch_size, verbose=0)
    mse = float(np.mean((rec[..., 0] - x) ** 2)) if len(x) else None
    zero = float(np.mean(np.asarray(x, dtype=float) ** 2)) if len(x) else None
    ratio = mse / zero if mse is not None and zero else None
    kl = float(kl_divergence(z_mean, z_log_var, model.kl_reduction)) if len(x) else None
    return {"n_test": int(len(x)), "recon_mse": mse, "recon_mse_zero": zero, "recon_mse_ratio": ratio,
            "kl": kl}, rec[..., 0]


def plot_confusion(cm: np.ndarray, path: Path, title: str = "") -> None:
    """Confusion matrix PNG: colour = fraction of the true class, numbers = counts."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=110)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=30)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test split)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reconstructions(x: np.ndarray, rec: np.ndarray, path: Path, n: int = 8, seed: int = 0) -> None:
    """Input (top) / reconstruction (bottom) pairs like the paper's Figure 8."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = min(n, len(x))
    pick = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False)) if n else []
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.3 * max(n, 1), 2.9), dpi=110, squeeze=False)
    for col, i in enumerate(pick):
        for row, img in enumerate((x[i], rec[i])):
            ax = axes[row, col]
            ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def reconstruction_warning(ratio: float | None) -> str | None:
    """A warning for a CvAE run whose reconstructions are no better than all zeros, else None.

    Parameters
    ----------
    ratio : float or None
        ``recon_mse_ratio`` of the run's evaluation (:func:`evaluate_cvae`).

    Returns
    -------
    str or None
        The text recorded in the run (``run.json`` ``warning``) and shown by ``resx train``,
        ``resx runs`` and the Runs tab.
    """
    if ratio is None or not np.isfinite(ratio) or ratio < TRIVIAL_RECONSTRUCTION_RATIO:
        return None
    return (f"reconstruction MSE is {ratio:.3f} of the all-zero reconstruction's: the CvAE has learned "
            "little beyond the trivial solution (too short a schedule?); its latents may still order "
            "galaxies by residual strength, but treat its map with care")
