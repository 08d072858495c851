"""Training and inference throughput (not a test).

Measures, in the same process and on the same model (the paper's CNN at 50 x 50, or --size):

* images/s of bare ``model.fit`` on in-memory tensors (the baseline: no augmentation, no
  callbacks);
* images/s through the project's pipeline: the balanced on-the-fly augmentation
  (``core.learn.augment.augment_dataset``) plus the run's callbacks (progress, STOP check, history,
  checkpoint) — goal >= 0.9x the baseline;
* images/s of latent inference (``core.latent.analysis``'s model: Dense-512 + softmax outputs), batch 256;
* with ``--demo``: the stage times of ``resx demo`` in a temporary folder.

Each training measurement is the best of ``--repeat`` epochs of one ``fit`` after a first epoch
that traces the graph (the pipeline's epochs include its checkpoint, history and progress files). Run:

    .venv/bin/python tests/benchmarks/bench_train.py [--size 50] [--images 3200] [--repeat 3] [--demo]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=50)
    ap.add_argument("--images", type=int, default=3200, help="images per timed epoch")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--demo", action="store_true", help="also time `resx demo` (minutes)")
    args = ap.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf
    from model_workspace import class_stamp

    from core.labels import CLASSES
    from core.latent.inference import _inference_model
    from core.learn.augment import augment_dataset
    from core.learn.models import build_model
    from core.learn.schedule import make_schedule
    from core.learn.training import _callbacks, _StopFlag
    from core.workspace.config import default_config

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n = 1000
    labels = np.array(CLASSES)[rng.integers(0, 5, n)]
    x = np.stack([class_stamp(c, args.size, rng) for c in labels])
    x /= np.abs(x).max(axis=(1, 2), keepdims=True)
    y = np.eye(5, dtype=np.float32)[[CLASSES.index(c) for c in labels]]
    per_class = args.images // 5
    steps = math.ceil(per_class * 5 / 32)
    n_img = steps * 32

    cfg = default_config()
    cfg["models"]["input_size"] = args.size

    schedule = make_schedule(1e-4, 10 * steps)

    def compiled():
        m = build_model("cnn", cfg)
        m.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy", metrics=["accuracy"])
        return m

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    # -- baseline: bare model.fit on in-memory tensors -------------------------------------
    xb = np.concatenate([x] * math.ceil(n_img / n))[:n_img, ..., None]
    yb = np.concatenate([y] * math.ceil(n_img / n))[:n_img]
    bare, t_bare = compiled(), EpochTimer()
    bare.fit(xb, yb, batch_size=32, epochs=1 + args.repeat, verbose=0, shuffle=True, callbacks=[t_bare])

    # -- the project's pipeline: augmentation + the run's callbacks, as core.learn.training runs them --
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    ds = augment_dataset(x, labels, per_class=per_class, batch_size=32, seed=0)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps)).repeat()
    piped, t_pipe = compiled(), EpochTimer()
    stop = _StopFlag(tmp, handle_signals=False)
    monitor = _callbacks(tmp, 1 + args.repeat, steps, schedule, stop, progress=False)
    piped.fit(ds, epochs=1 + args.repeat, steps_per_epoch=steps, verbose=0, shuffle=False,
              callbacks=[t_pipe, monitor])
    # the first epoch of each traces the graph: compare the best of the others
    ips_bare = n_img / min(t_bare.times[1:])
    ips_pipe = n_img / min(t_pipe.times[1:])

    # -- inference ---------------------------------------------------------------------------
    infer = _inference_model(piped)
    xi = np.concatenate([x] * 5)[..., None]
    infer.predict(xi[:512], batch_size=256, verbose=0)
    t0 = time.perf_counter()
    infer.predict(xi, batch_size=256, verbose=0)
    ips_inf = len(xi) / (time.perf_counter() - t0)

    print(f"CNN {args.size}x{args.size}, batch 32, {n_img} images per timed epoch, best of {args.repeat}; "
          f"TF sees {len(tf.config.list_logical_devices('GPU'))} GPU(s)")
    print(f"  bare model.fit, in-memory tensors : {ips_bare:8.1f} images/s  (baseline)")
    print(f"  project pipeline (augment + runs) : {ips_pipe:8.1f} images/s  = {ips_pipe / ips_bare:.2f}x baseline "
          f"(goal >= 0.9x)")
    print(f"  latent inference, batch 256       : {ips_inf:8.1f} images/s  = {ips_inf / ips_bare:.1f}x training")

    if args.demo:
        from core.demo import build_demo

        root = Path(tempfile.mkdtemp(prefix="bench_demo_")) / "demo"
        info = build_demo(root, n=1000, progress=False, echo=lambda *a: None)
        print("resx demo stage times (s):")
        for k, v in info["stages"].items():
            print(f"  {k:<11} {v:7.1f}")
        print(f"  total       {info['total_s']:7.1f}  (goal <= 180 s on 2 CPU cores); "
              f"CNN test accuracy {info.get('accuracy', float('nan')):.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
