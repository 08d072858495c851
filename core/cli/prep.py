"""``resx prep``: object-only stamps and residual metrics (:func:`core.prep.pipeline.prep_workspace`)."""

from __future__ import annotations

import argparse

from core.cli.common import add_command

HELP = "Make object-only stamps and measure SPF, Bumpiness and RFF for every galaxy."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "prep", HELP, run)
    p.add_argument("--scheduler", default=None, help="a running dask.distributed scheduler: its address (tcp://host:8786) or scheduler file; "
                   "its workers must see the workspace at the same path (README: running on a cluster)")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    p.add_argument("--redo", action="store_true", help="redo galaxies already prepared")
    p.add_argument("--report", action="store_true", help="list galaxies that were flagged or failed, then exit")


def run(args: argparse.Namespace) -> int:
    """Prep the workspace (or print its report); 1 when some galaxies failed."""
    from core.prep.pipeline import prep_report, prep_workspace
    from core.workspace.workspace import Workspace

    ws = Workspace.open(args.workspace)
    if args.report:
        print(prep_report(ws.read_catalog()))
        return 0
    cat = prep_workspace(ws, scheduler=args.scheduler, workers=args.workers, redo=args.redo)
    print(prep_report(cat).splitlines()[0])
    status = [str(s).strip() for s in cat["prep_status"]]
    n_flagged, n_error = status.count("flagged"), status.count("error")
    if n_flagged or n_error:
        print(f"{n_error} galaxies failed and {n_flagged} were flagged: "
              f"`resx prep {args.workspace} --report` lists them.")
    return 1 if n_error else 0
