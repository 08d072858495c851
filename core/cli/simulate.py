"""``resx simulate``: a CANDELS-like mock survey (:func:`core.simulation.survey.simulate_survey`)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from core.cli.common import add_command

HELP = "Simulate a CANDELS-like survey: GALFIT blocks, a catalog and inspector votes."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "simulate", HELP, run, workspace=False)
    p.add_argument("--n", type=int, default=2000, help="number of galaxies (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--size", type=int, default=100, help="stamp side in pixels (default 100)")
    p.add_argument("--agreement", type=float, default=0.8,
                   help="probability that a simulated inspector agrees with the truth (default 0.8)")
    p.add_argument("--preview", action="store_true", help="also write a PNG contact sheet per class")
    p.add_argument("--scheduler", default=None, help="address of a running dask.distributed scheduler")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per core)")


def run(args: argparse.Namespace) -> int:
    """Simulate the survey and print a summary; 1 when no galaxy could be simulated."""
    import numpy as np

    from core.labels import CLASSES, FIT_QUALITY
    from core.simulation.survey import simulate_survey

    t0 = time.perf_counter()
    cat = simulate_survey(args.n, args.seed, args.out, size=args.size, agreement=args.agreement,
                          preview=args.preview, scheduler=args.scheduler, workers=args.workers)
    dt = time.perf_counter() - t0
    ok = cat["status"] == "ok"
    print(f"simulated {len(cat)} galaxies into {args.out} in {dt:.1f} s "
          f"({len(cat) / dt:.1f} galaxies/s); {int(ok.sum())} ok, {int((~ok).sum())} failed")
    for cls in CLASSES + (FIT_QUALITY,):
        k = int(np.sum(cat["true_class"] == cls))
        print(f"  {cls:<11s} {k:6d}  {100.0 * k / len(cat):5.1f} %")
    for r in cat[~ok][:5]:
        print(f"  failed {r['id']}: {r['message']}")
    if args.preview:
        print(f"contact sheets: {Path(args.out) / 'preview_<class>.png'}")
    return 0 if ok.all() else 1
