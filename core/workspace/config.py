"""Every setting of the tool, declared once: its type, its default and what it does.

:data:`SCHEMA` declares each section and key of a workspace's ``config.toml`` as a :class:`Key`
(type, default, one-line doc, and the accepted values where the code accepts a fixed set);
:data:`DEFAULT_CONFIG` (the paper's parameters, §3–5) is derived from it. A workspace's
``config.toml`` is the full configuration, written at ``resx ingest`` time so a campaign records
exactly the settings it ran with; a training run records its own copy. Modules read their own
section.

Reading a file checks it against the schema: an unknown section or key, a value of the wrong
type or outside its choices is a :class:`ConfigError` that lists every problem at once and, for
an unknown key, names the nearest valid one::

    ws/config.toml: unknown key 'prep.cutot'; did you mean 'prep.cutout'?

Types: an integer is accepted where a number (float) is declared, a boolean is never an integer.
TOML has no null: ``None`` is written as the string ``"none"`` (e.g. a disabled cut,
``cuts.hmag_max = "none"``) and read back as ``None``.

Schema versions and migrations
------------------------------
``config.toml`` carries a top-level ``schema_version`` (:data:`SCHEMA_VERSION`); a file without
one is version 1, i.e. written before the schema existed. Reading an older file migrates it step
by step: :data:`MIGRATIONS` maps a version ``v`` to the function that turns a version-``v``
file into a version ``v + 1`` one. Each migration edits the file's raw dictionary (before the
defaults are filled in) and returns, in words, what it changed. Two helpers cover the usual
cases:

* :func:`move_key` — a key renamed or moved to another section;
* :func:`keep_old_default` — a default that changes: a file written under the old default keeps
  the value it ran with (its explicit value, or the old default if it relied on it), and the
  change says so; only new workspaces get the new default.

For example, ``prep.rff_absolute`` changed its default from ``False`` to ``True`` in schema 3: the
new default is set in :data:`SCHEMA`, :data:`SCHEMA_VERSION` became 3, and the migration from schema 2
(``_schema_2_to_3``) says::

    keep_old_default(raw, "prep.rff_absolute", old=False, new=True)

:meth:`core.workspace.workspace.Workspace.open` logs the changes and writes the migrated file
back (once); :func:`read_config` migrates in memory only (a run's ``config.toml`` is a record).
A file whose ``schema_version`` is newer than this code's is refused.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import tomllib
import types
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union, get_args, get_origin

import tomli_w

from core.errors import ResxError

__all__ = [
    "SCHEMA_VERSION",
    "Key",
    "SCHEMA",
    "DEFAULT_CONFIG",
    "MIGRATIONS",
    "ConfigError",
    "ConfigFile",
    "default_config",
    "merge",
    "problems",
    "validate",
    "migration",
    "migrate",
    "move_key",
    "keep_old_default",
    "load_config",
    "read_config",
    "write_config",
]

log = logging.getLogger(__name__)

#: The version of the schema this code reads and writes (``schema_version`` in ``config.toml``).
SCHEMA_VERSION = 4

#: Scaling methods of :mod:`core.learn.scaling` (``METHODS`` there) and SVC kernels accepted.
_SCALERS = ("maxabs", "standard", "robust", "minmax", "power", "quantile")
_SVC_KERNELS = ("rbf", "linear", "poly", "sigmoid")


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default, a one-line doc and (optionally) its choices.

    Parameters
    ----------
    type : type
        ``int``, ``float`` (an int is accepted), ``bool``, ``str``, ``list[int]``,
        ``list[str]``, ``dict[str, str]``, or any of these ``| None`` (``"none"`` in TOML).
    default : object
        The default value (copied into :data:`DEFAULT_CONFIG`).
    doc : str
        What the key does, in one line.
    choices : tuple of str, optional
        The only values accepted (besides ``None`` when the type allows it).
    """

    type: Any
    default: Any
    doc: str
    choices: tuple[str, ...] | None = None

    def problem(self, name: str, value: Any) -> str | None:
        """Why ``value`` is not valid for the key ``name`` (dotted), or ``None`` if it is."""
        if get_origin(self.type) is dict and isinstance(value, dict):  # name the offending entry
            _, item = get_args(self.type)
            for k, v in value.items():
                if not _matches(v, item):
                    return f"{name}.{k} must be {_type_name(item)}, not {_show(v)}"
        if not _matches(value, self.type):
            return f"{name} must be {_type_name(self.type)}, not {_show(value)}"
        if self.choices is not None and value is not None and value not in self.choices:
            near = difflib.get_close_matches(str(value), self.choices, n=1, cutoff=0.5)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            return (f"{name} must be one of {', '.join(map(repr, self.choices))}, "
                    f"not {_show(value)}{hint}")
        return None


# The schema. Section comments say where the settings are used; each key's doc is its one line.
SCHEMA: dict[str, dict[str, Key]] = {
    # Catalog column mapping (core.io.catalog).
    "catalog": {
        "columns": Key(dict[str, str], {},
                       'catalog column mapping {standard name: your column}, e.g. {hmag = "H_F160W"}'),
        "goi_radius": Key(float, 5.0, "px: the GOI's GALFIT component must lie this near the target (the catalog "
                          "RA/Dec, else the block centre), alone among the Sersic components, or it is flagged"),
    },
    # Sample selection (paper §2.1). Set a bound to "none" in the TOML file to disable it.
    "cuts": {
        "hmag_max": Key(float | None, 24.5, "H < 24.5 mag"),
        "logmass_min": Key(float | None, 9.5, "log M*/Msun >= 9.5"),
        "z_min": Key(float | None, 1.0, "1 <= z ..."),
        "z_max": Key(float | None, 3.0, "... z <= 3"),
        "photflag": Key(int | None, 0, "PhotFlag == 0"),
    },
    # Object-only stamps (paper §3.1; core.prep.pipeline).
    "prep": {
        "kernel_radius": Key(float, 5.0, "2-D tophat filter kernel radius, px"),
        "thresh": Key(float, 0.75, "detection threshold in units of the background rms"),
        "minarea": Key(int, 7, "minimum source area, px"),
        "deblend_nthresh": Key(int, 32, "SEP deblending thresholds"),
        "deblend_cont": Key(float, 0.005, "SEP minimum deblending contrast"),
        "goi_search_radius": Key(float, 3.0, "px: nearest segment when the centroid pixel is unsegmented"),
        "sky_block": Key(int, 5, "px: side of the resampled sky blocks"),
        "sky_background_box": Key(int, 8, "px: mesh of SEP's smooth background, subtracted from the sky before "
                                  "the blocks are drawn and added back where they land, where that removes "
                                  "seams (0: never, as the paper)"),
        "seam_max": Key(float, 2.0, "flag a resampled sky whose pixel differences across block edges exceed "
                        "those inside blocks by more than this ratio"),
        "cutout": Key(int, 50, "px: side of the stored stamps (the networks' input); each cutout is resampled "
                      "to it, conserving flux"),
        "cutout_size": Key(float, 3.0, "side of the region cut around the GALFIT centroid, in prep.cutout_unit"),
        "cutout_unit": Key(str, "arcsec", "unit of prep.cutout_size: arcsec (prep.cutout native px when the "
                           "pixel scale is unknown), px (native pixels) or re (the fitted Re)",
                           choices=("arcsec", "px", "re")),
        "pixel_scale": Key(float | None, None, "arcsec/px of the blocks; none = read from each block "
                           "(WCS, PIXSCALE, PLATESCL, ...)"),
        "goi_outside_max": Key(float, 0.05, "flag a galaxy larger than its cutout: more than this share of "
                               "the GOI segment's model flux outside the stamp"),
        "goi_fill_max": Key(float, 0.9, "flag a GOI segment that covers more than this share of the stamp"),
        "seed": Key(int, 0, "sky resampling; each galaxy uses (seed, crc32(id))"),
        "chunk": Key(int, 256, "galaxies per stored chunk (and per Dask task)"),
        "rff_absolute": Key(bool, True, "RFF sums |R| (Hoyos et al. 2012; eq. 3's 0.8 sigma is the mean "
                            "|noise|); false: the signed R eq. 3 prints"),
    },
    # Input scaling (paper §3.1; core.learn.scaling).
    "scaling": {
        "method": Key(str, "maxabs", "scaler of the stamps' pixel values", choices=_SCALERS),
        "per": Key(str, "stamp", "scale each stamp or the whole sample (see core.learn.scaling for why stamp)",
                   choices=("stamp", "sample")),
    },
    # Train/test split (paper §3.2; core.learn.augment.split_sample).
    "split": {
        "test_fraction": Key(float, 0.2, "share of each class held out for the test set"),
        "seed": Key(int, 42, "seed of the split"),
    },
    # Augmentation (paper §3.2; core.learn.augment).
    "augment": {
        "per_class": Key(int, 5000, "augmented images per class per epoch"),
        "rotation_step_deg": Key(float, 45, "rotations by multiples of this angle, degrees (must divide 360)"),
        "flip": Key(bool, True, "random horizontal flips"),
        "seed": Key(int, 42, "seed of the augmentation"),
    },
    # Models (paper §4; core.learn.models). The paper gives no filter counts or kernel sizes: the
    # defaults (32, 64, 128 filters of 3x3) follow the usual doubling per block. The CvAE's
    # initialisation and KL warm-up are not in the paper (see core.learn.models): without them the
    # CvAE stays at the trivial solution (reconstructions ~ 0) on noise-dominated stamps.
    "models": {
        "input_size": Key(int | None, None, "px; none = prep.cutout (50 by default; 64 works)"),
        "filters": Key(list[int], [32, 64, 128], "per convolutional block (CNN and CvAE encoder; decoder mirrors)"),
        "kernel_size": Key(int, 3, "side of the convolution kernels"),
        "latent_dim": Key(int, 512, "Dense latent layer (CNN) and mu / log sigma^2 / z (CvAE)"),
        "noise_stddev": Key(float, 0.02, "GaussianNoise at the entrance"),
        "dropout": Key(float, 0.5, "after each Conv+MaxPool block (CNN only)"),
        "kl_weight": Key(float, 1.0, "CvAE: total loss = MSE + kl_weight * KL"),
        "kl_reduction": Key(str, "mean", "CvAE: KL averaged (mean) or summed (sum) over latent dims",
                            choices=("mean", "sum")),
        "recon_reduction": Key(str, "sum", "CvAE: squared error summed over a stamp's pixels, batch mean "
                               "(eq. 5, N = stamps); mean also averages over pixels (collapses at kl_weight 1)",
                               choices=("mean", "sum")),
        "kernel_initializer": Key(str, "he_normal", "CvAE: Keras initializer of the ReLU layers"),
        "log_var_bias": Key(float, -6.0, "CvAE: initial ln sigma^2 of the encoder (sigma ~ 0.05)"),
        "output_init": Key(str, "zeros",
                           "CvAE: initializer of the decoder's tanh output layer (first reconstructions 0)"),
        "kl_warmup": Key(float, 1 / 3,
                         "CvAE: KL weight rises 0 -> kl_weight over this fraction of the steps (0 = paper)"),
    },
    # Training schedule (paper §4.1; core.learn.training).
    "train": {
        "epochs": Key(int, 100, "maximum epochs"),
        "batch_size": Key(int, 32, "images per batch"),
        "learning_rate": Key(float, 1.0e-4, "Adam, initial"),
        "lr_drop_every": Key(float, 1 / 3, "fraction of the total steps between learning-rate drops"),
        "lr_factor": Key(float, 0.5, "learning-rate factor at each drop"),
        "per_class": Key(int | None, None, "augmented images per class per epoch; none = augment.per_class"),
        "seed": Key(int, 42, "seed of the weights and batches"),
        "deterministic": Key(bool, False, "tf.config.experimental.enable_op_determinism (slower)"),
        # Early stopping (new in schema 4; core.learn.training): the paper trains "a maximum of" 100 epochs.
        "early_stopping": Key(bool, True, "stop when the validation loss has not improved for train.patience epochs"),
        "validation_fraction": Key(float, 0.1, "share of each class's training galaxies held out as the "
                                   "validation split (never the test split)"),
        "patience": Key(int, 10, "epochs without an improvement of val_loss before stopping"),
        "min_delta": Key(float, 0.0, "a decrease of val_loss smaller than this is no improvement"),
        "restore_best": Key(bool, True, "end with the weights of the epoch of the lowest val_loss"),
        "images_per_label": Key(float, 2.0, "a schedule sized to the labels (resx train --size-to-labels, the "
                                "dashboard's retrain): augmented images per labelled galaxy per epoch"),
        "min_per_class": Key(int, 32, "a schedule sized to the labels: at least this many images per class per epoch"),
        "mixed_precision": Key(bool, False, "mixed_float16 on a GPU (compute in float16, weights in float32); "
                               "ignored on CPU"),
    },
    # Latent analysis (paper §5; core.latent.analysis).
    "embed": {
        "n_components": Key(int, 3, "PCA components"),
        "k_max": Key(int, 15, "k-means inertia for k = 1..k_max"),
        "cluster_dims": Key(int, 2, "k-means elbow and GMM on PC1..PC<cluster_dims>"),
        "svc_gamma": Key(float, 0.7, "gamma of the RBF SVC (on standardised PCs)"),
        "svc_c": Key(float, 1.0, "C of the SVC"),
        "svc_kernel_cnn": Key(str, "rbf", "SVC kernel for CNN runs", choices=_SVC_KERNELS),
        "svc_kernel_cvae": Key(str, "linear", "SVC kernel for CvAE runs", choices=_SVC_KERNELS),
        "svc_target": Key(str, "labels", "fit the SVC to the train split's classes (labels) or to the GMM "
                          "clusters (gmm, as the paper)", choices=("labels", "gmm")),
        "svc_max_train": Key(int, 5000, "fit the SVC on a seeded subsample beyond this many galaxies"),
        "grid": Key(int, 300, "SVC decision grid, points per axis"),
        "batch_size": Key(int, 256, "latent inference batch"),
        "dask_threshold": Key(int, 50000, "galaxies: above this, inference runs chunk-wise on Dask"),
        "align": Key(bool, True, "align PCs to the previous run of the same model (orthogonal Procrustes)"),
        "seed": Key(int, 0, "seed of k-means, GMM and the SVC subsample"),
    },
    # Vote store and consensus (paper §2.3; core.votes.store, core.votes.consensus).
    "votes": {
        "min_votes": Key(int, 3, "a label needs at least this many non-skip votes ..."),
        "fraction": Key(float, 2 / 3, "... and at least this share of them (2/3 majority)"),
        "database_url": Key(str | None, None, "none: votes.sqlite in the workspace; or postgresql://user@host/db"),
        "experts": Key(list[str], [],
                       "inspector names registered as experts (their vote validates), in the store and the dashboard"),
        "method": Key(str, "majority", "consensus method (core.votes.methods): the 2/3 majority, Dawid-Skene "
                      "(ds) or classifier-aware (classifier); an expert's vote overrides each",
                      choices=("majority", "ds", "classifier")),
        "ds_prior_accuracy": Key(float, 0.8, "Dawid-Skene: a new inspector starts with this accuracy on every class"),
        "ds_prior_strength": Key(float, 5.0, "Dawid-Skene: pseudo-votes of that prior per row of each inspector's "
                                 "confusion matrix (0: maximum likelihood)"),
        "classifier_weight": Key(float | None, None, "classifier-aware: weight of the CNN's probabilities as an "
                                 "annotator; none = estimated from its agreement with the consensus (CROWDLAB)"),
    },
    # The active-learning queue (core.latent.acquisition, core.latent.queue); new keys, defaults
    # filled in for older files (no migration needed).
    "queue": {
        "strategy": Key(str, "bald", "ranking of the Inspect-next queue",
                        choices=("bald", "entropy", "margin", "disagreement", "random")),
        "n": Key(int, 48, "galaxies per queue batch"),
        "mc_passes": Key(int, 20, "BALD: Monte-Carlo dropout passes T (cost: T forward passes per galaxy)"),
        "pool_size": Key(int, 20000, "BALD: at most this many unretired galaxies, those of highest predictive "
                         "entropy (one deterministic pass), get the T MC passes"),
        "diversity": Key(float, 0.5, "0..1: each galaxy already queued from a GMM cluster scales the next "
                         "pick's score from that cluster by (1 - diversity)"),
        "retire_confidence": Key(float | None, None, "also retire a galaxy when the model's probability of its "
                                 "class is at least this and its non-skip votes agree with it; none = off"),
        "retire_votes": Key(int, 1, "... with at least this many agreeing votes"),
        "cold_start_labels": Key(int, 100, "decided consensus labels needed before the first CNN run "
                                 "(until then the queue comes from the CvAE map, or at random)"),
        "seed": Key(int, 0, "MC dropout and the random strategy"),
    },
    # The dashboard (app/); new in schema 2.
    "app": {
        "blind": Key(bool, True, "hide other inspectors' votes from an inspector until they have voted"),
        "retrain_epochs": Key(int, 10, "epochs proposed by the dashboard's retrain button"),
        # Roles bound to logins (issue 11; a new key, its default filled in for older files: no
        # migration). Experts are votes.experts; without authentication nobody is an expert and
        # the person at the machine is the lead only when the server listens on the loopback.
        "leads": Key(list[str], [], "logins with the lead role (with authentication): start a retrain, change "
                     "the active run, export in blind mode"),
        "stretch": Key(str, "asinh", "the gallery's residual stretch, in units of each galaxy's sky sigma",
                       choices=("linear", "asinh", "zscale")),
        "stretch_limit": Key(float, 5.0, "the gallery's visible residual range: +- this many sky sigma"),
        "bulk_confirm": Key(int, 50, "a vote on more galaxies than this at once asks for a confirmation"),
        "cutout_url": Key(str, "", "link to a public cutout service in the detail view: a template with "
                                   "{ra}, {dec} (degrees) and {id}; a catalog column cutout_url wins; '' = none"),
    },
}

#: Every default, ``{section: {key: value}}``, derived from :data:`SCHEMA`.
DEFAULT_CONFIG: dict[str, dict[str, Any]] = {
    section: {name: copy.deepcopy(key.default) for name, key in keys.items()} for section, keys in SCHEMA.items()
}


def default_config() -> dict[str, Any]:
    """A deep copy of :data:`DEFAULT_CONFIG`.

    Returns
    -------
    dict
        ``{section: {key: default}}``, safe to modify.
    """
    return copy.deepcopy(DEFAULT_CONFIG)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (override wins).

    Parameters
    ----------
    base, override : dict
        Nested dictionaries; neither is modified.

    Returns
    -------
    dict
        The merged copy.
    """
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ----------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------
class ConfigError(ResxError, ValueError):
    """A configuration that does not match the schema; the message lists every problem.

    Attributes
    ----------
    source : str
        The file (or a description of the in-memory configuration) the problems are in.
    problems : list of str
        One sentence per problem.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = str(source)
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"{self.source}: {self.problems[0]}"
        else:
            text = f"{self.source} has {len(self.problems)} problems:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


def _is_optional(typ: Any) -> bool:
    return get_origin(typ) in (Union, types.UnionType) and type(None) in get_args(typ)


def _matches(value: Any, typ: Any) -> bool:
    origin = get_origin(typ)
    if origin in (Union, types.UnionType):
        return any(_matches(value, t) for t in get_args(typ))
    if typ is type(None):
        return value is None
    if typ is bool:
        return isinstance(value, bool)
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if typ is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is str:
        return isinstance(value, str)
    if origin is list:
        (item,) = get_args(typ)
        return isinstance(value, (list, tuple)) and all(_matches(v, item) for v in value)
    if origin is dict:
        k, v = get_args(typ)
        return isinstance(value, dict) and all(_matches(a, k) and _matches(b, v) for a, b in value.items())
    raise TypeError(f"unsupported schema type {typ!r}")


_NAMES = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("true or false", "booleans"),
          str: ("a string", "strings")}


def _type_name(typ: Any) -> str:
    if _is_optional(typ):
        (other,) = [t for t in get_args(typ) if t is not type(None)]
        return f'{_type_name(other)} or "none"'
    origin = get_origin(typ)
    if origin is list:
        return f"a list of {_NAMES[get_args(typ)[0]][1]}"
    if origin is dict:
        return f"a table of {_NAMES[get_args(typ)[1]][1]} (name = value)"
    return _NAMES[typ][0]


def _show(value: Any) -> str:
    """A value as the user wrote it in TOML (roughly)."""
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _suggest_key(section: str, name: str) -> str | None:
    """The nearest valid dotted key to ``section.name``."""
    near = difflib.get_close_matches(name, SCHEMA[section], n=1, cutoff=0.6) if section in SCHEMA else []
    if near:
        return f"{section}.{near[0]}"
    elsewhere = [f"{s}.{name}" for s in SCHEMA if name in SCHEMA[s]]
    if elsewhere:
        return elsewhere[0]
    dotted = [f"{s}.{k}" for s in SCHEMA for k in SCHEMA[s]]
    near = difflib.get_close_matches(f"{section}.{name}" if section else name, dotted, n=1, cutoff=0.6)
    return near[0] if near else None


def problems(config: dict[str, Any]) -> list[str]:
    """Every way ``config`` departs from :data:`SCHEMA` (empty when it is valid).

    A partial configuration is valid: missing keys take their defaults.

    Parameters
    ----------
    config : dict
        ``{section: {key: value}}`` (``None`` for ``"none"``); a top-level ``schema_version``
        is allowed.

    Returns
    -------
    list of str
        One sentence per unknown section or key (naming the nearest valid one) and per value
        of the wrong type or outside its choices.
    """
    out: list[str] = []
    for section, body in config.items():
        if section == "schema_version":
            continue
        if section not in SCHEMA:
            if not isinstance(body, dict):  # a key written above every section header
                near = _suggest_key("", section)
                out.append(f"unknown key {section!r}" + (f"; did you mean {near!r} (under [{near.split('.')[0]}])?"
                                                         if near else ""))
                continue
            near = difflib.get_close_matches(section, SCHEMA, n=1, cutoff=0.6)
            out.append(f"unknown section [{section}]; "
                       + (f"did you mean [{near[0]}]?" if near else f"the sections are {', '.join(SCHEMA)}"))
            continue
        if not isinstance(body, dict):
            out.append(f"[{section}] must be a table of settings, not {_show(body)}")
            continue
        for name, value in body.items():
            key = SCHEMA[section].get(name)
            if key is None:
                near = _suggest_key(section, name)
                out.append(f"unknown key '{section}.{name}'; "
                           + (f"did you mean {near!r}?" if near else
                              f"the keys of [{section}] are {', '.join(SCHEMA[section])}"))
                continue
            problem = key.problem(f"{section}.{name}", value)
            if problem:
                out.append(problem)
    return out


def validate(config: dict[str, Any], source: str = "the configuration") -> None:
    """Raise :class:`ConfigError` listing every problem of ``config`` (see :func:`problems`).

    Parameters
    ----------
    config : dict
        A full or partial configuration.
    source : str
        Where it comes from (a path), for the message.

    Raises
    ------
    ConfigError
        An unknown section or key, or a value of the wrong type or outside its choices.
    """
    found = problems(config)
    if found:
        raise ConfigError(source, found)


# ----------------------------------------------------------------------------------------
# Schema versions and migrations
# ----------------------------------------------------------------------------------------
#: ``{v: function}``: the function turns the raw dictionary of a version-``v`` file into a version
#: ``v + 1`` one, in place, and returns what it changed (``None`` entries are dropped).
MIGRATIONS: dict[int, Callable[[dict[str, Any]], list[str | None]]] = {}


def migration(from_version: int) -> Callable:
    """Register the decorated function as the migration from ``from_version`` to the next version."""

    def register(fn: Callable[[dict[str, Any]], list[str | None]]):
        MIGRATIONS[from_version] = fn
        return fn

    return register


def _split(dotted: str) -> tuple[str, str]:
    section, _, name = dotted.partition(".")
    return section, name


def move_key(raw: dict[str, Any], old: str, new: str) -> str | None:
    """Move the dotted key ``old`` of a raw configuration to ``new`` (a rename or another section).

    Parameters
    ----------
    raw : dict
        The file's dictionary, modified in place.
    old, new : str
        Dotted keys, e.g. ``"votes.blind"`` and ``"app.blind"``.

    Returns
    -------
    str or None
        What changed, or ``None`` when the file did not set ``old``. When both are set, ``new``
        wins and ``old`` is dropped (the change says so).
    """
    osec, oname = _split(old)
    nsec, nname = _split(new)
    body = raw.get(osec)
    if not isinstance(body, dict) or oname not in body:
        return None
    value = body.pop(oname)
    target = raw.setdefault(nsec, {})
    if not isinstance(target, dict):  # malformed: leave it for validation to report
        body[oname] = value
        return None
    if nname in target:
        return f"{old} = {_show(value)} dropped: {new} = {_show(target[nname])} is also set and wins"
    target[nname] = value
    return f"{old} -> {new} (= {_show(value)})"


def keep_old_default(raw: dict[str, Any], key: str, *, old: Any, new: Any) -> str | None:
    """Carry a changed default: a file written under the ``old`` default keeps the value it ran with.

    Parameters
    ----------
    raw : dict
        The file's dictionary, modified in place.
    key : str
        Dotted key whose default changes from ``old`` to ``new``.
    old, new : object
        The default of the file's schema version, and of the next one.

    Returns
    -------
    str or None
        What happened: the old default written out explicitly (the file relied on it), or the
        file's explicit value kept although the default is now ``new``; ``None`` when the
        file already sets the new default.
    """
    section, name = _split(key)
    body = raw.setdefault(section, {})
    if not isinstance(body, dict):
        return None
    if name not in body:
        body[name] = copy.deepcopy(old)
        return f"{key} = {_show(old)} (the default this file was written with) kept; new workspaces get {_show(new)}"
    if body[name] != new:
        return f"{key} = {_show(body[name])} kept; the default is now {_show(new)}"
    return None


@migration(1)
def _schema_1_to_2(raw: dict[str, Any]) -> list[str | None]:
    """Schema 2: the dashboard's settings get an ``[app]`` section; experts are listed once.

    * ``votes.blind`` -> ``app.blind`` (a dashboard setting; the vote store never read it).
      Version-1 files had no ``[app]`` section (the dashboard read ``app.blind`` and fell back
      to ``votes.blind``): an ``app.blind`` written by hand wins, as it did.
    * A hand-written ``app.experts`` joins ``votes.experts`` (the vote store registers those as
      experts, and the dashboard now reads them too): nobody loses the expert role.
    * No default changes: ``app.blind`` defaults to true (``votes.blind``'s default) and
      ``app.retrain_epochs`` to 10 (the dashboard's fallback).
    """
    had_app = isinstance(raw.get("app"), dict)
    changes: list[str | None] = [move_key(raw, "votes.blind", "app.blind")]
    app, votes = raw.get("app"), raw.setdefault("votes", {})
    if isinstance(app, dict) and "experts" in app and isinstance(votes, dict):
        extra, have = app["experts"], votes.get("experts", [])
        if isinstance(extra, list) and isinstance(have, list):
            del app["experts"]
            votes["experts"] = have + [n for n in extra if n not in have]
            changes.append(f"app.experts merged into votes.experts (= {votes['experts']!r}): one list of experts "
                           "for the vote store and the dashboard")
    if not had_app:
        changes.append("new section [app] for the dashboard (app.blind, app.retrain_epochs)")
    return changes


@migration(2)
def _schema_2_to_3(raw: dict[str, Any]) -> list[str | None]:
    """Schema 3: real surveys (issue 10). Changed defaults are kept at what old workspaces ran with.

    * ``prep.rff_absolute``: default ``true`` (RFF sums ``|R|``, Hoyos et al. 2012), was ``false``.
    * ``prep.sky_background_box``: new, default 8 px (the sky is resampled after subtracting SEP's
      smooth background); old workspaces get 0, the block resampling they ran with.
    * ``prep.cutout_unit`` / ``prep.cutout_size``: new; the default cutout is 3 arcsec on a side,
      resampled to ``prep.cutout`` px. Old workspaces cut ``prep.cutout`` native px (unit ``px``,
      size = their ``prep.cutout``), as they did.
    * New keys with no effect on the stamps or metrics an old workspace made (their defaults
      apply): ``prep.pixel_scale`` (none: read from the blocks), the flag thresholds
      ``prep.goi_outside_max``, ``prep.goi_fill_max``, ``prep.seam_max``, and
      ``catalog.goi_radius`` (read at ingest).
    """
    changes: list[str | None] = [
        keep_old_default(raw, "prep.rff_absolute", old=False, new=True),
        keep_old_default(raw, "prep.sky_background_box", old=0, new=8),
    ]
    prep = raw.setdefault("prep", {})
    if isinstance(prep, dict) and "cutout_unit" not in prep and "cutout_size" not in prep:
        native = prep.get("cutout", 50)
        if not isinstance(native, int) or isinstance(native, bool):
            native = 50  # not an integer: validation reports prep.cutout itself
        prep["cutout_unit"], prep["cutout_size"] = "px", native
        changes.append(f"prep.cutout_unit = 'px', prep.cutout_size = {_show(native)} (the native cutout this file "
                       "was written with) kept; new workspaces cut 3.0 arcsec, resampled to prep.cutout px")
    changes.append("new settings with their defaults: prep.pixel_scale, prep.goi_outside_max, prep.goi_fill_max, "
                   "prep.seam_max, catalog.goi_radius")
    return changes


@migration(3)
def _schema_3_to_4(raw: dict[str, Any]) -> list[str | None]:
    """Schema 4: early stopping and resumable training (issue 14).

    * ``train.early_stopping``: new, default ``true`` (stop when ``val_loss`` has not improved for
      ``train.patience`` epochs, on a validation split carved from the training galaxies). Old
      workspaces trained every planned epoch on all their training galaxies: they keep ``false``.
    * New keys whose defaults change nothing an old workspace did: ``train.validation_fraction``,
      ``train.patience``, ``train.min_delta``, ``train.restore_best`` (read only with early
      stopping), ``train.images_per_label``, ``train.min_per_class`` (only for a schedule sized to
      the labels), ``train.mixed_precision`` (off).
    """
    return [
        keep_old_default(raw, "train.early_stopping", old=False, new=True),
        "new settings with their defaults: train.validation_fraction, train.patience, train.min_delta, "
        "train.restore_best, train.images_per_label, train.min_per_class, train.mixed_precision",
    ]


def migrate(raw: dict[str, Any], version: int) -> list[str]:
    """Bring the raw dictionary of a version-``version`` file to :data:`SCHEMA_VERSION`, in place.

    Parameters
    ----------
    raw : dict
        The file's dictionary without ``schema_version`` (``None`` for ``"none"``).
    version : int
        Its schema version (1 to :data:`SCHEMA_VERSION`).

    Returns
    -------
    list of str
        What changed, in order; empty for a current file.
    """
    changes: list[str] = []
    for v in range(version, SCHEMA_VERSION):
        changes.extend(c for c in MIGRATIONS[v](raw) if c)
    return changes


# ----------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------
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


@dataclass
class ConfigFile:
    """A configuration file as read: the full configuration and how it was migrated.

    Attributes
    ----------
    config : dict
        Every setting (the file's, migrated, completed with the defaults).
    version : int
        The schema version the file was written with (1 when it has no ``schema_version``).
    changes : list of str
        What the migration to :data:`SCHEMA_VERSION` changed (empty for a current file).
    """

    config: dict[str, Any]
    version: int
    changes: list[str] = field(default_factory=list)

    @property
    def migrated(self) -> bool:
        """Whether the file was written with an older schema."""
        return self.version < SCHEMA_VERSION


def load_config(path: str | Path) -> ConfigFile:
    """Read, migrate and check a TOML configuration; complete it with the defaults.

    Parameters
    ----------
    path : str or Path
        A ``config.toml`` (full, or partial: missing keys take their defaults).

    Returns
    -------
    ConfigFile
        The configuration, the file's schema version and what its migration changed. The file
        itself is not modified.

    Raises
    ------
    ConfigError
        An unknown section or key, a wrong type or value, or a ``schema_version`` that is not
        an integer or is newer than :data:`SCHEMA_VERSION`.
    OSError, tomllib.TOMLDecodeError
        The file cannot be read, or is not TOML.
    """
    source = str(path)
    with open(path, "rb") as fh:
        raw = _restore_none(tomllib.load(fh))
    version = raw.pop("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(source, [f"schema_version must be a positive integer, not {_show(version)}"])
    if version > SCHEMA_VERSION:
        raise ConfigError(source, [
            f"schema_version {version} was written by a newer Residual Explorer (this one reads schema "
            f"{SCHEMA_VERSION} and older); upgrade it: pip install -U residual-explorer"])
    changes = migrate(raw, version)
    validate(raw, source)
    return ConfigFile(merge(default_config(), raw), version, changes)


def read_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML configuration: migrated, checked, completed with the defaults.

    An older file is migrated in memory only (the changes are logged at INFO level); see
    :func:`load_config` for the changes themselves and
    :meth:`core.workspace.workspace.Workspace.open`, which writes a workspace's migrated file back.

    Parameters
    ----------
    path : str or Path
        A ``config.toml``.

    Returns
    -------
    dict
        Every setting, ``{section: {key: value}}``.

    Raises
    ------
    ConfigError
        The file is not TOML, does not match the schema (every problem listed), or is from a
        newer version.
    """
    try:
        cf = load_config(path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    if cf.migrated:
        log.info("%s is schema %d, read as schema %d: %s", path, cf.version, SCHEMA_VERSION,
                 "; ".join(cf.changes) or "nothing changed")
    return cf.config


def write_config(config: dict[str, Any], path: str | Path) -> None:
    """Write a configuration as TOML, with ``schema_version``, atomically.

    The file is written to a temporary file next to ``path`` and renamed over it, so a reader
    never sees half a file. ``None`` is written as ``"none"``.

    Parameters
    ----------
    config : dict
        A full or partial configuration of the current schema.
    path : str or Path
        The file to write.

    Raises
    ------
    ConfigError
        ``config`` does not match the schema; nothing is written.
    """
    path = Path(path)
    validate(config, str(path))
    body = {k: v for k, v in config.items() if k != "schema_version"}
    text = tomli_w.dumps({"schema_version": SCHEMA_VERSION, **_strip_none(body)})
    # open(..., "x") rather than mkstemp: the file gets the usual permissions (umask), not 0600
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
