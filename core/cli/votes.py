"""``resx votes import|export|stats|merge-inspectors``: the inspectors' vote store (:mod:`core.votes`)."""

from __future__ import annotations

import argparse
import contextlib
import logging
from fractions import Fraction
from typing import Iterator

log = logging.getLogger(__name__)

HELP = "Inspector votes: import, export, agreement statistics."


def register(sub: argparse._SubParsersAction) -> None:
    votes = sub.add_parser("votes", help=HELP, description=HELP)
    vsub = votes.add_subparsers(dest="votes_command", metavar="ACTION", required=True)
    p = vsub.add_parser("import", help="Import votes (CSV or FITS: id, inspector, label[, comment]).")
    p.set_defaults(func=run_import)
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--source", choices=["import", "simulated"], default="import")
    p.add_argument("--strict", action="store_true",
                   help="refuse the whole file if a vote names a galaxy not in the workspace (default: such "
                   "votes, e.g. on galaxies the sample cuts removed, are counted and skipped)")
    p = vsub.add_parser("export", help="Write the consensus catalog (FITS or CSV by extension).")
    p.set_defaults(func=run_export)
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--out", required=True)
    p = vsub.add_parser("stats", help="Fleiss' kappa, per-inspector agreement, confusion matrices and each "
                        "inspector's skill estimated by Dawid-Skene.")
    p.set_defaults(func=run_stats)
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--method", choices=["majority", "ds", "classifier"], default=None,
                   help="consensus the agreement is measured against (default: config votes.method)")
    p = vsub.add_parser("merge-inspectors",
                        help="Merge registered inspector names that are one person (same name up to case, "
                        "Unicode form and surrounding spaces); without --yes, only list them.")
    p.set_defaults(func=run_merge_inspectors)
    p.add_argument("workspace", metavar="WORKSPACE")
    p.add_argument("--yes", action="store_true", help="merge them (rewrites whose votes they are; keep a backup)")


@contextlib.contextmanager
def _store(workspace: str) -> Iterator[tuple]:
    """The workspace and its open vote store; a database that cannot be used is a VoteStoreError."""
    import sqlalchemy as sa

    from core.votes.store import VoteStoreError, open_store
    from core.workspace.workspace import Workspace

    ws = Workspace.open(workspace)
    try:
        with open_store(ws) as store:
            yield ws, store
    except sa.exc.OperationalError as exc:
        raise VoteStoreError(f"the vote database cannot be used: {exc.orig}") from exc


def run_import(args: argparse.Namespace) -> int:
    from core.votes.files import read_vote_file

    table = read_vote_file(args.file)
    with _store(args.workspace) as (_, store):
        report = store.import_votes(table, source=args.source, name=str(args.file),
                                    unknown="error" if args.strict else "skip")
    new = f" ({len(report.new_inspectors)} newly registered: {', '.join(report.new_inspectors)})" \
        if report.new_inspectors else ""
    print(f"imported {report.n_votes} votes by {len(report.inspectors)} inspector(s){new} "
          f"from {args.file} into {args.workspace}")
    if report.n_skipped:
        shown = ", ".join(report.skipped_ids[:5]) + (", ..." if len(report.skipped_ids) > 5 else "")
        print(f"skipped {report.n_skipped} votes on {len(report.skipped_ids)} galaxies not in this workspace "
              f"(removed by the sample cuts, or unknown): {shown}; --strict refuses such a file")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from core.io.export import consensus_rule, provenance
    from core.votes.consensus import UNDECIDED
    from core.votes.files import consensus_catalog, write_table
    from core.workspace.workspace import WorkspaceError

    with _store(args.workspace) as (ws, store):
        consensus = store.consensus()
        rule = consensus_rule(store.config, method="majority")  # what store.consensus() computes
    try:
        catalog = ws.read_catalog()
    except WorkspaceError as exc:
        log.warning("exporting the consensus without catalog columns: %s", exc)
        catalog = None
    table = consensus_catalog(consensus, catalog)
    write_table(table, args.out, provenance(ws, consensus=rule, what="consensus catalog (resx votes export)"))
    decided = int((table["consensus"] != UNDECIDED).sum())
    print(f"wrote {len(table)} galaxies to {args.out}: {decided} with a consensus "
          f"({int(table['expert'].sum())} expert-validated), {len(table) - decided} undecided")
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from core.labels import VOTE_LABELS
    from core.latent.queue import active_probabilities
    from core.votes.agreement import compute_agreement
    from core.votes.consensus import UNDECIDED
    from core.votes.methods import store_consensus

    with _store(args.workspace) as (ws, store):
        votes = store.current_votes()
        rule_cfg = dict(store.config)
        method = args.method or rule_cfg.get("method", "majority")
        probs = active_probabilities(ws, store.galaxy_ids()) if method == "classifier" else None
        result = store_consensus(store, method, model_probabilities=probs)
        consensus = result.table
        ds = result if method == "ds" else store_consensus(store, "ds")
        agreement = compute_agreement(votes, consensus)
        n_inspectors = len(store.inspectors())
        collisions = store.inspector_collisions()
    share = Fraction(float(rule_cfg["fraction"])).limit_denominator(1000)
    rule = (f"{rule_cfg['min_votes']} non-skip votes, a {share} majority" if method == "majority"
            else f"{rule_cfg['min_votes']} non-skip votes, the most probable label by {method}")
    print(f"{len(votes)} current votes by {n_inspectors} inspector(s) on {int((consensus['n_votes'] > 0).sum())} "
          f"of {len(consensus)} galaxies (consensus rule: >= {rule})")
    counts = consensus["label"].value_counts()
    print("Consensus: " + ", ".join(f"{lab} {int(counts.get(lab, 0))}"
                                     for lab in [*VOTE_LABELS[:-1], UNDECIDED]))
    if collisions:
        print(_collision_text(collisions) + "\nMerge them with `resx votes merge-inspectors WORKSPACE --yes`.")
    print()
    print(agreement.to_text())
    print()
    print(skill_text(ds))
    if result.weights:
        print()
        print("Classifier-aware weights: " + ", ".join(f"{k} {v:.2f}" for k, v in result.weights.items()))
    return 0


def skill_text(result) -> str:
    """Each inspector's Dawid-Skene skill and confusion matrix, as ``resx votes stats`` prints them."""
    import pandas as pd

    from core.votes.methods import JUDGMENT_LABELS

    skills = result.skills()
    if skills.empty:
        return "Estimated skill (Dawid-Skene): no votes yet."
    lines = [f"Estimated skill (Dawid-Skene, {result.n_iter} EM iterations; skill = expected accuracy, "
             "recall = P(votes the class | true class)):"]
    shown = skills.copy()
    for c in shown.columns[1:]:
        shown[c] = [f"{100 * v:.1f} %" for v in shown[c]]
    lines.append(shown.to_string(index=False))
    for name, theta in result.confusion.items():
        table = pd.DataFrame(theta, index=list(JUDGMENT_LABELS), columns=list(JUDGMENT_LABELS)).round(2)
        table.index.name, table.columns.name = "true", "vote"
        lines.append("")
        lines.append(f"Estimated confusion matrix of {name!r} (rows: true class, columns: vote):")
        lines.append(table.to_string())
    return "\n".join(lines)


def _collision_text(groups: list[list[str]]) -> str:
    return f"{len(groups)} inspector(s) registered under several names (one person each):\n" + "\n".join(
        "  " + " = ".join(repr(n) for n in names) + f"  (kept: {names[0]!r})" for names in groups)


def run_merge_inspectors(args: argparse.Namespace) -> int:
    with _store(args.workspace) as (_, store):
        groups = store.inspector_collisions()
        if not groups:
            print("no inspector names to merge: every registered name is a different person")
            return 0
        if not args.yes:
            print(_collision_text(groups) + "\nnothing changed; run again with --yes to merge them")
            return 0
        merged = store.merge_inspectors()
    print(f"merged {sum(len(g) - 1 for g in merged)} name(s) into {len(merged)} inspector(s):\n" + "\n".join(
        f"  {names[0]!r} <- " + ", ".join(repr(n) for n in names[1:]) for names in merged))
    return 0
