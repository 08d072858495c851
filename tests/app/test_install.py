"""Installs like a library: the wheel ships the app and its static files, and an installed
package's demo workspace goes to the per-user data folder (not beside the code)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _setuptools_version() -> tuple[int, ...]:
    try:
        import setuptools
    except ImportError:
        return (0,)
    return tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """The project's wheel, built from a copy of the tree (a build in the tree could pick up stale
    ``build/`` files), without build isolation (no download)."""
    if _setuptools_version() < (77,):
        pytest.skip("building the wheel offline needs setuptools>=77 (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "artifacts")
    for name in ("app", "core", "assets", "tests"):
        shutil.copytree(PROJECT / name, src / name, ignore=ignore)
    (src / "data").mkdir()
    for name in ("pyproject.toml", "README.md", "data/README.md"):
        shutil.copy(PROJECT / name, src / name)
    out = tmp / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("residual_explorer-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


def test_wheel_ships_the_app_its_assets_and_no_tests(wheel):
    names = set(wheel.namelist())
    for name in ("assets/__init__.py", "assets/resx.css", "assets/gallery.css", "assets/logo.svg",
                 "app/__init__.py", "app/main.py", "app/state.py", "app/palettes.py", "app/selection.py",
                 "app/retrain.py", "app/views/__init__.py", "app/views/gallery.py", "core/__main__.py",
                 "core/cli/serve.py", "core/workspace/locations.py"):
        assert name in names, name
    assert not [n for n in names if n.startswith(("tests/", "data/"))]
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "Requires-Dist: platformdirs" in wheel.read(meta).decode()
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "resx = core.cli:main" in wheel.read(entry).decode()


def test_assets_and_the_app_folder_are_found_as_a_package():
    import app
    from core.cli import serve

    assert app.location() == PROJECT / "app" == serve.app_dir()
    assert (app.location() / "main.py").is_file()
    assert app.asset("resx.css").read_text() == (PROJECT / "assets" / "resx.css").read_text()
    assert app.asset("logo.svg").read_bytes().startswith(b"<svg")


def test_default_workspace_in_a_checkout_and_when_installed(monkeypatch):
    import platformdirs

    from core.workspace import locations
    from core.workspace.workspace import default_workspace

    monkeypatch.delenv("RESX_WORKSPACE", raising=False)
    assert locations.source_checkout() == PROJECT  # the tests run from a checkout
    assert default_workspace() == PROJECT / "data" / "demo"
    monkeypatch.setattr(locations, "source_checkout", lambda: None)  # as in site-packages
    user = platformdirs.user_data_path("residual-explorer") / "demo"
    assert default_workspace() == user
    assert str(user) in locations.describe_default_workspace()
    monkeypatch.setenv("RESX_WORKSPACE", "/somewhere/ws")
    assert default_workspace() == Path("/somewhere/ws")


def test_demo_help_says_where_the_workspace_goes(monkeypatch, capsys):
    import platformdirs

    from core.cli.main import build_parser
    from core.workspace import locations

    monkeypatch.delenv("RESX_WORKSPACE", raising=False)
    monkeypatch.setattr(locations, "source_checkout", lambda: None)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps long lines
    assert str(platformdirs.user_data_path("residual-explorer") / "demo") in text


def test_source_checkout_is_not_a_site_packages_folder(tmp_path, monkeypatch):
    """The checkout test: pyproject.toml and (.git or data/) beside the core package."""
    from core.workspace import locations

    fake = tmp_path / "site-packages" / "core" / "workspace" / "locations.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(locations, "__file__", str(fake))
    assert locations.source_checkout() is None
    (tmp_path / "site-packages" / "pyproject.toml").write_text("")
    assert locations.source_checkout() is None  # a stray pyproject.toml alone is not a checkout
    (tmp_path / "site-packages" / "data").mkdir()
    assert locations.source_checkout() == tmp_path / "site-packages"
