"""``resx serve [WORKSPACE] --port N``: the dashboard, i.e. ``panel serve app --args --workspace WS``."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

from core.cli.common import add_command
from core.errors import ResxError

log = logging.getLogger(__name__)



def app_dir() -> Path:
    """The folder of the installed dashboard package ``app`` (found, not imported: core never imports app)."""
    spec = importlib.util.find_spec("app")
    if spec is None or not spec.submodule_search_locations:
        raise ResxError("the dashboard package `app` is not installed with this Residual Explorer")
    return Path(spec.submodule_search_locations[0])


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
    from core.workspace.locations import default_workspace

    ws = Path(workspace) if workspace else default_workspace()
    return [sys.executable, "-m", "panel", "serve", str(app_dir()), "--port", str(int(port)), *(extra or []),
            "--args", "--workspace", str(ws.resolve())]


HELP = "Serve the dashboard (same as `panel serve app`)."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "serve", HELP, run, workspace=False)
    p.add_argument("workspace", nargs="?", default=None, metavar="WORKSPACE")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--num-procs", type=int, default=1, metavar="N",
                   help="server processes sharing the port (0: one per core); each holds one copy of the "
                   "map data for its sessions, and they share the vote store (SQLite in WAL mode, or PostgreSQL)")


def run(args: argparse.Namespace) -> int:
    """Handler of ``resx serve``: run the Panel server until interrupted; returns its exit status."""
    procs = getattr(args, "num_procs", 1)
    if procs is not None and procs < 0:
        raise ResxError(f"--num-procs must be 0 (one per core) or more, not {procs}")
    cmd = serve_command(args.workspace, args.port, extra=["--num-procs", str(procs)] if procs != 1 else None)
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
