"""``resx ingest``: a workspace from a catalog and GALFIT blocks (:func:`core.workspace.ingestion.ingest`)."""

from __future__ import annotations

import argparse
import shlex

from core.cli.common import add_command

HELP = "Create a workspace from a catalog and GALFIT blocks (or a `resx simulate` folder)."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "ingest", HELP, run, workspace=False)
    p.add_argument("source", metavar="SOURCE", help="a `resx simulate` folder, or a catalog file (FITS/ECSV/CSV)")
    p.add_argument("workspace", metavar="WORKSPACE", help="workspace folder to create")
    p.add_argument("--blocks", default=None, help="folder of GALFIT blocks when SOURCE is a catalog")
    p.add_argument("--columns", default=None, help="column mapping, e.g. 'hmag=H_F160W,logmass=M_med'")
    p.add_argument("--config", default=None, help="TOML file overriding the defaults")
    p.add_argument("--cuts", default=None, metavar="SPEC",
                   help="sample cuts, overriding --config: comma-separated NAME=VALUE, NAME a cut (hmag_max, "
                   "logmass_min, z_min, z_max, photflag) or a column (hmag, logmass, z, photflag), VALUE a "
                   "number or none, e.g. 'z=none,photflag=none' or 'hmag=25'; 'none' turns every cut off")
    p.add_argument("--no-cuts", action="store_true", help="no sample cuts (same as --cuts none)")
    p.add_argument("--force", action="store_true", help="overwrite an existing workspace")
    p.add_argument("--scheduler", default=None,
                   help="address of a running dask.distributed scheduler to read the block headers on "
                   "(its workers must see the blocks at the same paths; default: this machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="local workers reading the block headers (default: one per core; 1: no "
                   "worker processes); a catalog of fewer than 1000 blocks is read in this process")


def _print_some(rows: list[tuple[str, str]], column: str, n: int = 10) -> None:
    """The first ``n`` ``(id, text)`` rows, indented, and how many more the catalog's ``column`` holds."""
    for gid, text in rows[:n]:
        print(f"  {gid}: {text}")
    if len(rows) > n:
        print(f"  ... and {len(rows) - n} more (see {column} in the catalog)")


def run(args: argparse.Namespace) -> int:
    """Ingest and print the cut report; 1 when some blocks could not be read."""
    from core.workspace.config import read_config
    from core.workspace.cuts import parse_cuts
    from core.workspace.ingestion import ingest

    config = read_config(args.config) if args.config else None
    cuts = parse_cuts(args.cuts, no_cuts=args.no_cuts)
    if cuts:
        config = dict(config or {})
        config["cuts"] = {**config.get("cuts", {}), **cuts}
    ws = ingest(args.source, args.workspace, columns=args.columns, config=config, blocks_dir=args.blocks,
                force=args.force, scheduler=args.scheduler, workers=args.workers)
    rep = ws.ingest_report
    print(f"catalog {rep.catalog}: {rep.cuts.n_in} galaxies")
    print(rep.cuts)
    if rep.cuts.missing:
        print(f"note: {rep.cuts.note()}")
    if rep.renamed_columns:
        print("note: FITS column names are ASCII; renamed " + ", ".join(f"{a!r} -> {b!r}" for a, b in
                                                                          rep.renamed_columns.items()))
    print(f"GALFIT blocks: {rep.n_blocks_ok} read, {len(rep.block_errors)} with errors")
    _print_some(rep.block_errors, "prep_message")
    if rep.flagged_components:
        print(f"GOI component flagged for {len(rep.flagged_components)} galaxies (prep marks them 'flagged'):")
        _print_some(rep.flagged_components, "ingest_note")
    if rep.integer_blocks:
        print(f"note: {rep.integer_blocks} block(s) store integer pixels, read as floats in physical units "
              "(BSCALE/BZERO applied; the catalog's pixel_type says which)")
    if rep.unknown_classes:
        print(f"unknown class labels left blank: {rep.unknown_classes}")
    print(f"workspace {ws.root}: config.toml and catalog.fits written ({rep.cuts.n_out} galaxies)")
    if rep.votes_file:
        removed = rep.cuts.n_in - rep.cuts.n_out
        why = f" (votes on the {removed} galaxies the cuts removed are skipped; --strict refuses them)" \
            if removed else ""
        print(f"votes found; import them with{why}:\n  resx votes import {shlex.quote(str(ws.root))} "
              f"{shlex.quote(rep.votes_file)} --source simulated")
    print(f"next: resx prep {shlex.quote(str(ws.root))}")
    return 1 if rep.block_errors else 0
