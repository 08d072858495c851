"""The CNN and CvAE against the paper's §4 (Figure 7), the KL term, and the LR schedule."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import layers

from core.learn.models import (
    CVAE,
    LATENT_LAYER,
    Sampling,
    build_cnn,
    build_cvae,
    build_model,
    kl_divergence,
    latent_model,
    model_params,
)
from core.workspace.config import default_config


def _layers(model, kind):
    return [lay for lay in model.layers if isinstance(lay, kind)]


def _act(layer) -> str:
    return layer.activation.__name__


def test_cnn_matches_the_paper():
    m = build_cnn(input_size=50)
    names = [type(lay).__name__ for lay in m.layers]
    assert names == ["InputLayer", "GaussianNoise"] + ["Conv2D", "MaxPooling2D", "Dropout"] * 3 + \
        ["Flatten", "Dense", "Dense"]
    assert m.input_shape == (None, 50, 50, 1)
    assert _layers(m, layers.GaussianNoise)[0].stddev == pytest.approx(0.02)
    convs = _layers(m, layers.Conv2D)
    assert [c.filters for c in convs] == [32, 64, 128]
    assert all(_act(c) == "tanh" for c in convs)
    assert all(d.rate == 0.5 for d in _layers(m, layers.Dropout))
    latent = m.get_layer(LATENT_LAYER)
    assert latent.units == 512 and _act(latent) == "tanh"
    out = m.layers[-1]
    assert out.units == 5 and _act(out) == "softmax"
    # spatial sizes: 50 -> 25 -> 12 -> 6 after the three 2x2 poolings
    assert m.get_layer("flatten").output.shape[-1] == 6 * 6 * 128
    p = m.predict(np.zeros((2, 50, 50, 1), np.float32), verbose=0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_cvae_matches_the_paper():
    v = build_cvae(input_size=50)
    enc, dec = v.encoder, v.decoder
    assert _layers(enc, layers.GaussianNoise)[0].stddev == pytest.approx(0.02)
    convs = _layers(enc, layers.Conv2D)
    assert len(convs) == 3 and all(_act(c) == "relu" for c in convs)
    dense = enc.get_layer("dense")
    assert dense.units == 512 and _act(dense) == "relu"
    for name in ("z_mean", "z_log_var"):
        assert enc.get_layer(name).units == 512 and _act(enc.get_layer(name)) == "linear"
    assert isinstance(enc.get_layer("z"), Sampling)
    assert [o.shape[-1] for o in enc.outputs] == [512, 512, 512]
    deconvs = _layers(dec, layers.Conv2DTranspose)
    assert len(deconvs) == 3
    assert [_act(d) for d in deconvs] == ["relu", "relu", "tanh"]
    # the transposed convolutions mirror the encoder's filters: 128 -> 64 -> 32 -> 1 channel
    assert [d.filters for d in deconvs] == [64, 32, 1]
    assert dec.get_layer("reshape").output.shape[-1] == convs[-1].filters
    # no dropout anywhere
    assert not _layers(enc, layers.Dropout) and not _layers(dec, layers.Dropout)


@pytest.mark.parametrize("size", [50, 64, 45])
def test_reconstruction_has_the_input_size(size):
    v = build_cvae(input_size=size, filters=(4, 8, 8), latent_dim=16)
    x = np.random.default_rng(0).uniform(-1, 1, (3, size, size, 1)).astype(np.float32)
    r = v.predict(x, verbose=0)
    assert r.shape == x.shape
    assert np.all(np.abs(r) <= 1.0)  # tanh output


def test_input_size_and_filters_come_from_the_config():
    cfg = default_config()
    assert model_params(cfg)["input_size"] == cfg["prep"]["cutout"] == 50
    cfg["prep"]["cutout"] = 64
    cfg["models"]["filters"] = [8, 16, 16]
    m = build_model("cnn", cfg)
    assert m.input_shape == (None, 64, 64, 1)
    assert [c.filters for c in _layers(m, layers.Conv2D)] == [8, 16, 16]
    cfg["models"]["input_size"] = 40
    assert build_model("cvae", cfg).encoder.input_shape == (None, 40, 40, 1)
    with pytest.raises(ValueError):
        build_model("resnet", cfg)


def test_kl_uses_the_natural_log_of_the_variance():
    mu = np.zeros((1, 4), np.float32)
    var = 4.0
    got = float(kl_divergence(mu, np.full((1, 4), math.log(var), np.float32)))
    # KL(N(0, 4) || N(0, 1)) = 0.5 (σ² - 1 - ln σ²) per dimension, worked out by hand: 0.80685
    assert got == pytest.approx(0.5 * (var - 1 - math.log(var)), rel=1e-6)
    assert got == pytest.approx(0.806853, abs=1e-6)
    # Reading z_log_var as log10 would give 0.5 (4 - 1 - log10 4) = 1.19897: not what we compute
    assert abs(got - 0.5 * (var - 1 - math.log10(var))) > 0.3
    # minimum 0 at μ = 0, σ = 1; μ² / 2 for a shifted mean
    assert float(kl_divergence(mu, mu)) == pytest.approx(0.0, abs=1e-7)
    assert float(kl_divergence(np.full((1, 4), 2.0, np.float32), mu)) == pytest.approx(2.0)
    # "sum" adds over the latent dimensions
    assert float(kl_divergence(np.full((1, 4), 2.0, np.float32), mu, "sum")) == pytest.approx(8.0)


def test_sampling_reads_log_variance_as_natural_log():
    keras.utils.set_random_seed(1)
    n = 20000
    z = Sampling()([np.full((n, 1), 3.0, np.float32), np.full((n, 1), math.log(4.0), np.float32)])
    z = np.asarray(z)
    assert z.mean() == pytest.approx(3.0, abs=0.05)
    assert z.std() == pytest.approx(2.0, abs=0.05)  # σ = exp(0.5 ln 4) = 2


def test_cvae_loss_is_mse_plus_kl_and_trains():
    keras.utils.set_random_seed(0)
    v = build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8, kl_weight=1.0)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 16, 16, 1)).astype(np.float32)
    recon, kl, total = (float(t) for t in v.compute_losses(x, training=False))
    assert total == pytest.approx(recon + kl, rel=1e-6)
    assert recon > 0 and kl >= 0
    v.compile(optimizer=keras.optimizers.Adam(1e-3))
    h = v.fit(x, epochs=2, batch_size=4, verbose=0)
    assert set(h.history) >= {"loss", "recon_loss", "kl_loss"}
    np.testing.assert_allclose(h.history["loss"], np.add(h.history["recon_loss"], h.history["kl_loss"]), rtol=1e-4)


def test_cvae_reconstruction_summed_over_pixels_is_pixel_count_times_the_mean():
    keras.utils.set_random_seed(0)
    kw = dict(input_size=16, filters=(4, 8, 8), latent_dim=8, kl_weight=0.0)
    mean = build_cvae(recon_reduction="mean", **kw)
    summed = build_cvae(**kw)  # the default: eq. 5 with N = stamps
    lv = mean.encoder.get_layer("z_log_var")  # sigma ~ 2e-9: z = z_mean, both decode the same z
    lv.set_weights([np.zeros_like(lv.get_weights()[0]), np.full_like(lv.get_weights()[1], -40.0)])
    summed.set_weights(mean.get_weights())
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 16, 16, 1)).astype(np.float32)
    r_mean = float(mean.compute_losses(x)[0])
    r_sum = float(summed.compute_losses(x)[0])
    assert r_sum == pytest.approx(16 * 16 * r_mean, rel=1e-5)
    # by hand: the decoder of the encoder mean, squared error summed per stamp, batch mean
    rec = np.asarray(mean(x))
    assert r_sum == pytest.approx(float(((rec - x) ** 2).sum(axis=(1, 2, 3)).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="recon_reduction"):
        build_cvae(recon_reduction="max", **kw)


def test_models_save_and_reload(tmp_path):
    for model in (build_cnn(input_size=16, filters=(4, 8, 8), latent_dim=8),
                  build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8)):
        x = np.random.default_rng(0).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        back = keras.models.load_model(path)
        assert type(back) is type(model)
        np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
        lat = latent_model(back).predict(x, verbose=0)
        assert lat.shape == (4, 8)
    assert isinstance(back, CVAE)
    # the latent model of the CvAE is the encoder mean: deterministic
    np.testing.assert_allclose(latent_model(back).predict(x, verbose=0), lat, atol=1e-6)


def test_step_halving_schedule():
    from core.learn.schedule import make_schedule

    s = make_schedule(1e-4, total_steps=300)
    got = [float(s(step)) for step in (0, 99, 100, 199, 200, 299)]
    np.testing.assert_allclose(got, [1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5], rtol=1e-6)
    again = type(s).from_config(s.get_config())
    assert float(again(250)) == pytest.approx(2.5e-5)


def test_cvae_initialisation_starts_from_zero_reconstructions_and_small_sigma():
    keras.utils.set_random_seed(0)
    v = build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8)
    enc = v.encoder
    np.testing.assert_array_equal(enc.get_layer("z_log_var").get_weights()[1], np.full(8, -6.0, np.float32))
    np.testing.assert_array_equal(v.decoder.get_layer("output").get_weights()[0], 0.0)
    x = np.random.default_rng(1).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
    # zero output kernel and bias: tanh(0) = 0 whatever z is
    np.testing.assert_array_equal(np.asarray(v(x, training=True)), 0.0)
    _, z_log_var, _ = enc.predict(x, verbose=0)
    sigma = np.exp(0.5 * z_log_var)  # ln sigma^2 = -6 + (kernel . activations): ~0.05
    assert np.median(sigma) == pytest.approx(math.exp(-3.0), rel=0.5)
    for name in ("conv1", "conv2", "conv3", "dense"):
        assert type(enc.get_layer(name).kernel_initializer).__name__ == "HeNormal"
    p = build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8, log_var_bias=0.0, output_init="glorot_uniform")
    assert np.all(p.encoder.get_layer("z_log_var").get_weights()[1] == 0.0)
    assert np.abs(p.decoder.get_layer("output").get_weights()[0]).max() > 0


def test_kl_warmup_rises_linearly_to_the_kl_weight_and_reloads(tmp_path):
    v = build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8, kl_weight=0.5, kl_warmup_steps=10)
    betas = [float(v.kl_beta(s)) for s in (0, 5, 10, 20)]
    assert betas == pytest.approx([0.0, 0.25, 0.5, 0.5])
    assert float(build_cvae(input_size=16, filters=(4, 8, 8), latent_dim=8, kl_weight=0.5).kl_beta(0)) == 0.5
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (8, 16, 16, 1)).astype(np.float32)
    recon, kl, total = (float(t) for t in v.compute_losses(x, kl_weight=0.0))
    assert total == pytest.approx(recon)
    v.compile(optimizer=keras.optimizers.Adam(1e-3))
    v.fit(x, epochs=3, batch_size=4, verbose=0)  # 6 steps: beta is now 0.3 in training
    assert float(v.kl_beta(v.optimizer.iterations)) == pytest.approx(0.3)
    v.save(tmp_path / "v.keras")
    assert keras.models.load_model(tmp_path / "v.keras", compile=False).kl_warmup_steps == 10


def test_cvae_config_carries_the_initialisation():
    cfg = default_config()
    cfg["models"].update(input_size=16, filters=[4, 8, 8], latent_dim=8, log_var_bias=-2.0, output_init="zeros")
    v = build_model("cvae", cfg)
    np.testing.assert_array_equal(v.encoder.get_layer("z_log_var").get_weights()[1], -2.0)
    assert model_params(default_config())["kl_warmup"] == pytest.approx(1 / 3)
