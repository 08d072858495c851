"""One family of expected failures: every error the tool can explain derives from :class:`ResxError`.

An *expected* failure is one a user can act on: a workspace that does not exist, a catalog
without a required column, a FITS file with no image extension, a vote store that cannot be
reached. Each subpackage raises its own subclass (``WorkspaceError``, ``GalfitBlockError``,
``VoteStoreError``...), so callers can catch one family (``except ResxError``) or one kind. The
command line (:mod:`core.cli`) catches :class:`ResxError` once and prints
``resx <command>: <message>`` on stderr with exit status 2; anything else is a bug, printed as one
line with the path of the log holding its traceback.

Several of these classes also derive from the built-in exception that used to describe them
(``ValueError``, ``RuntimeError``), so code written against the built-in keeps working.
"""

from __future__ import annotations

__all__ = ["ResxError", "MissingDependencyError", "require"]


class ResxError(Exception):
    """An expected failure, with a message written for the user."""


class MissingDependencyError(ResxError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency, or raise :class:`MissingDependencyError` naming its extra.

    Parameters
    ----------
    module : str
        The module to import (e.g. ``"psycopg"``).
    extra : str
        The ``pip`` extra of this package that installs it (e.g. ``"postgres"``).
    purpose : str
        What it is needed for, completing "... is needed for <purpose>".

    Returns
    -------
    module
        The imported module.

    Examples
    --------
    >>> json = require("json", "none", "reading JSON")
    >>> json.dumps([1])
    '[1]'
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the Python package {module!r} is needed for {purpose} but is not installed: "
            f"pip install 'residual-explorer[{extra}]'"
        ) from exc
