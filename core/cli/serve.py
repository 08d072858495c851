"""``resx serve [WORKSPACE] --port N``: the dashboard, i.e. ``panel serve app --args --workspace WS``."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

from core.workspace.workspace import default_workspace

log = logging.getLogger(__name__)

APP_DIR = Path(importlib.util.find_spec("app").submodule_search_locations[0])  # the app package, not imported


def serve_command(workspace: str | Path | None = None, port: int = 5006, extra: list[str] | None = None) -> list[str]:
    """The ``panel serve`` command line that serves ``workspace`` on ``port``.

    Parameters
    ----------
    workspace : path, optional
        Workspace folder; default :func:`core.workspace.workspace.default_workspace`.
    port : int
        TCP port of the server.
    extra : list of str, optional
        More ``panel serve`` options (e.g. ``["--basic-auth", "users.json"]``), placed before ``--args``.
    """
    ws = Path(workspace) if workspace else default_workspace()
    return [sys.executable, "-m", "panel", "serve", str(APP_DIR), "--port", str(int(port)), *(extra or []),
            "--args", "--workspace", str(ws.resolve())]


def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``resx serve``: run the Panel server until interrupted; returns its exit status."""
    cmd = serve_command(args.workspace, args.port)
    ws = cmd[-1]
    if not Path(ws).exists():
        print(f"warning: no workspace at {ws}; the page will say how to build one (`resx demo {ws}`).",
              file=sys.stderr)
    print(f"Serving {ws} at http://localhost:{args.port}/app (Ctrl-C to stop)")
    log.info("%s", " ".join(cmd))
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
