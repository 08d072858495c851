"""The ``resx`` command: one subcommand per step of the pipeline.

Argument parsing lives here; each subcommand's work is a ``run_<command>(args)`` function in
the module that owns the concept, imported only when that subcommand runs (so ``resx --help``
does not pay for TensorFlow). A handler returns the process exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

EPILOG = "Run `resx COMMAND --help` for the options of each command."


def _handler(module: str, function: str):
    def call(args: argparse.Namespace) -> int:
        mod = importlib.import_module(module)
        return getattr(mod, function)(args) or 0

    return call


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resx",
        description="Residual Explorer: classify the residual substructure of galaxies after "
        "single-Sérsic fits, with deep learning and human inspection.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help: str, module: str, function: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=_handler(module, function))
        return p

    # -- simulate ---------------------------------------------------------------------------
    p = add("simulate", "Simulate a CANDELS-like survey: GALFIT blocks, a catalog and inspector votes.",
            "core.simulation.survey", "run_simulate")
    p.add_argument("--n", type=int, default=2000, help="number of galaxies (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=100, help="stamp side in pixels (default 100)")
    p.add_argument("--agreement", type=float, default=0.8,
                   help="probability that a simulated inspector agrees with the truth (default 0.8)")
    p.add_argument("--preview", action="store_true", help="also write a PNG contact sheet per class")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")

    # -- fit ----------------------------------------------------------------------------------
    p = add("fit", "Fit a single PSF-convolved Sérsic profile to images; write GALFIT-format blocks.",
            "core.fitting.fit", "run_fit")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="FITS images (first image HDU is used)")
    p.add_argument("--psf", required=True, help="PSF image (FITS)")
    p.add_argument("--out", required=True, help="output folder; writes <name>_block.fits per image")
    p.add_argument("--sigma", default=None, help="noise map (FITS), one per image or a single file")
    p.add_argument("--mask", default=None, help="bad-pixel mask (FITS, nonzero = masked)")
    p.add_argument("--zeropoint", type=float, default=25.9463, help="magnitude zero point (default F160W AB)")

    # -- ingest / prep / catalog ---------------------------------------------------------------
    p = add("ingest", "Create a workspace from a catalog and GALFIT blocks (or a `resx simulate` folder).",
            "core.workspace.ingest", "run_ingest")
    p.add_argument("source", metavar="SOURCE", help="a `resx simulate` folder, or a catalog file (FITS/ECSV/CSV)")
    p.add_argument("workspace", metavar="WORKSPACE", help="workspace folder to create")
    p.add_argument("--blocks", default=None, help="folder of GALFIT blocks when SOURCE is a catalog")
    p.add_argument("--columns", default=None, help="column mapping, e.g. 'hmag=H_F160W,logmass=M_med'")
    p.add_argument("--config", default=None, help="TOML file overriding the defaults")
    p.add_argument("--force", action="store_true", help="overwrite an existing workspace")
    p.add_argument("--scheduler", default=None,
                   help="address of a running dask.distributed scheduler to read the block headers on "
                   "(its workers must see the blocks at the same paths; default: this machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="local workers reading the block headers (default: one per core; 1: no "
                   "worker processes); a catalog of fewer than 1000 blocks is read in this process")

    p = add("prep", "Make object-only stamps and measure SPF, Bumpiness and RFF for every galaxy.",
            "core.prep.pipeline", "run_prep")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")
    p.add_argument("--redo", action="store_true", help="redo galaxies already prepared")
    p.add_argument("--report", action="store_true", help="list galaxies that were flagged or failed, then exit")

    p = add("catalog", "Write the workspace catalog (FITS, CSV or ECSV by extension).",
            "core.workspace.ingest", "run_catalog")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--out", required=True, help="output file (.fits, .csv or .ecsv)")

    # -- train / runs / embed ---------------------------------------------------------------------
    p = add("train", "Train the CNN or the CvAE; each run is a folder runs/<run-id>/.",
            "core.learn.train", "run_train")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--model", choices=["cnn", "cvae"], required=True)
    p.add_argument("--labels", choices=["catalog", "consensus"], default="catalog",
                   help="catalog classes or the inspectors' consensus (default catalog)")
    p.add_argument("--init", default=None, metavar="RUN", help="fine-tune from this run's weights")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default from config)")
    p.add_argument("--per-class", type=int, default=None, help="augmented images per class per epoch")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-id", default=None, help="id of the new run (default: model + timestamp)")
    p.add_argument("--no-activate", action="store_true", help="do not make the new run the active one")
    p.add_argument("--embed", action="store_true", help="run `resx embed` on the new run when it ends")

    p = add("runs", "List training runs.", "core.learn.runs", "run_runs")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--activate", default=None, metavar="RUN", help="make RUN the active run of its model")

    p = add("embed", "Latents, PCA, k-means elbow, GMM and SVC boundaries for a run.",
            "core.latent.analysis", "run_embed")
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--run", default=None, help="run id (default: the active run of --model)")
    p.add_argument("--model", choices=["cnn", "cvae"], default="cnn")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")

    # -- votes --------------------------------------------------------------------------------
    votes = sub.add_parser("votes", help="Inspector votes: import, export, agreement statistics.",
                           description="Inspector votes: import, export, agreement statistics.")
    vsub = votes.add_subparsers(dest="votes_command", metavar="ACTION", required=True)
    p = vsub.add_parser("import", help="Import votes (CSV or FITS: id, inspector, label[, comment]).")
    p.set_defaults(func=_handler("core.votes.store", "run_import"))
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--source", choices=["import", "simulated"], default="import")
    p = vsub.add_parser("export", help="Write the consensus catalog (FITS or CSV by extension).")
    p.set_defaults(func=_handler("core.votes.store", "run_export"))
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--out", required=True)
    p = vsub.add_parser("stats", help="Fleiss' kappa, per-inspector agreement and confusion matrices.")
    p.set_defaults(func=_handler("core.votes.store", "run_stats"))
    p.add_argument("workspace", metavar="WORKSPACE")

    # -- demo / serve ----------------------------------------------------------------------------
    p = add("demo", "Build the demo workspace end to end: simulate, ingest, prep, train, embed.",
            "core.demo", "run_demo")
    from core.workspace.locations import describe_default_workspace  # light: no astropy

    p.add_argument("workspace", nargs="?", default=None, metavar="WORKSPACE",
                   help=f"folder (default: {describe_default_workspace().replace('%', '%%')})")
    p.add_argument("--n", type=int, default=1000,
                   help="galaxies to simulate (default 1000, the most that fits the ~3 min goal on 2 CPU cores; >= 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild even if the workspace is complete")

    p = add("serve", "Serve the dashboard (same as `panel serve app`).", "core.cli.serve", "run_serve")
    p.add_argument("workspace", nargs="?", default=None, metavar="WORKSPACE")
    p.add_argument("--port", type=int, default=5006)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
