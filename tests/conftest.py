"""Shared fixtures. Real-data tests read ../shared/data by relative path and skip if absent."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.pg_server import pg_server  # noqa: E402,F401  (a session fixture: one PostgreSQL per run)

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The folder of real HST/GALFIT data; skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


SCENE_SIZE = 100


def gauss(x, y, sigma, amp, shape=(SCENE_SIZE, SCENE_SIZE)):
    """A circular Gaussian of peak ``amp`` at 0-based ``(x, y)``."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


@pytest.fixture
def scene():
    """A galaxy at the centre (0-based 49.6, 50.3), an interloper at (82, 18), sky sigma 1."""
    rng = np.random.default_rng(7)
    gal = gauss(49.6, 50.3, 4.0, 60.0)
    inter = gauss(82.0, 18.0, 2.5, 40.0)
    noise = rng.normal(0.0, 1.0, (SCENE_SIZE, SCENE_SIZE))
    model = 0.9 * gal + 5.0
    inp = gal + inter + noise + 5.0
    return {"input": inp, "model": model, "residual": inp - model, "xc": 50.6, "yc": 51.3,
            "inter": (82, 18)}
