"""Devices and precision (core.learn.backend) with a faked device list: no GPU is reachable here."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf


@pytest.fixture
def fake_gpu(monkeypatch):
    """TensorFlow 'sees' one GPU: the physical and logical device lists and the device details."""
    gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: [gpu] if kind == "GPU" else real(kind))
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda dev: {"device_name": "NVIDIA H200"})
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda dev, on: seen.append((dev.name, on)))
    seen: list = []
    return seen


def test_a_visible_gpu_is_named_and_mixed_precision_applies(fake_gpu):
    from core.learn.backend import configure_devices, describe_device, gpu_names, precision_policy
    from core.learn.models import build_cnn, build_cvae

    assert gpu_names() == ["GPU 0 (NVIDIA H200)"]
    assert describe_device() == "GPU 0 (NVIDIA H200), mixed precision off"
    assert describe_device(True) == "GPU 0 (NVIDIA H200), mixed precision on"
    configure_devices()
    assert fake_gpu == [("/physical_device:GPU:0", True)]  # memory growth: a trainer and the server share it

    before = keras.config.dtype_policy().name
    with precision_policy(True) as name:
        assert name == "mixed_float16" and keras.config.dtype_policy().name == "mixed_float16"
        cnn = build_cnn(input_size=16, filters=(4, 4, 4), latent_dim=8)
        vae = build_cvae(input_size=16, filters=(4, 4, 4), latent_dim=8)
    assert keras.config.dtype_policy().name == before == "float32"  # restored
    assert cnn.get_layer("conv1").compute_dtype == "float16" and cnn.get_layer("conv1").variable_dtype == "float32"
    assert cnn.get_layer("class").compute_dtype == "float32"  # the softmax feeding the loss
    for layer in ("z_mean", "z_log_var", "z"):
        assert vae.encoder.get_layer(layer).compute_dtype == "float32"
    assert vae.decoder.get_layer("output").compute_dtype == "float32"
    assert vae.decoder.get_layer("deconv1").compute_dtype == "float16"
    assert cnn.predict(np.zeros((2, 16, 16, 1), np.float32), verbose=0).dtype == np.float32


def test_without_a_gpu_training_stays_float32_on_the_cpu(monkeypatch):
    from core.learn.backend import describe_device, distribution_strategy, gpu_names, precision_policy

    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [] if kind == "GPU" else real(kind))
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "3")
    assert gpu_names() == []
    assert describe_device() == "CPU, 3 threads"
    assert describe_device(True) == "CPU, 3 threads (train.mixed_precision ignored on a CPU)"
    with precision_policy(True) as name:
        assert name == "float32" and keras.config.dtype_policy().name == "float32"
    assert distribution_strategy() is tf.distribute.get_strategy()


def test_cvae_train_step_scales_the_loss_for_mixed_precision():
    """The CvAE's own train_step goes through optimizer.scale_loss (a LossScaleOptimizer under mixed_float16)."""
    from core.learn.models import build_cvae

    keras.utils.set_random_seed(0)
    vae = build_cvae(input_size=16, filters=(4, 4, 4), latent_dim=4)
    opt = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-3), initial_scale=2.0**10)
    vae.compile(optimizer=opt)
    calls = []
    real = opt.scale_loss
    opt.scale_loss = lambda loss: calls.append(1) or real(loss)
    vae.fit(np.random.default_rng(0).normal(0, 0.1, (8, 16, 16, 1)).astype("float32"), epochs=1, batch_size=4,
            verbose=0)
    assert calls and int(opt.iterations.numpy()) == 2
