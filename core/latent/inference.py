"""Latent vectors of prepared galaxies from a trained run: the CNN's Dense-512 layer, the CvAE's encoder mean.

Unaugmented stamps, no noise or dropout. Up to ``embed.dask_threshold`` galaxies (default 50,000)
the stamps are read at once and passed through ``model.predict`` in batches of
``embed.batch_size``; above it (or when a Dask scheduler address is given) each stamp-store chunk
is a Dask task that reads, scales and predicts its own rows, so memory stays at a few chunks and a
``dask.distributed`` cluster can share the work.

On a machine where TensorFlow sees a GPU, ``predict`` runs there (TensorFlow's placement; memory
growth on, :func:`core.learn.backend.configure_devices`, so the dashboard and a trainer can share
it); otherwise on the CPU.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from core.learn.backend import configure_devices, quiet_tensorflow

__all__ = ["extract_latents"]

log = logging.getLogger(__name__)


def _scaled(stamps: np.ndarray, config: dict[str, Any]) -> np.ndarray:
    from core.learn.scaling import scale_stamps

    sc = config.get("scaling", {})
    x = scale_stamps(np.nan_to_num(stamps, nan=0.0), method=sc.get("method", "maxabs"),
                     per=sc.get("per", "stamp"))
    return np.asarray(x, dtype=np.float32)[..., None]


def _inference_model(model):
    """A model mapping stamps to ``latent`` (and ``class`` probabilities for the CNN)."""
    import keras

    from core.learn.models import CVAE, LATENT_LAYER

    if isinstance(model, CVAE):
        return keras.Model(model.encoder.inputs, model.encoder.outputs[0])
    return keras.Model(model.inputs, [model.get_layer(LATENT_LAYER).output, model.outputs[0]])


_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def _cached_inference_model(path: str):
    """The inference model of a saved model, loaded once per process (and per file version)."""
    import keras

    import core.learn.models  # noqa: F401  (registers the custom layers)

    st = os.stat(path)
    key = f"{os.path.abspath(path)}:{st.st_mtime_ns}:{st.st_size}"
    with _MODEL_LOCK:  # a worker's threads share one copy
        if key not in _MODEL_CACHE:
            configure_devices()
            _MODEL_CACHE[key] = _inference_model(keras.models.load_model(path, compile=False))
        return _MODEL_CACHE[key]


def _predict(infer, x: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
    with quiet_tensorflow():
        out = infer.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(out, (list, tuple)):
        return np.asarray(out[0], np.float32), np.asarray(out[1], np.float32)
    return np.asarray(out, np.float32), None


def _chunk_latents(stamps_path: str, model_path: str, rows: np.ndarray, config: dict, batch_size: int):
    from core.io.stamps import StampStore

    store = StampStore.open(stamps_path, mode="r")
    x = _scaled(store.read("object_only", rows=rows), config)
    lat, prob = _predict(_cached_inference_model(model_path), x, batch_size)
    return lat if prob is None else np.concatenate([lat, prob], axis=1)


def extract_latents(
    ws,
    model_path: str | Path,
    rows: np.ndarray,
    config: dict[str, Any],
    *,
    batch_size: int = 256,
    dask_threshold: int = 50000,
    scheduler: Any = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """512-d latents (and CNN class probabilities) of the given catalog rows, unaugmented.

    Parameters
    ----------
    ws : core.workspace.workspace.Workspace
    model_path : path
        A saved ``model.keras`` (CNN or CvAE).
    rows : (n,) int array
        Catalog/stamp rows, increasing.
    config : dict
        The run's configuration (its ``scaling`` section scales the stamps as in training).
    batch_size : int
        Inference batch.
    dask_threshold : int
        More rows than this (or a ``scheduler``) -> one Dask task per stamp chunk.
    scheduler : str or distributed.Client, optional
        A running ``dask.distributed`` cluster (:func:`core.parallel.run_tasks`): one task per
        stamp chunk on its workers, which must see the workspace at the same absolute path and
        load the model themselves (once per worker process).

    Returns
    -------
    latents : (n, 512) float32
    probabilities : (n, 5) float32 or None (CvAE)
    """
    rows = np.asarray(rows, dtype=np.int64)
    model_path = str(model_path)
    if len(rows) <= dask_threshold and scheduler is None:
        store = ws.stamps()
        x = _scaled(store.read("object_only", rows=rows), config)
        return _predict(_cached_inference_model(model_path), x, batch_size)

    from core.parallel import is_distributed, run_tasks

    store = ws.stamps()
    chunk = store.chunk
    infer = _cached_inference_model(model_path)
    n_lat = infer.outputs[0].shape[-1]
    width = n_lat + (infer.outputs[1].shape[-1] if len(infer.outputs) > 1 else 0)
    # Absolute paths: a task may run on a worker started in another folder, or on another machine.
    stamps_path, model_path = os.path.abspath(ws.stamps_path), os.path.abspath(model_path)
    tasks = []
    for start in range(0, store.n, chunk):
        sel = rows[(rows >= start) & (rows < start + chunk)]
        if len(sel):
            tasks.append((stamps_path, model_path, sel, config, batch_size))
    distributed = is_distributed(scheduler)
    parts = run_tasks(_chunk_latents, tasks, scheduler=scheduler if distributed else "threads",
                      progress=False, desc="latents", unit="galaxy", weights=[len(t[2]) for t in tasks],
                      shared=[stamps_path, model_path] if distributed else ())
    out = np.concatenate(parts, axis=0) if parts else np.empty((0, width), np.float32)
    return out[:, :n_lat], (out[:, n_lat:] if width > n_lat else None)
