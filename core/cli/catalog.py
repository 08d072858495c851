"""``resx catalog``: the workspace catalog with every column, as FITS, CSV or ECSV."""

from __future__ import annotations

import argparse

from core.cli.common import add_command

HELP = "Write the workspace catalog (FITS, CSV or ECSV by extension)."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "catalog", HELP, run)
    p.add_argument("--out", required=True, help="output file (.fits, .csv or .ecsv)")


def run(args: argparse.Namespace) -> int:
    from core.workspace.ingestion import write_catalog
    from core.workspace.workspace import Workspace

    table = write_catalog(Workspace.open(args.workspace), args.out)
    print(f"wrote {len(table)} galaxies x {len(table.colnames)} columns to {args.out}")
    return 0
