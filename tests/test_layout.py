"""The layout's rules: core never imports app, science modules neither print nor parse arguments,
subpackages export their public names lazily, and `resx --help` loads no heavy library."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
CORE = PROJECT / "core"
SUBPACKAGES = ["io", "fitting", "simulation", "prep", "learn", "latent", "votes", "workspace"]


def _modules(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def test_core_never_imports_app():
    for path, tree in _modules(CORE):
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "app" or n.startswith("app.") for n in names), f"{path} imports {names}"


def test_science_modules_neither_print_nor_parse_arguments():
    for path, tree in _modules(CORE):
        if path.parent.name == "cli":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "print", f"{path}:{node.lineno} prints"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                assert "argparse" not in names, f"{path}:{node.lineno} imports argparse"


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_resolves(name):
    package = importlib.import_module(f"core.{name}")
    assert package.__all__, f"core.{name} declares no public names"
    for public in package.__all__:
        value = getattr(package, public)
        assert getattr(value, "__name__", public) == public or not callable(value), (name, public)
    submodules = {p.stem for p in (CORE / name).glob("*.py")}
    assert not submodules & set(package.__all__), "a public name that is also a submodule would be shadowed"


def test_importing_the_subpackages_and_help_load_no_heavy_library():
    code = ("import sys, core, " + ", ".join(f"core.{n}" for n in SUBPACKAGES) + "\n"
            "from core.cli.main import build_parser\n"
            "build_parser().format_help()\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'sklearn', 'panel', 'dask', 'astropy.table') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert out.stdout.strip() == "[]"
