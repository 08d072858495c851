"""``resx train``: a training run of the CNN or the CvAE (:func:`core.learn.training.train`)."""

from __future__ import annotations

import argparse
import json

from core.cli.common import add_command

HELP = "Train the CNN or the CvAE; each run is a folder runs/<run-id>/."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train", HELP, run)
    p.add_argument("--model", choices=["cnn", "cvae"], default=None, help="required unless --resume")
    p.add_argument("--labels", choices=["catalog", "consensus"], default="catalog",
                   help="catalog classes or the inspectors' consensus (default catalog)")
    p.add_argument("--consensus-method", choices=["majority", "ds", "classifier"], default=None,
                   help="with --labels consensus: the 2/3 majority, Dawid-Skene or classifier-aware consensus "
                   "(default: config votes.method)")
    p.add_argument("--init", default=None, metavar="RUN", help="fine-tune from this run's weights")
    p.add_argument("--epochs", type=int, default=None,
                   help="the most epochs (default train.epochs); early stopping (train.early_stopping) may end sooner")
    p.add_argument("--per-class", type=int, default=None, help="augmented images per class per epoch")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--run-id", default=None, help="id of the new run (default: model + timestamp)")
    p.add_argument("--no-activate", action="store_true", help="do not make the new run the active one")
    p.add_argument("--embed", action="store_true", help="run `resx embed` on the new run when it ends")
    p.add_argument("--resume", default=None, metavar="RUN",
                   help="continue an interrupted (or cancelled) run from its last complete epoch, with its own "
                        "settings")
    p.add_argument("--size-to-labels", action="store_true",
                   help="size each epoch to the labelled galaxies (train.images_per_label per galaxy) and stop "
                        "early on the validation loss (the dashboard's retrain)")


def run(args: argparse.Namespace) -> int:
    """Train; 0 done, 130 cancelled (a ``STOP`` file from the dashboard)."""
    from core.learn.data import TrainingError
    from core.learn.training import resume, retrain, train

    if args.resume:
        given = [f"--{k.replace('_', '-')}" for k in ("model", "init", "epochs", "per_class", "seed", "run_id",
                                                      "consensus_method")
                 if getattr(args, k) is not None] + (["--size-to-labels"] if args.size_to_labels else [])
        if given:
            raise TrainingError(f"--resume continues a run with its own settings: drop {', '.join(given)}")
        info = resume(args.workspace, args.resume, activate=not args.no_activate, embed=args.embed, progress=True)
        return _report(info)
    if args.model is None:
        raise TrainingError("--model cnn|cvae is required (unless --resume RUN)")
    overrides = {"votes": {"method": args.consensus_method}} if args.consensus_method else None
    common = dict(init=args.init, epochs=args.epochs, seed=args.seed, run_id=args.run_id,
                  activate=not args.no_activate, embed=args.embed, progress=True, config=overrides)
    if args.size_to_labels:
        if args.per_class is not None:
            raise TrainingError("--per-class and --size-to-labels exclude each other")
        common["max_epochs"] = common.pop("epochs")
        info = retrain(args.workspace, args.model, args.labels, **common)
    else:
        info = train(args.workspace, args.model, args.labels, per_class=args.per_class, **common)
    return _report(info)


def _report(info) -> int:
    if info.status == "cancelled":
        print(f"run {info.id} cancelled (not activated); last complete epoch in {info.path / 'checkpoint.keras'}; "
              f"continue it with: resx train {info.path.parent.parent} --resume {info.id}")
        return 130
    score = (f"test accuracy {info.accuracy:.1%}" if info.accuracy is not None
             else f"test reconstruction MSE {info.recon_mse:.3e}" if info.recon_mse is not None else "")
    print(f"run {info.id} ({info.model}, {info.labels} labels) done: {score}"
          + ("; active" if info.active else ""))
    if info.stopped:
        print(f"  stopped: {info.stopped}")
    device = json.loads((info.path / "run.json").read_text()).get("device")
    if device:
        print(f"  device: {device}")
    print(f"  folder: {info.path}")
    return 0
