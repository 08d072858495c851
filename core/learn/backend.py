"""TensorFlow plumbing shared by training and latent inference: quiet logs, the distribution strategy."""

from __future__ import annotations

import logging
from contextlib import contextmanager

__all__ = ["distribution_strategy", "quiet_tensorflow"]


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


def distribution_strategy():
    """A ``MirroredStrategy`` over the GPUs when TensorFlow sees more than one, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
