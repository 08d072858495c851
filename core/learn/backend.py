"""TensorFlow plumbing shared by training and latent inference: devices, precision, quiet logs.

Devices: TensorFlow places every op on a GPU when it sees one (and on the CPU otherwise), so
training and latent inference (``model.predict`` in :mod:`core.latent.inference`) use a GPU
without code of their own; nothing here hides one. :func:`configure_devices` turns on memory
growth, so a trainer and the dashboard's embedding can share a GPU instead of the first process
taking all of its memory. :func:`distribution_strategy` mirrors training over several GPUs.
:func:`describe_device` is what ``resx train`` prints (``device: GPU 0 (NVIDIA H100 80GB HBM3),
mixed precision off`` or ``device: CPU, 2 threads``).

Mixed precision (``train.mixed_precision``, off by default): Keras' ``mixed_float16`` policy --
layers compute in float16 and keep float32 weights, the optimizer scales the loss against
float16 underflow (Keras wraps it in a ``LossScaleOptimizer``; the CvAE's own ``train_step`` calls
``optimizer.scale_loss``), and the layers whose outputs feed a loss (the CNN's softmax, the
CvAE's mean, log-variance, sampling and output) stay float32. It pays only on a GPU with tensor
cores; on a CPU it is slower, so :func:`precision_policy` ignores it there (and says so). Runs are
not bit-comparable across precisions.

Verified here only with a faked device list (``tests/learn/test_backend.py``): no GPU with
TensorFlow is reachable from the machines this was written on.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Iterator

__all__ = ["configure_devices", "describe_device", "distribution_strategy", "gpu_names", "precision_policy",
           "quiet_tensorflow"]

log = logging.getLogger(__name__)


@contextmanager
def quiet_tensorflow():
    """Silence TensorFlow's Python warnings for a block.

    Every run's model traces its own predict function, and TensorFlow then warns about
    "retracing" — expected here and not actionable for the user.
    """
    tf_log = logging.getLogger("tensorflow")
    level = tf_log.level
    tf_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_log.setLevel(level)


def configure_devices() -> None:
    """Memory growth on every GPU TensorFlow sees (before it initialises them; later calls are no-ops)."""
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):  # already initialised
            pass


def gpu_names() -> list[str]:
    """``"GPU i (name)"`` for each GPU TensorFlow sees; empty on a CPU-only machine."""
    import tensorflow as tf

    names = []
    for i, gpu in enumerate(tf.config.list_physical_devices("GPU")):
        try:
            detail = tf.config.experimental.get_device_details(gpu).get("device_name")
        except (RuntimeError, ValueError, TypeError):
            detail = None
        names.append(f"GPU {i}" + (f" ({detail})" if detail else ""))
    return names


def describe_device(mixed_precision: bool = False) -> str:
    """The device training runs on, in words (what ``resx train`` prints)."""
    gpus = gpu_names()
    if gpus:
        return f"{', '.join(gpus)}, mixed precision {'on' if mixed_precision else 'off'}"
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(os.cpu_count() or 1)
    note = " (train.mixed_precision ignored on a CPU)" if mixed_precision else ""
    return f"CPU, {threads} threads{note}"


@contextmanager
def precision_policy(mixed: bool) -> Iterator[str]:
    """Keras' global dtype policy for a block: ``mixed_float16`` when ``mixed`` and a GPU is there,
    else ``float32``; the previous policy is restored after it."""
    import keras

    name = "mixed_float16" if mixed and gpu_names() else "float32"
    if mixed and name == "float32":
        log.info("train.mixed_precision ignored: no GPU (float16 is slower on a CPU)")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def distribution_strategy():
    """A ``MirroredStrategy`` over the GPUs when TensorFlow sees more than one, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
