"""Science check: the paper's full schedule, with early stopping, on the default simulated survey (not a test).

Simulates the default survey (2,000 galaxies, seed 0), ingests and preps it, trains the CNN and
the CvAE with the paper's schedule (a maximum of 100 epochs of 5,000 augmented images per class,
Adam 1e-4 halved every third of the *planned* steps, batch 32) and early stopping on the
validation split (``train.early_stopping``, patience 10), embeds both, and reports what §4–5
report:

* CNN test accuracy, per-class recall and the confusion matrix (paper: ~75 % overall, ~91 % on
  Clean; targets >= 75 % and Clean >= 90 %);
* Spearman ρ(PC1, log10 SPF) for the CNN and the CvAE latents (paper: PC1 tracks residual
  strength; the sign of a PC is arbitrary, so |ρ| is what matters; target |ρ_CNN| > |ρ_CvAE|);
* the k-means elbow k of each (paper: 6 for the CNN, 2 for the CvAE);
* the explained variance of the 3 PCs;
* the epochs each model ran, why it stopped, and its training wall time.

Resumable in pieces: everything lives in ``--out DIR`` (``DIR/ws``; runs ``science-cnn`` and
``science-cvae``). ``--minutes M`` stops training cleanly after M minutes of this invocation (a
``STOP`` file: the run is ``cancelled`` with its last complete epoch checkpointed); running the
same command again resumes the unfinished run (``core.learn.training.resume``), reuses a finished
one, and so on until both are done. A trainer killed outright (kill -9) is resumed the same way.
The report (``DIR/science.json`` and stdout) lists what is finished and the command to continue.

Hours on a 2-core CPU; minutes on a GPU. ``--epochs`` / ``--per-class`` shorten the schedule
(e.g. to check the script), ``--demo`` uses the `resx demo` schedule instead. Run:

    .venv/bin/python tests/benchmarks/science_check.py --out DIR [--minutes M] [--n 2000]
        [--models cnn,cvae] [--epochs 100] [--per-class 5000] [--demo] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PAPER = {"accuracy": 0.75, "clean_recall": 0.90, "elbow_cnn": 6, "elbow_cvae": 2}


def spearman_pc1(ws, emb) -> float:
    import numpy as np
    from scipy.stats import spearmanr

    cat = ws.read_catalog()
    spf = np.asarray(cat["spf"], dtype=float)[emb.rows]
    ok = np.isfinite(spf) & (spf > 0)
    return float(spearmanr(emb.pcs_raw[ok, 0], np.log10(spf[ok])).statistic)


class Deadline:
    """Write ``STOP`` into the run folder being trained once ``minutes`` have passed."""

    def __init__(self, minutes: float | None):
        self.end = None if minutes is None else time.time() + 60 * minutes
        self.run_dir: Path | None = None
        self.hit = False
        self._done = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self):
        while not self._done.wait(2.0):
            if self.end is not None and time.time() >= self.end and self.run_dir is not None:
                (self.run_dir / "STOP").write_text("science_check --minutes\n")
                self.hit = True
                self.run_dir = None

    def expired(self) -> bool:
        return self.end is not None and time.time() >= self.end


def _history_seconds(run_dir: Path) -> float:
    from core.learn.training import _read_history

    return float(sum(_read_history(run_dir).get("seconds", [])))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the workspace and the runs (reused when present)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="cnn,cvae")
    ap.add_argument("--minutes", type=float, default=None, help="stop training cleanly after this long; "
                    "run the same command again to resume")
    ap.add_argument("--epochs", type=int, default=None, help="default: config train.epochs (100)")
    ap.add_argument("--per-class", type=int, default=None, help="default: config augment.per_class (5000)")
    ap.add_argument("--demo", action="store_true", help="use the `resx demo` schedules")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()

    from core.latent.embed import embed_run
    from core.learn.backend import describe_device
    from core.learn.runs import read_run
    from core.learn.training import resume, train
    from core.workspace.workspace import Workspace, WorkspaceError

    out = Path(args.out).resolve()
    root = out / "ws"
    report_path = out / "science.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {"times_s": {}}
    times = report.setdefault("times_s", {})
    print(f"device: {describe_device()}", flush=True)
    if not (root / "config.toml").exists() or not (root / "prep_done").exists():
        from core.prep.pipeline import prep_workspace
        from core.simulation.survey import simulate_survey
        from core.workspace.ingestion import ingest

        t = time.perf_counter()
        simulate_survey(args.n, args.seed, out / "simulation")
        times["simulate"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        ws = ingest(out / "simulation", root, force=True)
        prep_workspace(ws)
        (root / "prep_done").write_text("")
        times["ingest+prep"] = round(time.perf_counter() - t, 1)
    ws = Workspace.open(root)
    report.update(workspace=str(ws.root), n=args.n, seed=args.seed)

    if args.demo:
        from core.demo import DEMO_SCHEDULE

        schedules = {m: dict(v) for m, v in DEMO_SCHEDULE.items()}
    else:
        schedules = {m: {"epochs": args.epochs, "per_class": args.per_class} for m in ("cnn", "cvae")}
    report["schedules"] = schedules
    deadline = Deadline(args.minutes)
    unfinished = []
    for model in args.models.split(","):
        rid = f"science-{model}"
        try:
            info = read_run(ws, rid)
        except WorkspaceError:
            info = None
        if info is not None and info.status != "done" and not (info.path / "checkpoint" / "checkpoint").exists():
            import shutil

            print(f"{rid} stopped before its first complete epoch: training it afresh", flush=True)
            shutil.rmtree(info.path)
            info = None
        if info is None or info.status != "done":
            if deadline.expired() or unfinished:  # out of time, or stopped (SIGINT/SIGTERM, STOP) in this piece
                unfinished.append(model)
                continue
            deadline.run_dir = ws.runs_dir / rid
            t = time.perf_counter()
            if info is None:
                sched = schedules[model]
                cfg = {"train": {"learning_rate": sched["learning_rate"]}} if "learning_rate" in sched else None
                info = train(ws, model, "catalog", epochs=sched.get("epochs"), per_class=sched.get("per_class"),
                             seed=args.seed, progress=True, run_id=rid, config=cfg)
            else:
                done_epochs = json.loads((info.path / "progress.json").read_text()).get("epoch")
                print(f"resuming {rid} ({info.status} after {done_epochs} complete epochs)", flush=True)
                info = resume(ws, rid, progress=True)
            deadline.run_dir = None
            times[f"train {model} (this piece)"] = round(time.perf_counter() - t, 1)
        if info.status != "done":
            unfinished.append(model)
            report[model] = {"run": rid, "status": info.status,
                             "epochs_completed": int(json.loads((info.path / "progress.json").read_text())["epoch"]),
                             "train_wall_s": round(_history_seconds(info.path), 1)}
            continue
        r = report.get(model, {})
        if r.get("status") != "done":
            t = time.perf_counter()
            emb = embed_run(ws, rid)
            times[f"embed {model}"] = round(time.perf_counter() - t, 1)
            ev = json.loads((info.path / "evaluation.json").read_text())
            rec = json.loads((info.path / "run.json").read_text())
            r = {"run": rid, "status": "done", "stopped": rec.get("stopped"), "epochs_run": rec.get("epochs_run"),
                 "epochs_planned": rec.get("epochs"), "best_epoch": rec.get("best_epoch"),
                 "steps": rec.get("steps"), "resumed": len(rec.get("resumed", [])),
                 "train_wall_s": round(_history_seconds(info.path), 1),
                 "spearman_pc1_log_spf": spearman_pc1(ws, emb), "elbow_k": emb.elbow_k,
                 "explained_variance": [float(v) for v in emb.explained_variance]}
            if model == "cnn":
                r.update(accuracy=ev["accuracy"], recall={c: v["recall"] for c, v in ev["per_class"].items()},
                         confusion=ev["confusion"], classes=ev.get("classes"),
                         train_accuracy_best_epoch=ev.get("train_accuracy_best_epoch"))
            else:
                r.update(recon_mse=ev["recon_mse"], recon_mse_ratio=ev.get("recon_mse_ratio"))
            report[model] = r
        report_path.write_text(json.dumps(report, indent=2))
    report["unfinished"] = unfinished
    report_path.write_text(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    _print(report, args, unfinished)
    return 0 if not unfinished else 3


def _print(report: dict, args, unfinished: list[str]) -> None:
    print("\nScience check (paper's values in brackets)")
    cnn, cvae = report.get("cnn", {}), report.get("cvae", {})
    if cnn.get("status") == "done":
        print(f"  CNN test accuracy        {cnn['accuracy']:.1%}   [~75 %; target >= 75 %]")
        print("  CNN recall per class     " + ", ".join(f"{c} {r:.0%}" for c, r in cnn["recall"].items())
              + "   [Clean ~91 %; target >= 90 %]")
        print(f"  CNN confusion (rows true {', '.join(cnn.get('classes') or [])}): {cnn['confusion']}")
    for name, r in (("CNN", cnn), ("CvAE", cvae)):
        if r.get("status") == "done":
            ev = ", ".join(f"{v:.1%}" for v in r["explained_variance"])
            print(f"  {name:<4} Spearman rho(PC1, log SPF) {r['spearman_pc1_log_spf']:+.2f};  elbow k = {r['elbow_k']} "
                  f"[{PAPER['elbow_' + name.lower()]}];  explained variance of 3 PCs: {ev}")
            print(f"  {name:<4} stopped: {r['stopped']}; training wall time {r['train_wall_s'] / 60:.1f} min "
                  f"({r['resumed']} resumption(s))")
        elif r:
            print(f"  {name:<4} {r['status']} after {r['epochs_completed']} complete epochs "
                  f"({r['train_wall_s'] / 60:.1f} min of training)")
    if cvae.get("status") == "done":
        ratio = cvae.get("recon_mse_ratio")
        print(f"  CvAE test reconstruction MSE {cvae['recon_mse']:.3e}"
              + (f" ({ratio:.3f} of the all-zero reconstruction's)" if ratio is not None else ""))
    print("  times (s): " + ", ".join(f"{k} {v}" for k, v in report["times_s"].items()))
    if unfinished:
        cmd = [sys.executable, str(Path(__file__)), "--out", str(Path(args.out).resolve()), "--n", str(args.n),
               "--seed", str(args.seed), "--models", args.models]
        if args.minutes:
            cmd += ["--minutes", f"{args.minutes:g}"]
        for flag, v in (("--epochs", args.epochs), ("--per-class", args.per_class)):
            if v is not None:
                cmd += [flag, str(v)]
        if args.demo:
            cmd.append("--demo")
        print(f"  unfinished: {', '.join(unfinished)}; continue with:\n    " + " ".join(cmd))


if __name__ == "__main__":
    sys.exit(main())
