"""The paper's two networks (§4, Figure 7), built with the Keras functional API.

* :func:`build_cnn` — the supervised classifier::

      stamp (S, S, 1)
      -> GaussianNoise(0.02)
      -> 3 x [Conv2D(f_i, tanh) -> MaxPooling2D(2) -> Dropout(0.5)]
      -> Flatten -> Dense(512, tanh)  "latent"   (the latent space of §5)
      -> Dense(5, softmax)            "class"    (order of core.labels.CLASSES)

* :func:`build_cvae` — the convolutional variational autoencoder (no dropout)::

      encoder: stamp -> GaussianNoise(0.02) -> 3 x Conv2D(f_i, ReLU, stride 2) -> Flatten
               -> Dense(512, ReLU) -> z_mean (512), z_log_var (512) -> Sampling -> z
      decoder: z -> Dense(ReLU) -> Reshape -> Conv2DTranspose(f_2, ReLU, stride 2)
               -> Conv2DTranspose(f_1, ReLU, stride 2) -> Conv2DTranspose(1, tanh, stride 2)
               -> Cropping2D to (S, S)

  The three transposed convolutions undo the encoder's three stride-2 convolutions; for a
  side that is not a multiple of 8 (e.g. 50 -> 25 -> 13 -> 7 -> 56) the decoder's output is
  cropped back to the input size, so 50 x 50 and 64 x 64 (and any other size >= 8) work.

Defaults (config section ``models``; the paper gives no filter counts or kernel sizes):
``filters = (32, 64, 128)`` per block, ``kernel_size = 3``, ``latent_dim = 512``,
``noise_stddev = 0.02``, ``dropout = 0.5``. With a 50 x 50 input the CNN has ~2.5 M and the
CvAE ~7.1 M weights.

CvAE loss (eqs. 4–6): ``MSE + kl_weight * KL`` with
``KL = -0.5 * (1 + ln σ² - μ² - σ²)``, averaged over the latent dimensions and the batch
(``kl_reduction = "mean"``; ``"sum"`` is the textbook ELBO). Eq. 5 writes the MSE as
``1/N Σ_ij (I - Î)²``: we read N as the number of stamps, the squared error summed over a
stamp's pixels i, j (``recon_reduction = "sum"``, the default). Read with N the number of
pixels (``"mean"``), the reconstruction term is 2,500 x smaller for a 50 x 50 stamp and, at the
paper's KL weight of 1, the KL term dominates and pushes the posterior towards the prior, so the
latents lose the residual strength that the paper's CvAE latents carry (§5); ``"sum"`` is the
reading that keeps it. ``tests/benchmarks/bench_cvae_choices.py`` measures both readings
(reconstruction MSE against the trivial all-zero reconstruction, KL, and Spearman ρ of PC1 with
log SPF). **The log is natural**: the encoder's ``z_log_var`` output is ln σ², the Sampling layer
uses σ = exp(0.5 z_log_var), and only with ln is ``exp(log σ²) = σ²`` and the term the KL
divergence of N(μ, σ²) from N(0, 1). The paper's eq. 6 prints log₁₀, which we read as a
typesetting slip (with log₁₀ the expression is not a KL divergence and is not minimised at
σ = 1).

Initialisation and KL warm-up of the CvAE (not in the paper, which gives neither; config
section ``models``). On noise-dominated object-only stamps (most of the pixel variance is sky
noise) a CvAE with Keras' defaults tends to stay at the trivial solution (reconstruction ≈ 0):
the randomly initialised decoder's output adds error, and the fastest way to remove it is to
switch the ReLUs off, after which no gradient reaches the encoder. Hence:

* ``kernel_initializer = "he_normal"`` for the ReLU layers (He et al. 2015: keeps the
  activations' scale through ReLUs; Glorot shrinks them);
* ``output_init = "zeros"``: the decoder's tanh output layer starts with zero weights, so the
  first reconstructions are exactly 0 (the trivial solution) and training grows the output
  from there instead of killing the ReLUs to silence random output;
* ``log_var_bias = -6``: z_log_var starts at ln σ² = -6 (σ ≈ 0.05), so the sampling noise
  does not drown the encoder's still small means at the start;
* ``kl_warmup = 1/3``: the KL weight rises linearly from 0 to ``kl_weight`` over the first
  third of the training steps (:attr:`CVAE.kl_warmup_steps`, set by :mod:`core.learn.training`;
  0 = the paper's constant weight).

``tests/benchmarks/bench_cvae_choices.py`` measures these choices against Keras' defaults and
against the paper's constant KL weight (``--variants``); the evaluation of every CvAE run records
``recon_mse_ratio`` (its MSE over the trivial reconstruction's), so a CvAE stuck at the trivial
solution shows as a ratio of ~1.

Everything here is registered with Keras (package ``resx``), so ``keras.models.load_model``
reloads a saved ``model.keras`` once this module is imported.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import keras  # noqa: E402
from keras import layers, ops

from core.labels import CLASSES
from core.workspace.config import DEFAULT_CONFIG

#: Name of the CNN's 512-d latent layer (the one §5 analyses).
LATENT_LAYER = "latent"

#: Defaults of config section ``models``, from :data:`core.workspace.config.DEFAULT_CONFIG`
#: (``input_size`` there is None, meaning ``prep.cutout``).
DEFAULTS: dict[str, Any] = {
    **DEFAULT_CONFIG["models"],
    "input_size": DEFAULT_CONFIG["prep"]["cutout"],
    "filters": tuple(DEFAULT_CONFIG["models"]["filters"]),
}


# ----------------------------------------------------------------------------------------
# CNN
# ----------------------------------------------------------------------------------------
def build_cnn(
    input_size: int = 50,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    latent_dim: int = 512,
    noise_stddev: float = 0.02,
    dropout: float = 0.5,
    n_classes: int = len(CLASSES),
) -> keras.Model:
    """The supervised CNN of §4.1 (uncompiled).

    Parameters
    ----------
    input_size : int
        Side of the square single-channel input stamp, px.
    filters : sequence of int
        Filters of each Conv2D block (the paper has three blocks).
    kernel_size : int
        Side of the convolution kernels.
    latent_dim : int
        Units of the tanh latent layer (named :data:`LATENT_LAYER`).
    noise_stddev : float
        Standard deviation of the entrance GaussianNoise (active in training only).
    dropout : float
        Dropout rate after each Conv+MaxPool block.
    n_classes : int
        Softmax outputs (the order of :data:`core.labels.CLASSES`).

    Returns
    -------
    keras.Model
        Input ``(input_size, input_size, 1)``, output ``(n_classes,)`` probabilities.
    """
    inputs = keras.Input(shape=(input_size, input_size, 1), name="stamp")
    x = layers.GaussianNoise(noise_stddev, name="noise")(inputs)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, padding="same", activation="tanh", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
        x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, activation="tanh", name=LATENT_LAYER)(x)
    # float32 even under mixed precision (core.learn.backend): the softmax feeds the loss
    outputs = layers.Dense(n_classes, activation="softmax", name="class", dtype="float32")(latent)
    return keras.Model(inputs, outputs, name="cnn")


# ----------------------------------------------------------------------------------------
# CvAE
# ----------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="resx")
class Sampling(layers.Layer):
    """Draw ``z = μ + exp(0.5 ln σ²) ε`` with ε ~ N(0, 1) (the reparameterisation trick).

    Inputs are ``[z_mean, z_log_var]``; ``z_log_var`` is the natural log of the variance.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed}


def kl_divergence(z_mean, z_log_var, reduction: str = "mean"):
    """KL divergence of N(μ, σ²) from N(0, 1), with ``z_log_var`` = ln σ² (natural log).

    ``-0.5 (1 + ln σ² - μ² - σ²)`` per latent dimension, averaged (``reduction="mean"``) or
    summed (``"sum"``) over the dimensions, then averaged over the batch. The paper's eq. 6
    prints log₁₀; see the module docstring for why this is ln.
    """
    per_dim = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    if reduction == "sum":
        per_sample = ops.sum(per_dim, axis=-1)
    elif reduction == "mean":
        per_sample = ops.mean(per_dim, axis=-1)
    else:
        raise ValueError(f"kl_reduction must be 'mean' or 'sum', not {reduction!r}")
    return ops.mean(per_sample)


def _encoder_sizes(input_size: int, n: int) -> list[int]:
    sizes = [input_size]
    for _ in range(n):
        sizes.append(math.ceil(sizes[-1] / 2))  # Conv2D stride 2, padding "same"
    return sizes


def build_encoder(
    input_size: int = 50,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    latent_dim: int = 512,
    noise_stddev: float = 0.02,
    kernel_initializer: str = "he_normal",
    log_var_bias: float = -6.0,
) -> keras.Model:
    """The CvAE encoder: stamp -> ``[z_mean, z_log_var, z]`` (each ``(latent_dim,)``).

    ``kernel_initializer`` initialises the ReLU layers; z_log_var's bias starts at
    ``log_var_bias`` (ln σ²; see the module docstring)."""
    inputs = keras.Input(shape=(input_size, input_size, 1), name="stamp")
    x = layers.GaussianNoise(noise_stddev, name="noise")(inputs)
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", activation="relu",
                          kernel_initializer=kernel_initializer, name=f"conv{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(latent_dim, activation="relu", kernel_initializer=kernel_initializer, name="dense")(x)
    # float32 even under mixed precision (core.learn.backend): the KL term and sampling use them
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(latent_dim, bias_initializer=keras.initializers.Constant(float(log_var_bias)),
                             name="z_log_var", dtype="float32")(x)
    z = Sampling(name="z", dtype="float32")([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def build_decoder(
    input_size: int = 50,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    latent_dim: int = 512,
    kernel_initializer: str = "he_normal",
    output_init: str = "zeros",
) -> keras.Model:
    """The CvAE decoder: ``z`` -> reconstructed stamp in [-1, 1] (tanh), cropped to the input size.

    ``kernel_initializer`` initialises the ReLU layers, ``output_init`` the tanh output layer's
    kernel (zeros: the first reconstructions are 0; see the module docstring)."""
    n = len(filters)
    start = _encoder_sizes(input_size, n)[-1]
    z = keras.Input(shape=(latent_dim,), name="z")
    x = layers.Dense(start * start * filters[-1], activation="relu", kernel_initializer=kernel_initializer,
                     name="dense")(z)
    x = layers.Reshape((start, start, filters[-1]), name="reshape")(x)
    # Mirror the encoder: filters f_{n-1}, ..., f_1, then the single-channel tanh output.
    out_filters = list(filters[:-1])[::-1] + [1]
    for i, f in enumerate(out_filters, start=1):
        last = i == len(out_filters)
        x = layers.Conv2DTranspose(
            f, kernel_size, strides=2, padding="same",
            activation="tanh" if last else "relu", name="output" if last else f"deconv{i}",
            kernel_initializer=output_init if last else kernel_initializer,
            dtype="float32" if last else None,  # the reconstruction feeds the loss: float32 under mixed precision
        )(x)
    excess = start * 2**n - input_size
    if excess:
        x = layers.Cropping2D(((excess // 2, excess - excess // 2),) * 2, name="crop", dtype="float32")(x)
    return keras.Model(z, x, name="decoder")


@keras.saving.register_keras_serializable(package="resx")
class CVAE(keras.Model):
    """Convolutional variational autoencoder: total loss = MSE + kl_weight * KL (eqs. 4–6).

    ``fit`` takes images, or ``(images, labels)`` pairs whose labels it ignores (the balanced
    augmentation pipeline yields pairs). Calling the model reconstructs from the encoder mean
    (deterministic); training reconstructs from a sample ``z``.

    Parameters
    ----------
    encoder, decoder : keras.Model
        From :func:`build_encoder` and :func:`build_decoder`.
    kl_weight : float
        Weight of the KL term (1 in the paper).
    kl_reduction : {"mean", "sum"}
        See :func:`kl_divergence`.
    recon_reduction : {"mean", "sum"}
        Squared error summed over a stamp's pixels and averaged over the batch (``"sum"``, the
        default: eq. 5 with N the number of stamps) or averaged over the pixels too (``"mean"``).
    kl_warmup_steps : int
        The KL weight used in training rises linearly from 0 at optimizer step 0 to
        ``kl_weight`` at this step (0: constant ``kl_weight``, the paper). :mod:`core.learn.training`
        sets it from ``models.kl_warmup`` x the run's total steps.
    """

    def __init__(self, encoder: keras.Model, decoder: keras.Model, kl_weight: float = 1.0,
                 kl_reduction: str = "mean", recon_reduction: str = "sum", kl_warmup_steps: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        if recon_reduction not in ("mean", "sum"):
            raise ValueError(f"recon_reduction must be 'mean' or 'sum', not {recon_reduction!r}")
        self.recon_reduction = recon_reduction
        self.encoder = encoder
        self.decoder = decoder
        self.kl_weight = float(kl_weight)
        self.kl_reduction = kl_reduction
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="recon_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def call(self, inputs, training=False):
        z_mean, z_log_var, z = self.encoder(inputs, training=training)
        return self.decoder(z if training else z_mean, training=training)

    def kl_beta(self, step):
        """The KL weight at optimizer step ``step``: ``kl_weight * min(1, step / kl_warmup_steps)``."""
        if self.kl_warmup_steps <= 0:
            return ops.convert_to_tensor(self.kl_weight, "float32")
        ramp = ops.minimum(1.0, ops.cast(step, "float32") / float(self.kl_warmup_steps))
        return self.kl_weight * ramp

    def compute_losses(self, x, training=False, kl_weight=None):
        """``(reconstruction MSE, KL, total)`` for a batch of images ``x``; the total uses
        ``kl_weight`` (default the model's)."""
        z_mean, z_log_var, z = self.encoder(x, training=training)
        reconstruction = self.decoder(z, training=training)
        sq = ops.square(ops.reshape(ops.cast(x, reconstruction.dtype), ops.shape(reconstruction)) - reconstruction)
        if self.recon_reduction == "sum":  # summed over the pixels, averaged over the batch
            recon = ops.mean(ops.sum(ops.reshape(sq, (ops.shape(sq)[0], -1)), axis=-1))
        else:  # eq. 5: the mean over pixels (and batch)
            recon = ops.mean(sq)
        kl = kl_divergence(z_mean, z_log_var, self.kl_reduction)
        beta = self.kl_weight if kl_weight is None else kl_weight
        return recon, kl, recon + beta * kl

    def _update(self, recon, kl, total):
        self.loss_tracker.update_state(total)
        self.recon_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        import tensorflow as tf

        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            recon, kl, total = self.compute_losses(x, training=True,
                                                   kl_weight=self.kl_beta(self.optimizer.iterations))
            scaled = self.optimizer.scale_loss(total)  # the loss scale of mixed precision; else total
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update(recon, kl, total)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        return self._update(*self.compute_losses(x, training=False))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "kl_weight": self.kl_weight,
            "kl_reduction": self.kl_reduction,
            "recon_reduction": self.recon_reduction,
            "kl_warmup_steps": self.kl_warmup_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "CVAE":
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


def build_cvae(
    input_size: int = 50,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    latent_dim: int = 512,
    noise_stddev: float = 0.02,
    kl_weight: float = 1.0,
    kl_reduction: str = "mean",
    recon_reduction: str = "sum",
    kernel_initializer: str = "he_normal",
    log_var_bias: float = -6.0,
    output_init: str = "zeros",
    kl_warmup_steps: int = 0,
) -> CVAE:
    """The CvAE of §4.2 (uncompiled, built). Parameters as :func:`build_cnn`, plus the loss's
    ``kl_weight``, ``kl_reduction``, ``recon_reduction`` and ``kl_warmup_steps`` (:class:`CVAE`)
    and the initialisation (:func:`build_encoder`, :func:`build_decoder`)."""
    encoder = build_encoder(input_size, filters, kernel_size, latent_dim, noise_stddev,
                            kernel_initializer=kernel_initializer, log_var_bias=log_var_bias)
    decoder = build_decoder(input_size, filters, kernel_size, latent_dim,
                            kernel_initializer=kernel_initializer, output_init=output_init)
    model = CVAE(encoder, decoder, kl_weight=kl_weight, kl_reduction=kl_reduction,
                 recon_reduction=recon_reduction, kl_warmup_steps=kl_warmup_steps, name="cvae")
    model.build((None, input_size, input_size, 1))
    return model


# ----------------------------------------------------------------------------------------
# From the configuration
# ----------------------------------------------------------------------------------------
def model_params(config: dict[str, Any]) -> dict[str, Any]:
    """The ``models`` section of a full configuration, completed (``input_size`` None ->
    ``prep.cutout``)."""
    params = {**DEFAULTS, **{k: v for k, v in config.get("models", {}).items() if v is not None}}
    if config.get("models", {}).get("input_size") is None:
        params["input_size"] = int(config.get("prep", {}).get("cutout", DEFAULTS["input_size"]))
    params["filters"] = tuple(int(f) for f in params["filters"])
    if len(params["filters"]) < 1:
        raise ValueError("models.filters needs at least one filter count")
    if params["input_size"] < 8:
        raise ValueError(f"models.input_size must be >= 8 px, not {params['input_size']}")
    return params


def build_model(kind: str, config: dict[str, Any]) -> keras.Model:
    """Build the ``"cnn"`` or ``"cvae"`` described by a configuration (its ``models`` section)."""
    p = model_params(config)
    common = dict(input_size=p["input_size"], filters=p["filters"], kernel_size=int(p["kernel_size"]),
                  latent_dim=int(p["latent_dim"]), noise_stddev=float(p["noise_stddev"]))
    if kind == "cnn":
        return build_cnn(dropout=float(p["dropout"]), **common)
    if kind == "cvae":
        return build_cvae(kl_weight=float(p["kl_weight"]), kl_reduction=p["kl_reduction"],
                          recon_reduction=p["recon_reduction"], kernel_initializer=str(p["kernel_initializer"]),
                          log_var_bias=float(p["log_var_bias"]), output_init=str(p["output_init"]), **common)
    raise ValueError(f"model must be 'cnn' or 'cvae', not {kind!r}")


def latent_model(model: keras.Model) -> keras.Model:
    """A model mapping stamps to the 512-d latents §5 analyses, without noise or dropout.

    CNN: the output of the Dense layer :data:`LATENT_LAYER`. CvAE: the encoder mean ``z_mean``.
    """
    if isinstance(model, CVAE):
        return keras.Model(model.encoder.inputs, model.encoder.outputs[0], name="cvae_latent")
    return keras.Model(model.inputs, model.get_layer(LATENT_LAYER).output, name="cnn_latent")


def model_kind(model: keras.Model) -> str:
    """``"cvae"`` for a :class:`CVAE`, else ``"cnn"``."""
    return "cvae" if isinstance(model, CVAE) else "cnn"
