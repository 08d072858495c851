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
        "seed": 0,
        "chunk": 256,  # galaxies per stored chunk (and per Dask task)
    },
    # Input scaling (paper §3.1).
    "scaling": {
        "method": "maxabs",  # maxabs | standard | robust | minmax | power | quantile
        "per": "stamp",  # stamp | sample
    },
    # Train/test split and augmentation (paper §3.2).
    "split": {"test_fraction": 0.2, "seed": 42},
    "augment": {"per_class": 5000, "rotation_step_deg": 45, "flip": True, "seed": 42},
    # Models (paper §4); filled by core.models.
    "models": {},
    # Training schedule (paper §4.1).
    "train": {},
    # Latent analysis (paper §5); filled by core.embed.
    "embed": {},
    # Vote store and consensus (paper §2.3).
    "votes": {},
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
