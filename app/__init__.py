"""The Residual Explorer dashboard: a Bokeh directory app (``main.py``) served by ``panel serve``.

From a checkout: ``panel serve app``. Installed anywhere: ``resx serve``, or
``panel serve "$(python -c 'import app; print(app.location())')"``.

This file imports neither ``core`` nor Panel: ``panel serve`` runs it once per server, and
``core.cli.serve`` finds this folder without importing it.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["asset", "location"]


def location() -> Path:
    """The folder of the app (``main.py`` and the views), wherever the package is installed.

    Returns
    -------
    pathlib.Path
        The directory to give ``panel serve``.
    """
    return Path(__file__).resolve().parent


def asset(name: str) -> Traversable:
    """A static file of the dashboard, from the installed ``assets`` package.

    Parameters
    ----------
    name : str
        File name in ``assets/`` (``resx.css``, ``gallery.css``, ``logo.svg``).

    Returns
    -------
    importlib.resources.abc.Traversable
        Read it with ``.read_text()`` or ``.read_bytes()``.
    """
    return files("assets").joinpath(name)
