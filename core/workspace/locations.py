"""Where workspaces live by default: ``$RESX_WORKSPACE``, the checkout's ``data/demo``, or a per-user folder.

A source checkout keeps its demo workspace beside the code (``data/demo``, git-ignored), as
the README's commands expect; an installed package has no such folder (its files sit in
``site-packages``), so its demo goes to the per-user data folder that ``platformdirs`` names
(``~/.local/share/residual-explorer/demo`` on Linux).

Light on purpose (no astropy): ``resx`` builds its ``--help`` texts from it on every start.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["APP_NAME", "default_workspace", "describe_default_workspace", "source_checkout", "user_demo_workspace"]

#: The name of the per-user data folder (the distribution's name).
APP_NAME = "residual-explorer"


def source_checkout() -> Path | None:
    """The project folder when ``core`` is imported from a source checkout, else None.

    A checkout is the parent of the ``core`` package when it also holds ``pyproject.toml`` and
    either ``.git`` (a clone or a worktree) or ``data/``; an installed package's parent is
    ``site-packages``, which holds neither.

    Returns
    -------
    pathlib.Path or None
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and ((root / ".git").exists() or (root / "data").is_dir()):
        return root
    return None


def user_demo_workspace() -> Path:
    """The demo workspace of an installed package: ``demo`` in the per-user data folder.

    Returns
    -------
    pathlib.Path
        ``platformdirs.user_data_path("residual-explorer") / "demo"``.
    """
    from platformdirs import user_data_path

    return user_data_path(APP_NAME) / "demo"


def default_workspace() -> Path:
    """The workspace a command or the dashboard opens when none is given: the demo workspace.

    ``$RESX_WORKSPACE`` when set; else ``data/demo`` in a source checkout
    (:func:`source_checkout`); else :func:`user_demo_workspace`.

    Returns
    -------
    pathlib.Path
    """
    env = os.environ.get("RESX_WORKSPACE")
    if env:
        return Path(env)
    root = source_checkout()
    if root is not None:
        return root / "data" / "demo"
    return user_demo_workspace()


def describe_default_workspace() -> str:
    """Where the default (demo) workspace is, and why, for ``--help`` texts.

    Returns
    -------
    str
        E.g. ``$RESX_WORKSPACE when set, else the per-user data folder
        /home/ann/.local/share/residual-explorer/demo``.
    """
    env = os.environ.get("RESX_WORKSPACE")
    if env:
        return f"$RESX_WORKSPACE, now {env}"
    root = source_checkout()
    if root is not None:
        return (f"$RESX_WORKSPACE when set, else data/demo in this source checkout ({root / 'data' / 'demo'}); "
                "an installed package uses a per-user data folder instead")
    return f"$RESX_WORKSPACE when set, else the per-user data folder {user_demo_workspace()}"
