"""Science check: the paper's full schedule on the default simulated survey (not a test).

Simulates the default survey (2,000 galaxies, seed 0; or reuses ``--workspace``), ingests and
preps it, trains the CNN and the CvAE with the paper's schedule (100 epochs of 5,000 augmented
images per class, Adam 1e-4 halved every third of the steps, batch 32), embeds both, and
reports what §4–5 report:

* CNN test accuracy and per-class recall (paper: ~75 % overall, ~91 % on Clean; targets
  >= 75 % and Clean >= 90 %);
* Spearman ρ(PC1, log10 SPF) for the CNN and the CvAE latents (paper: PC1 tracks residual
  strength; the sign of a PC is arbitrary, so |ρ| is what matters);
* the k-means elbow k of each (paper: 6 for the CNN, 2 for the CvAE);
* the explained variance of the 3 PCs (paper: >~ 90 % for the CNN).

Hours on a 2-core CPU; minutes on a GPU. ``--epochs`` / ``--per-class`` shorten the schedule
(e.g. to check the script), ``--demo`` uses the `resx demo` schedule instead. Run:

    .venv/bin/python tests/benchmarks/science_check.py [--out DIR] [--n 2000] [--workspace WS]
        [--epochs 100] [--per-class 5000] [--demo] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="folder for the workspace (default: a temporary one)")
    ap.add_argument("--workspace", default=None, help="reuse this prepared workspace (skip simulate/ingest/prep)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="default: config train.epochs (100)")
    ap.add_argument("--per-class", type=int, default=None, help="default: config augment.per_class (5000)")
    ap.add_argument("--demo", action="store_true", help="use the `resx demo` schedules")
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args()

    from core.latent.embed import embed_run
    from core.learn.training import train
    from core.workspace.workspace import Workspace

    t0 = time.perf_counter()
    times: dict[str, float] = {}
    if args.workspace:
        ws = Workspace.open(args.workspace)
    else:
        from core.prep.pipeline import prep_workspace
        from core.simulation.survey import simulate_survey
        from core.workspace.ingestion import ingest

        root = Path(args.out or tempfile.mkdtemp(prefix="science_check_")) / "ws"
        t = time.perf_counter()
        simulate_survey(args.n, args.seed, root.parent / "simulation")
        times["simulate"] = time.perf_counter() - t
        t = time.perf_counter()
        ws = ingest(root.parent / "simulation", root, force=True)
        prep_workspace(ws)
        ws = Workspace.open(root)
        times["ingest+prep"] = time.perf_counter() - t

    if args.demo:
        from core.demo import DEMO_SCHEDULE

        schedules = {m: dict(v) for m, v in DEMO_SCHEDULE.items()}
    else:
        schedules = {m: {"epochs": args.epochs, "per_class": args.per_class} for m in ("cnn", "cvae")}
    results: dict[str, object] = {"workspace": str(ws.root), "schedules": schedules}
    for model in ("cnn", "cvae"):
        t = time.perf_counter()
        sched = schedules[model]
        run = train(ws, model, "catalog", epochs=sched.get("epochs"), per_class=sched.get("per_class"),
                    seed=args.seed, progress=True, config=sched.get("config"))
        times[f"train {model}"] = time.perf_counter() - t
        t = time.perf_counter()
        emb = embed_run(ws, run.id)
        times[f"embed {model}"] = time.perf_counter() - t
        ev = json.loads((run.path / "evaluation.json").read_text())
        results[model] = {
            "run": run.id,
            "spearman_pc1_log_spf": spearman_pc1(ws, emb),
            "elbow_k": emb.elbow_k,
            "explained_variance": [float(v) for v in emb.explained_variance],
        }
        if model == "cnn":
            results[model].update(accuracy=ev["accuracy"],
                                  recall={c: v["recall"] for c, v in ev["per_class"].items()},
                                  confusion=ev["confusion"])
        else:
            results[model].update(recon_mse=ev["recon_mse"])
    results["times_s"] = {k: round(v, 1) for k, v in times.items()}
    results["total_s"] = round(time.perf_counter() - t0, 1)

    cnn, cvae = results["cnn"], results["cvae"]
    print("\nScience check (paper's values in brackets)")
    print(f"  CNN test accuracy        {cnn['accuracy']:.1%}   [~75 %; target >= 75 %]")
    print("  CNN recall per class     " + ", ".join(f"{c} {r:.0%}" for c, r in cnn["recall"].items())
          + "   [Clean ~91 %; target >= 90 %]")
    for name, r in (("CNN", cnn), ("CvAE", cvae)):
        ev = ", ".join(f"{v:.1%}" for v in r["explained_variance"])
        print(f"  {name:<4} Spearman rho(PC1, log SPF) {r['spearman_pc1_log_spf']:+.2f};  elbow k = {r['elbow_k']} "
              f"[{PAPER['elbow_' + name.lower()]}];  explained variance of 3 PCs: {ev}")
    print(f"  CvAE test reconstruction MSE {cvae['recon_mse']:.3e}")
    print("  times (s): " + ", ".join(f"{k} {v}" for k, v in results["times_s"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
