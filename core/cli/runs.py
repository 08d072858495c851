"""``resx runs``: the training runs of a workspace (:mod:`core.learn.runs`)."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_command

HELP = "List training runs."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "runs", HELP, run)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--activate", default=None, metavar="RUN", help="make RUN the active run of its model")


def _score(info) -> str:
    if info.accuracy is not None:
        return f"acc {info.accuracy:.1%}"
    if info.recon_mse is not None:
        return f"mse {info.recon_mse:.2e}" + (" (no better than zeros)" if info.warning else "")
    return "-"


def run(args: argparse.Namespace) -> int:
    from core.learn.runs import activate, list_runs
    from core.workspace.workspace import Workspace

    ws = Workspace.open(args.workspace)
    if args.activate:
        info = activate(ws, args.activate)
        print(f"run {info.id} is now the active {info.model} run")
    runs = list_runs(ws)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {ws.root} yet: `resx train {ws.root} --model cnn`")
        return 0
    print(f"{'':2}{'run':<28} {'model':<5} {'labels':<9} {'status':<11} {'score':<13} {'epochs':<8} created")
    for r in runs:
        ep = f"{r.epochs_run}/{r.epochs}" if r.epochs_run is not None else f"-/{r.epochs}" if r.epochs else "-"
        print(f"{'*' if r.active else ' ':2}{r.id:<28} {r.model:<5} {r.labels:<9} {r.status:<11} "
              f"{_score(r):<13} {ep:<8} {r.created}")
        if r.stopped:
            print(f"{'':4}stopped: {r.stopped}")
    print("(* = active run of its model)")
    return 0
