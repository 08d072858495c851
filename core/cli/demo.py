"""``resx demo``: the demo workspace end to end (:func:`core.demo.build_demo`)."""

from __future__ import annotations

import argparse

from core.cli.common import add_command

HELP = "Build the demo workspace end to end: simulate, ingest, prep, train, embed."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "demo", HELP, run, workspace=False)
    from core.workspace.locations import describe_default_workspace  # light: no astropy

    p.add_argument("workspace", nargs="?", default=None, metavar="WORKSPACE",
                   help=f"folder (default: {describe_default_workspace().replace('%', '%%')})")
    p.add_argument("--n", type=int, default=1000,
                   help="galaxies to simulate (default 1000, the most that fits the ~3 min goal on 2 CPU cores; >= 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild even if the workspace is complete")


def run(args: argparse.Namespace) -> int:
    from core.demo import build_demo

    info = build_demo(args.workspace, n=args.n, seed=args.seed, force=args.force, echo=print)
    if info.get("skipped"):
        return 0
    print(f"done in {info['total_s']:.0f} s: {info['workspace']}")
    if info.get("accuracy") is not None:
        rec = ", ".join(f"{c} {r:.0%}" for c, r in info.get("recall", {}).items())
        print(f"  CNN test accuracy {info['accuracy']:.1%} (demo schedule); recall: {rec}")
    if info.get("recon_mse") is not None:
        print(f"  CvAE test reconstruction MSE {info['recon_mse']:.2e}"
              + (" (no better than zeros: see the warning above)" if info.get("cvae_warning") else ""))
    for model, k in info.get("elbow_k", {}).items():
        ev = ", ".join(f"{v:.0%}" for v in info["explained_variance"][model])
        print(f"  {model}: elbow k = {k}; explained variance of 3 PCs {ev}")
    print(f"open it with: resx serve {info['workspace']}  (from a checkout: panel serve app --address 127.0.0.1 --show)")
    return 0
