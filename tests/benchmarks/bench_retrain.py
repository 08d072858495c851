"""The dashboard's retrain, sized to the labels (not a test; issue 12, item 9).

On a fabricated workspace of ``--n`` galaxies (tests/app_workspace.py: 50 x 50 stamps whose residual
pattern grows with the class), an initial CNN run is trained (untimed setup: one short epoch), then
``--labels`` galaxies get a consensus from three simulated inspectors (their catalog class), and
the command the dashboard's Retrain button runs (:class:`app.retrain.RetrainJob`: fine-tune from the
active run, ``--labels consensus --size-to-labels --embed``, at most ``--epochs``) is timed end to
end -- training with early stopping, then the embedding of every galaxy (the refreshed map: the
dashboard shows it as soon as ``progress.json`` reaches phase "scoring"), then the Inspect-next
queue's acquisition scores (MC-dropout BALD), which no longer hold the map back. Goal: <= 120 s
from the start to the refreshed map for 1,000 labels on 10^4 galaxies on 2 CPU cores. Run:

    OMP_NUM_THREADS=2 .venv/bin/python tests/benchmarks/bench_retrain.py [--n 10000] [--labels 1000] [--epochs 10]

Prints the time to the refreshed map and to the scores (both from the start of the process),
the epochs run and why the run stopped, the steps per epoch and the load average before and
after (a loaded machine inflates the times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="galaxies in the workspace")
    ap.add_argument("--labels", type=int, default=1_000, help="galaxies with a new consensus label")
    ap.add_argument("--epochs", type=int, default=10, help="the most epochs (the dashboard's default)")
    ap.add_argument("--keep", default=None, help="build the workspace here (and keep it) instead of a temp folder")
    args = ap.parse_args()

    import numpy as np

    from app.retrain import RetrainJob
    from app_workspace import make_workspace
    from core.votes.store import open_store
    from core.workspace.workspace import Workspace

    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="bench-retrain-")
    root = Path(args.keep or tmp.name) / "ws"
    t0 = time.perf_counter()
    if not root.exists():
        make_workspace(root, n=args.n, size=50, runs=False)
    ws = Workspace.open(root)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    if not ws.active_run("cnn"):
        subprocess.run([sys.executable, "-m", "core", "train", str(root), "--model", "cnn", "--epochs", "1",
                        "--per-class", "64", "--run-id", "cnn-init"], check=True, cwd=ROOT, env=env,
                       capture_output=True)
    print(f"setup (workspace + initial run): {time.perf_counter() - t0:.0f} s")
    cat = Workspace.open(root).read_catalog()
    rng = np.random.default_rng(0)
    pick = rng.choice(len(cat), size=min(args.labels, len(cat)), replace=False)
    store = open_store(Workspace.open(root))
    for name in ("sim1", "sim2", "sim3"):
        store.add_inspector(name)
        ids = [str(i) for i in cat["id"][pick]]
        labels = [str(c) for c in cat["catalog_class"][pick]]
        for label in set(labels):
            store.cast([i for i, lab in zip(ids, labels) if lab == label], name, label, source="simulated")
    store.close()

    ws = Workspace.open(root)
    job = RetrainJob(ws, "cnn", args.epochs, ws.active_run("cnn"), run_id="cnn-retrain")
    print("command:", " ".join(job.cmd))
    load = os.getloadavg()
    t1 = time.perf_counter()
    job.start()
    t_map = None
    while job.proc.poll() is None:  # what the dashboard's poll sees (it polls every second or so)
        if t_map is None and job.map_ready():
            t_map = time.perf_counter() - t1
        time.sleep(0.2)
    wall = time.perf_counter() - t1
    if t_map is None and job.map_ready():
        t_map = wall
    status, message = job.outcome()
    info = job.run_json()
    prog = job.progress()
    print(f"status: {status} {message[:200] if message else ''}")
    after = os.getloadavg()
    print(f"time to the refreshed map: {t_map if t_map is None else round(t_map, 1)} s (goal <= 120 s); "
          f"time to the acquisition scores (process end): {wall:.1f} s")
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after: {after[0]:.2f} {after[1]:.2f} "
          f"{after[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"trainer's own phases: embedding {prog.get('map_s')} s, embedding + scores {prog.get('scores_s')} s "
          f"after training (phase {prog.get('phase')})")
    print(json.dumps({k: info.get(k) for k in ("epochs", "epochs_run", "stopped", "per_class", "steps_per_epoch",
                                                 "best_epoch", "accuracy")}, default=str))
    print(f"training time (progress.json elapsed_s): {prog.get('elapsed_s')}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
