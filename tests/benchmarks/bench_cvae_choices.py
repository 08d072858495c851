"""The CvAE choices the paper leaves open, measured (not a test).

``core.learn.models`` explains why the CvAE sums the squared error over a stamp's pixels
(``models.recon_reduction = "sum"``) and why it is initialised with He-normal ReLU layers, a
zero output layer, ln σ² = -6 and a KL warm-up. This benchmark measures those choices instead of
quoting numbers in docstrings: on a simulated survey (the demo's by default), one CvAE per variant
with the same schedule and seed, each embedded, and for each

* the test reconstruction MSE and its ratio to the trivial all-zero reconstruction's MSE
  (``recon_mse_ratio``: 1.0 = the CvAE learned nothing beyond the trivial solution);
* the test KL (near 0: the posterior collapsed to the prior);
* Spearman ρ(PC1, log10 SPF) of its latents (the paper's CvAE latents track residual strength;
  the sign of a PC is arbitrary, |ρ| matters).

Variants (``--variants``; each a set of ``models`` overrides of the default config):

* ``default`` — the project's defaults;
* ``mean`` — ``recon_reduction = "mean"`` (eq. 5 read with N = pixels) at the paper's KL weight 1;
* ``keras-init`` — Keras' initialisation: Glorot ReLU layers and output, ln σ² bias 0, no warm-up;
* ``no-warmup`` — the defaults without the KL warm-up (the paper's constant weight).

Writes ``OUT/cvae_choices.json`` and prints a table. Run:

    .venv/bin/python tests/benchmarks/bench_cvae_choices.py [--n 1000] [--epochs 3] [--per-class 150]
        [--variants default mean keras-init no-warmup] [--out DIR]

The default schedule is the demo's (3 epochs of 150 augmented images per class, Adam 3e-3): a few
minutes per variant on 2 CPU cores, the survey (simulate + ingest + prep) built once in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VARIANTS: dict[str, dict] = {
    "default": {},
    "mean": {"recon_reduction": "mean"},
    "keras-init": {"kernel_initializer": "glorot_uniform", "output_init": "glorot_uniform",
                   "log_var_bias": 0.0, "kl_warmup": 0.0},
    "no-warmup": {"kl_warmup": 0.0},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="simulated galaxies")
    ap.add_argument("--seed", type=int, default=0, help="survey and training seed")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--per-class", type=int, default=150)
    ap.add_argument("--learning-rate", type=float, default=3e-3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "resx-bench-cvae")
    args = ap.parse_args()

    from core.latent.embed import embed_run
    from core.learn.runs import read_run
    from core.learn.training import train
    from core.workspace.workspace import Workspace, WorkspaceError
    from tests.benchmarks.science_check import spearman_pc1

    out = args.out.resolve()
    root = out / "ws"
    if not (root / "prep_done").exists():
        from core.prep.pipeline import prep_workspace
        from core.simulation.survey import simulate_survey
        from core.workspace.ingestion import ingest

        t = time.perf_counter()
        simulate_survey(args.n, args.seed, out / "simulation")
        prep_workspace(ingest(out / "simulation", root, force=True))
        (root / "prep_done").write_text("")
        print(f"survey of {args.n} built in {time.perf_counter() - t:.0f} s", flush=True)
    ws = Workspace.open(root)

    results = {}
    for name in args.variants:
        rid = f"cvae-{name}-e{args.epochs}-p{args.per_class}-s{args.seed}"
        try:
            info = read_run(ws, rid)
        except WorkspaceError:
            info = None
        t = time.perf_counter()
        if info is None or info.status != "done":
            if info is not None:
                import shutil

                shutil.rmtree(info.path)
            cfg = {"models": dict(VARIANTS[name]), "train": {"learning_rate": args.learning_rate,
                                                               "early_stopping": False}}
            info = train(ws, "cvae", "catalog", epochs=args.epochs, per_class=args.per_class, seed=args.seed,
                         run_id=rid, activate=False, config=cfg)
        emb = embed_run(ws, rid)
        ev = json.loads((info.path / "evaluation.json").read_text())
        results[name] = {"overrides": VARIANTS[name], "recon_mse": ev["recon_mse"],
                         "recon_mse_ratio": ev.get("recon_mse_ratio"), "kl": ev.get("kl"),
                         "spearman_pc1_log_spf": spearman_pc1(ws, emb), "seconds": round(time.perf_counter() - t, 1)}
        print(f"{name}: {results[name]}", flush=True)

    report = {"n": args.n, "seed": args.seed, "epochs": args.epochs, "per_class": args.per_class,
              "learning_rate": args.learning_rate, "results": results}
    (out / "cvae_choices.json").write_text(json.dumps(report, indent=2))
    print(f"\nCvAE choices ({args.n} galaxies, {args.epochs} epochs of {args.per_class} per class, "
          f"Adam {args.learning_rate:g}, seed {args.seed})")
    print(f"  {'variant':<11} {'MSE':>9} {'MSE/zero':>9} {'KL':>9} {'rho(PC1, log SPF)':>18}")
    for name, r in results.items():
        ratio = r["recon_mse_ratio"]
        print(f"  {name:<11} {r['recon_mse']:9.3e} {ratio if ratio is not None else float('nan'):9.3f} "
              f"{r['kl'] if r['kl'] is not None else float('nan'):9.3g} {r['spearman_pc1_log_spf']:+18.2f}")
    print(f"  written: {out / 'cvae_choices.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
