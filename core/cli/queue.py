"""``resx queue``: the Inspect-next queue, ranked by what the model most needs (:func:`core.latent.queue.build_queue`)."""

from __future__ import annotations

import argparse

from core.cli.common import add_command

HELP = "The galaxies to inspect next: unretired galaxies ranked by BALD, entropy, margin, vote disagreement or at random."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "queue", HELP, run)
    p.add_argument("--strategy", choices=["bald", "entropy", "margin", "disagreement", "random"], default=None,
                   help="ranking (default: config queue.strategy, bald)")
    p.add_argument("--n", type=int, default=None, help="galaxies in the batch (default: config queue.n, 48)")
    p.add_argument("--offset", type=int, default=0, help="skip this many galaxies of the queue (the next batch)")
    p.add_argument("--method", choices=["majority", "ds", "classifier"], default=None,
                   help="consensus method that decides retirement (default: config votes.method)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="write the ranked list (CSV: rank, id, row, score, cluster) instead of printing it")


def run(args: argparse.Namespace) -> int:
    from core.latent.queue import build_queue
    from core.workspace.workspace import Workspace

    ws = Workspace.open(args.workspace)
    queue = build_queue(ws, args.strategy, args.n, offset=args.offset, method=args.method)
    if args.out:
        queue.table.to_csv(args.out, index=False)
        print(queue.to_text().splitlines()[0])
        if queue.note:
            print(f"note: {queue.note}")
        print(f"wrote {len(queue.table)} galaxies to {args.out}")
    else:
        print(queue.to_text())
    return 0
