"""Reproducibility benchmark: how far the same seed's numbers move, and why (not a test).

The same seed on the same machine and thread count gives the same run up to TensorFlow's
floating-point non-associativity: TensorFlow schedules a reduction's partial sums over its
thread pool, and oneDNN (Intel's kernels, on by default on x86) picks kernels and blockings by
CPU instruction set and thread count, so another machine sums in another order, the weights drift
apart within the first steps and the end-of-training numbers differ by a few galaxies. That is
the *cross-machine tolerance*; this benchmark measures it by varying what differs between
machines (threads, oneDNN on/off) on one machine, and shows that TensorFlow's op determinism
(``train.deterministic = true``) makes two runs bit-identical at the same thread count.

Each variant is a fresh process training the demo's CNN schedule (``core.demo.DEMO_SCHEDULE``,
seed 0) on the same workspace and embedding it; the output table gives per variant the test
accuracy (and in test galaxies), the Clean recall, Spearman ρ(PC1, log SPF), the largest weight
difference from the first run, and the training time; ``--json`` writes it. The numbers belong
in this output (and the issue's closing note), not in docstrings. Run:

    .venv/bin/python tests/benchmarks/bench_reproducibility.py --workspace WS [--variants base,base,threads1,...]
        [--json FILE]

``WS`` is a prepared workspace with catalog classes (``resx demo`` builds one; the science check's
``DIR/ws`` works too). Variants: ``base`` (TF_NUM_INTRAOP_THREADS=2), ``threads1``, ``onednn_off``
(TF_ENABLE_ONEDNN_OPTS=0), ``deterministic`` (train.deterministic, 2 threads).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

VARIANTS = {
    "base": ({"TF_NUM_INTRAOP_THREADS": "2"}, {}),
    "threads1": ({"TF_NUM_INTRAOP_THREADS": "1"}, {}),
    "onednn_off": ({"TF_NUM_INTRAOP_THREADS": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}, {}),
    "deterministic": ({"TF_NUM_INTRAOP_THREADS": "2"}, {"deterministic": True}),
}

CHILD = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from scipy.stats import spearmanr
    from core.demo import DEMO_SCHEDULE
    from core.latent.embed import embed_run
    from core.learn.training import train
    from core.workspace.workspace import Workspace

    ws_root, run_id, train_extra, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    ws = Workspace.open(ws_root)
    sched = dict(DEMO_SCHEDULE["cnn"])
    cfg = {"train": {"learning_rate": sched.pop("learning_rate"), "early_stopping": sched.pop("early_stopping"),
                     **train_extra}}
    t = time.perf_counter()
    run = train(ws, "cnn", "catalog", seed=0, run_id=run_id, activate=False, config=cfg, **sched)
    train_s = time.perf_counter() - t
    emb = embed_run(ws, run.id)
    spf = np.asarray(ws.read_catalog()["spf"], float)[emb.rows]
    ok = np.isfinite(spf) & (spf > 0)
    ev = json.loads((run.path / "evaluation.json").read_text())
    json.dump({"accuracy": ev["accuracy"], "n_test": ev["n_test"], "clean_recall": ev["per_class"]["Clean"]["recall"],
               "rho": float(spearmanr(emb.pcs_raw[ok, 0], np.log10(spf[ok])).statistic),
               "train_s": round(train_s, 1), "path": str(run.path)}, open(out, "w"))
""")


def _weights(path: str):
    import keras

    return keras.models.load_model(Path(path) / "model.keras", compile=False).get_weights()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--variants", default="base,base,threads1,onednn_off,deterministic,deterministic")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import numpy as np

    tag = time.strftime("%H%M%S")
    rows = []
    for i, name in enumerate(args.variants.split(",")):
        env_extra, train_extra = VARIANTS[name]
        env = dict(os.environ, TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONPATH=str(ROOT), **env_extra)
        env.pop("TF_ENABLE_ONEDNN_OPTS", None) if "TF_ENABLE_ONEDNN_OPTS" not in env_extra else None
        out = Path(args.workspace) / f"bench-repro-{tag}-{i}.json"
        rid = f"bench-repro-{tag}-{i}-{name}"
        subprocess.run([sys.executable, "-c", CHILD, args.workspace, rid, json.dumps(train_extra), str(out)],
                       env=env, check=True, cwd=str(ROOT))
        r = json.loads(out.read_text())
        out.unlink()
        r["variant"] = name
        rows.append(r)
        print(f"{name:<14} accuracy {r['accuracy']:.1%} ({round(r['accuracy'] * r['n_test'])}/{r['n_test']}), "
              f"Clean recall {r['clean_recall']:.1%}, rho(PC1, log SPF) {r['rho']:+.3f}, {r['train_s']} s", flush=True)
    ref = _weights(rows[0]["path"])
    for r in rows:
        r["max_abs_weight_diff_vs_first"] = float(max(np.max(np.abs(a - b)) for a, b in zip(ref, _weights(r["path"]))))
    pairs = {}
    for name in set(r["variant"] for r in rows):
        same = [r for r in rows if r["variant"] == name]
        if len(same) > 1:
            w0, w1 = _weights(same[0]["path"]), _weights(same[1]["path"])
            pairs[name] = float(max(np.max(np.abs(a - b)) for a, b in zip(w0, w1)))
    acc = [r["accuracy"] for r in rows]
    n_test = rows[0]["n_test"]
    summary = {"rows": rows, "same_variant_max_abs_weight_diff": pairs,
               "accuracy_spread_pp": round(100 * (max(acc) - min(acc)), 2),
               "accuracy_spread_galaxies": round((max(acc) - min(acc)) * n_test),
               "rho_spread": round(max(r["rho"] for r in rows) - min(r["rho"] for r in rows), 4)}
    print("\nsame variant twice, largest weight difference: "
          + ", ".join(f"{k} {v:.2e}" for k, v in pairs.items()))
    print(f"spread over all variants: accuracy {summary['accuracy_spread_pp']} pp "
          f"({summary['accuracy_spread_galaxies']} of {n_test} test galaxies), rho {summary['rho_spread']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
