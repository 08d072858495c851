"""Every default of the tool in one place: the paper's parameters (§3–5), each overridable.

A workspace's ``config.toml`` is this dictionary, written out at ``resx ingest`` time so a
campaign records exactly the settings it ran with. Modules read their own section.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

DEFAULT_CONFIG: dict[str, Any] = {
    # Catalog column mapping {standard name: your column}, e.g. {hmag = "H_F160W"} (core.io.catalog).
    "catalog": {"columns": {}},
    # Sample selection (paper §2.1). Set a bound to "none" in the TOML file to disable it.
    "cuts": {
        "hmag_max": 24.5,  # H < 24.5 mag
        "logmass_min": 9.5,  # log M*/Msun >= 9.5
        "z_min": 1.0,  # 1 <= z <= 3
        "z_max": 3.0,
        "photflag": 0,  # PhotFlag == 0
    },
    # Object-only stamps (paper §3.1).
    "prep": {
        "kernel_radius": 5.0,  # 2-D tophat filter kernel radius, px
        "thresh": 0.75,  # detection threshold in units of the background rms
        "minarea": 7,  # minimum source area, px
        "deblend_nthresh": 32,
        "deblend_cont": 0.005,
        "goi_search_radius": 3.0,  # px: nearest segment when the centroid pixel is unsegmented
        "sky_block": 5,  # px: side of the resampled sky blocks
        "cutout": 50,  # px: side of the square cutout centred on the GALFIT centroid
        "seed": 0,  # sky resampling; each galaxy uses (seed, crc32(id))
        "chunk": 256,  # galaxies per stored chunk (and per Dask task)
        "rff_absolute": False,  # RFF sums R as paper eq. 3; True: |R| as Hoyos et al. (2012)
    },
    # Input scaling (paper §3.1).
    "scaling": {
        "method": "maxabs",  # maxabs | standard | robust | minmax | power | quantile
        "per": "stamp",  # stamp | sample (per stamp: see core.learn.scaling for why)
    },
    # Train/test split and augmentation (paper §3.2).
    "split": {"test_fraction": 0.2, "seed": 42},
    "augment": {"per_class": 5000, "rotation_step_deg": 45, "flip": True, "seed": 42},
    # Models (paper §4; core.learn.models). The paper gives no filter counts or kernel sizes: the
    # defaults (32, 64, 128 filters of 3x3) follow the usual doubling per block.
    "models": {
        "input_size": None,  # px; None = prep.cutout (50 by default; 64 works)
        "filters": [32, 64, 128],  # per convolutional block (CNN and CvAE encoder; decoder mirrors)
        "kernel_size": 3,
        "latent_dim": 512,  # Dense latent layer (CNN) and mu / log sigma^2 / z (CvAE)
        "noise_stddev": 0.02,  # GaussianNoise at the entrance
        "dropout": 0.5,  # after each Conv+MaxPool block (CNN only)
        "kl_weight": 1.0,  # CvAE: total loss = MSE + kl_weight * KL
        "kl_reduction": "mean",  # CvAE: KL averaged ("mean") or summed ("sum") over latent dims
        "recon_reduction": "sum",  # CvAE: squared error summed over a stamp's pixels, batch mean (eq. 5, N = stamps); "mean" also averages over pixels (collapses at kl_weight 1; core.learn.models)
        # CvAE initialisation and KL warm-up (not in the paper; see core.learn.models): without them the
        # CvAE stays at the trivial solution (reconstructions ~ 0) on noise-dominated stamps.
        "kernel_initializer": "he_normal",  # CvAE ReLU layers
        "log_var_bias": -6.0,  # CvAE: initial ln sigma^2 of the encoder (sigma ~ 0.05)
        "output_init": "zeros",  # CvAE: kernel of the decoder's tanh output layer (first reconstructions 0)
        "kl_warmup": 0.3333333333333333,  # CvAE: KL weight rises 0 -> kl_weight over this fraction of the steps (0 = paper)
    },
    # Training schedule (paper §4.1; core.learn.train).
    "train": {
        "epochs": 100,  # maximum epochs
        "batch_size": 32,
        "learning_rate": 1.0e-4,  # Adam, initial
        "lr_drop_every": 0.3333333333333333,  # fraction of the total steps between halvings
        "lr_factor": 0.5,
        "per_class": None,  # augmented images per class per epoch; None = augment.per_class
        "seed": 42,
        "deterministic": False,  # tf.config.experimental.enable_op_determinism (slower)
    },
    # Latent analysis (paper §5; core.latent.analysis).
    "embed": {
        "n_components": 3,  # PCA components
        "k_max": 15,  # k-means inertia for k = 1..k_max
        "cluster_dims": 2,  # k-means elbow and GMM on PC1..PC<cluster_dims>
        "svc_gamma": 0.7,  # CNN: RBF SVC on standardised PCs
        "svc_c": 1.0,
        "svc_kernel_cnn": "rbf",
        "svc_kernel_cvae": "linear",
        "svc_target": "labels",  # "labels" (train split's classes) or "gmm" (the GMM clusters, as the paper)
        "svc_max_train": 5000,  # fit the SVC on a seeded subsample beyond this many galaxies (2-D: plenty)
        "grid": 300,  # SVC decision grid, points per axis
        "batch_size": 256,  # latent inference batch
        "dask_threshold": 50000,  # galaxies: above this, inference runs chunk-wise on Dask
        "align": True,  # align PCs to the previous run of the same model (orthogonal Procrustes)
        "seed": 0,
    },
    # Vote store and consensus (paper §2.3); see core.votes.store and core.votes.consensus.
    "votes": {
        "min_votes": 3,  # a label needs at least this many non-skip votes ...
        "fraction": 2 / 3,  # ... and at least this share of them (2/3 majority)
        "blind": True,  # the dashboard hides other inspectors' votes until one has voted
        "database_url": None,  # None: votes.sqlite in the workspace; or postgresql://user@host/db
        "experts": [],  # inspector names registered as experts (their vote validates)
    },
}


def default_config() -> dict[str, Any]:
    """A deep copy of :data:`DEFAULT_CONFIG`."""
    return copy.deepcopy(DEFAULT_CONFIG)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (override wins)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _strip_none(obj: Any) -> Any:
    # TOML has no null: a None value is written as the string "none".
    if isinstance(obj, dict):
        return {k: _strip_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strip_none(v) for v in obj]
    return "none" if obj is None else obj


def _restore_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _restore_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_none(v) for v in obj]
    return None if obj == "none" else obj


def write_config(config: dict[str, Any], path: str | Path) -> None:
    """Write a configuration dictionary as TOML."""
    Path(path).write_text(tomli_w.dumps(_strip_none(config)))


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML configuration and complete it with the defaults of any missing key."""
    with open(path, "rb") as fh:
        user = tomllib.load(fh)
    return merge(default_config(), _restore_none(user))
