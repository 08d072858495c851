"""Lazy public names for the subpackages: ``from core.learn import train`` imports only what it names.

Each subpackage's ``__init__`` lists its public names and the module that defines each; the module
is imported on first access (PEP 562), so importing a subpackage stays cheap (``resx --help`` never
loads TensorFlow) and there are no import cycles between subpackages.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, modules: dict[str, list[str]]) -> tuple[list[str], Callable[[str], Any],
                                                                        Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` whose public names live in its modules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    modules : dict
        Submodule, relative to ``package`` (e.g. ``".fit"``) -> the public names it defines.
    """
    names = {name: module for module, public in modules.items() for name in public}

    def __getattr__(name: str) -> Any:
        try:
            module = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later lookups do not come here
        return value

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return sorted(names), __getattr__, __dir__
