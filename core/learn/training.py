"""Training runs of the CNN and the CvAE (paper §4), each in its own folder ``runs/<run-id>/``.

The schedule is the paper's: Adam with an initial learning rate of 1e-4, halved every third of
the total steps (:class:`core.learn.schedule.StepHalving`), batches of 32, up to 100 epochs of ``per_class`` x 5
class-balanced, freshly augmented images (:func:`core.learn.augment.augment_dataset`: random flips and
45° rotations; paper: 5,000 per class). Every value comes from the config sections ``train``,
``augment``, ``split``, ``scaling`` and ``models`` and is recorded in the run's ``config.toml``.

Labels (``labels=``, ``"catalog"`` or ``"consensus"``), the galaxies used and the train/test
split are :mod:`core.learn.data`'s: a retrain on consensus labels is tested on the same held-out
galaxies as the catalog run.

Seeding: ``train.seed`` (or ``seed=``) seeds Python, numpy and TensorFlow
(``keras.utils.set_random_seed``: weights, noise, dropout, sampling) and the augmentation draws,
so the same seed on the same machine gives the same run up to TensorFlow's floating-point
non-associativity across threads (``train.deterministic = true`` enables TensorFlow's op
determinism for bit-identical runs, slower).

Cancelling: SIGINT/SIGTERM, or a file named ``STOP`` in the run folder, stops training at the
end of the current batch; the run's status becomes ``cancelled``, its last complete epoch stays
in ``checkpoint.keras``, and it never becomes the active run. A failed run (status ``failed``,
``error`` says why) does not either. More than one GPU: a ``tf.distribute.MirroredStrategy``
(global batch 32 split over the devices); otherwise TensorFlow's default strategy.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import keras  # noqa: E402
import numpy as np

from core.learn.backend import distribution_strategy, quiet_tensorflow
from core.learn.data import LABEL_SOURCES, TrainingData, TrainingError, load_training_data
from core.learn.evaluate import evaluate_cnn, evaluate_cvae, plot_confusion, plot_reconstructions
from core.learn.runs import RunError, RunInfo, new_run_id, read_run, write_run_json
from core.learn.schedule import make_schedule
from core.workspace.config import write_config
from core.workspace.workspace import Workspace

log = logging.getLogger(__name__)

STOP_FILE = "STOP"


class Cancelled(Exception):
    """Raised internally when a run is cancelled."""


# ----------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------
def _callbacks(run_dir: Path, epochs: int, steps: int, schedule, stop: Callable[[], bool], progress: bool):

    class RunMonitor(keras.callbacks.Callback):
        """history.csv, progress.json, checkpoint.keras every epoch; STOP file / signal -> stop."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {}
            self.cancelled = False
            self.bar = None

        def on_epoch_begin(self, epoch, logs=None):
            if progress:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=True)

        def on_train_batch_end(self, batch, logs=None):
            if self.bar is not None:
                self.bar.update(1)
                if batch % 20 == 0 and logs:
                    self.bar.set_postfix({k: f"{float(v):.4f}" for k, v in logs.items()}, refresh=False)
            if stop():
                self.cancelled = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            logs["learning_rate"] = float(schedule(self.model.optimizer.iterations))
            if self.bar is not None:
                self.bar.set_postfix({k: f"{float(v):.4g}" for k, v in logs.items()})
                self.bar.close()
                self.bar = None
            if self.cancelled:
                return  # an epoch cut short is not recorded
            for k, v in logs.items():
                self.history.setdefault(k, []).append(float(v))
            _write_history(run_dir / "history.csv", self.history)
            _write_progress(run_dir, "running", epoch + 1, epochs, self.history)
            self.model.save(run_dir / "checkpoint.keras")

    return RunMonitor()


def _write_history(path: Path, history: dict[str, list[float]]) -> None:
    keys = sorted(history)
    n = max((len(v) for v in history.values()), default=0)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch"] + keys)
        for i in range(n):
            w.writerow([i + 1] + [history[k][i] if i < len(history[k]) else "" for k in keys])


def _write_progress(run_dir: Path, state: str, epoch: int, epochs: int, history: dict[str, list[float]]) -> None:
    tmp = run_dir / "progress.json.tmp"
    tmp.write_text(json.dumps({"state": state, "epoch": epoch, "epochs": epochs, "history": history}))
    tmp.replace(run_dir / "progress.json")


class _StopFlag:
    """STOP file in the run folder, or SIGINT/SIGTERM while training (main thread only)."""

    def __init__(self, run_dir: Path, handle_signals: bool):
        self.path = run_dir / STOP_FILE
        self.signalled = False
        self._old: dict[int, Any] = {}
        self._handle = handle_signals and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self._handle:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        log.warning("signal %d: stopping after this batch", signum)
        self.signalled = True

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def __call__(self) -> bool:
        return self.signalled or self.path.exists()


# ----------------------------------------------------------------------------------------
# A run
# ----------------------------------------------------------------------------------------
def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def train(
    workspace,
    model: str = "cnn",
    labels: str = "catalog",
    *,
    init: str | None = None,
    epochs: int | None = None,
    per_class: int | None = None,
    seed: int | None = None,
    run_id: str | None = None,
    activate: bool = True,
    embed: bool = False,
    progress: bool = False,
    handle_signals: bool = True,
    config: dict[str, Any] | None = None,
) -> RunInfo:
    """Train a model and record the run in ``runs/<run-id>/``.

    Parameters
    ----------
    workspace : Workspace or path
    model : {"cnn", "cvae"}
    labels : {"catalog", "consensus"}
    init : str, optional
        Fine-tune from this run's ``model.keras`` (same model kind and input size).
    epochs, per_class, seed : int, optional
        Override ``train.epochs``, ``train.per_class`` (else ``augment.per_class``) and
        ``train.seed``.
    run_id : str, optional
        Id of the new run (default ``<model>-<timestamp>``).
    activate : bool
        Make the run the active one of its model when it finishes (``done``).
    embed : bool
        Run :func:`core.latent.embed.embed_run` on the finished run.
    progress : bool
        Show a tqdm progress bar per epoch.
    handle_signals : bool
        Turn SIGINT/SIGTERM into a clean cancel while training (main thread only).
    config : dict, optional
        Overrides merged into the workspace configuration for this run.

    Returns
    -------
    RunInfo
        The run's record; ``status`` is ``done`` or ``cancelled``.

    Raises
    ------
    ConfigError
        ``config`` has an unknown key or a wrong value (no run is created).
    TrainingError
        The run failed (its ``run.json`` has status ``failed`` and the error).
    """
    from core.workspace.config import merge, validate

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    if model not in ("cnn", "cvae"):
        raise ValueError(f"model must be 'cnn' or 'cvae', not {model!r}")
    if labels not in LABEL_SOURCES:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, not {labels!r}")
    validate(config or {}, "the training configuration")  # a typo fails before the run folder exists
    cfg = merge(ws.config, config or {})
    tc = cfg.setdefault("train", {})
    if epochs is not None:
        tc["epochs"] = int(epochs)
    if per_class is not None:
        tc["per_class"] = int(per_class)
    if seed is not None:
        tc["seed"] = int(seed)
    if tc.get("per_class") is None:
        tc["per_class"] = int(cfg.get("augment", {}).get("per_class", 5000))
    if init is not None:
        init_info = read_run(ws, init)  # WorkspaceError if absent
        if init_info.model != model:
            raise RunError(f"--init {init} is a {init_info.model} run; cannot fine-tune a {model} from it")
        if not (init_info.path / "model.keras").exists():
            raise RunError(f"--init {init}: {init_info.path / 'model.keras'} is missing (status {init_info.status})")

    ws.runs_dir.mkdir(exist_ok=True)
    rid = new_run_id(ws, model, run_id)
    run_dir = ws.runs_dir / rid
    run_dir.mkdir(parents=True)
    write_config(cfg, run_dir / "config.toml")
    record: dict[str, Any] = {
        "id": rid, "model": model, "labels": labels, "status": "running", "created": _now(),
        "finished": None, "error": None, "init": init, "epochs": int(tc["epochs"]),
        "accuracy": None, "recon_mse": None,
    }
    write_run_json(run_dir, record)
    _write_progress(run_dir, "starting", 0, int(tc["epochs"]), {})
    try:
        with _StopFlag(run_dir, handle_signals) as stop:
            result = _train_in(ws, run_dir, cfg, model, labels, init, stop, progress)
        record.update(result)
    except Cancelled:
        record.update(status="cancelled", finished=_now())
        write_run_json(run_dir, record)
        _write_progress(run_dir, "cancelled", _last_epoch(run_dir), int(tc["epochs"]), _read_history(run_dir))
        log.warning("run %s cancelled", rid)
        return read_run(ws, rid)
    except Exception as exc:
        record.update(status="failed", finished=_now(), error=f"{type(exc).__name__}: {exc}")
        write_run_json(run_dir, record)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        _write_progress(run_dir, "failed", _last_epoch(run_dir), int(tc["epochs"]), _read_history(run_dir))
        raise TrainingError(f"run {rid} failed: {exc}") from exc

    record.update(status="done", finished=_now())
    write_run_json(run_dir, record)
    _write_progress(run_dir, "done", int(tc["epochs"]), int(tc["epochs"]), _read_history(run_dir))
    (run_dir / "checkpoint.keras").unlink(missing_ok=True)
    if activate:
        ws.set_active_run(model, rid)
    if embed:
        from core.latent.embed import embed_run

        embed_run(ws, rid)
    return read_run(ws, rid)


def _read_history(run_dir: Path) -> dict[str, list[float]]:
    path = run_dir / "history.csv"
    if not path.exists():
        return {}
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    keys = [k for k in (rows[0].keys() if rows else []) if k != "epoch"]
    return {k: [float(r[k]) for r in rows if r[k] != ""] for k in keys}


def _last_epoch(run_dir: Path) -> int:
    h = _read_history(run_dir)
    return max((len(v) for v in h.values()), default=0)


def _train_in(ws: Workspace, run_dir: Path, cfg: dict[str, Any], kind: str, labels: str,
              init: str | None, stop: _StopFlag, progress: bool) -> dict[str, Any]:
    import tensorflow as tf

    from core.learn.augment import augment_dataset
    from core.learn.models import build_model, model_params

    tc = cfg["train"]
    seed = int(tc.get("seed", 42))
    keras.utils.set_random_seed(seed)
    if tc.get("deterministic"):
        tf.config.experimental.enable_op_determinism()

    data = load_training_data(ws, labels, cfg)
    _write_labels(run_dir, data)
    size = data.images.shape[1]
    params = model_params(cfg)
    if params["input_size"] != size:
        raise TrainingError(f"stamps are {size} px but models.input_size is {params['input_size']}")

    x_train, y_train = data.part("train")
    ac = cfg.get("augment", {})
    batch = int(tc.get("batch_size", 32))
    per_class = int(tc["per_class"])
    ds = augment_dataset(x_train, y_train, per_class=per_class, batch_size=batch, seed=seed,
                         rotation_step_deg=ac.get("rotation_step_deg", 45), flip=ac.get("flip", True))
    n_present = len(set(y_train.tolist()))
    steps = math.ceil(per_class * n_present / batch)
    # One iterator for the whole run: re-creating the pipeline's iterator every epoch costs
    # seconds (its plan and captured stamps); each repetition still draws new images and
    # transforms (tf.data.Dataset.random re-randomises every iteration).
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps)).repeat()
    epochs = int(tc["epochs"])
    schedule = make_schedule(float(tc.get("learning_rate", 1e-4)), steps * epochs,
                             float(tc.get("lr_drop_every", 1 / 3)), float(tc.get("lr_factor", 0.5)))

    with distribution_strategy().scope():
        if init:
            net = keras.models.load_model(ws.run_dir(init) / "model.keras", compile=False)
            shape = tuple(net.inputs[0].shape[1:3]) if kind == "cnn" else tuple(net.encoder.inputs[0].shape[1:3])
            if shape != (size, size):
                raise TrainingError(f"--init {init} expects {shape} stamps, the workspace has {size} x {size}")
        else:
            net = build_model(kind, cfg)
        if kind == "cvae":  # KL warm-up over the first models.kl_warmup of the steps; none when fine-tuning
            net.kl_warmup_steps = 0 if init else int(round(float(params.get("kl_warmup") or 0.0) * steps * epochs))
        optimizer = keras.optimizers.Adam(learning_rate=schedule)
        if kind == "cnn":
            net.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
        else:
            net.compile(optimizer=optimizer)

    monitor = _callbacks(run_dir, epochs, steps, schedule, stop, progress)
    t0 = time.perf_counter()
    net.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[monitor], shuffle=False)
    train_s = time.perf_counter() - t0
    if monitor.cancelled or stop():
        raise Cancelled()

    net.save(run_dir / "model.keras")
    x_test, y_test = data.part("test")
    with quiet_tensorflow():
        result = _evaluate(net, kind, run_dir, x_test, y_test, seed, monitor.history)
    result.update(train_seconds=round(train_s, 1),
                  images_per_second=round(steps * batch * epochs / max(train_s, 1e-9), 1))
    return result


def _evaluate(net, kind: str, run_dir: Path, x_test: np.ndarray, y_test: np.ndarray, seed: int,
              history: dict[str, list[float]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if kind == "cnn":
        ev = evaluate_cnn(net, x_test, y_test)
        ev["train_accuracy_last_epoch"] = history.get("accuracy", [None])[-1]
        plot_confusion(np.array(ev["confusion"]), run_dir / "confusion.png",
                       f"{run_dir.name}: test accuracy {ev['accuracy']:.1%}" if ev["accuracy"] is not None else run_dir.name)
        result["accuracy"] = ev["accuracy"]
    else:
        ev, rec = evaluate_cvae(net, x_test)
        if len(x_test):
            plot_reconstructions(x_test, rec, run_dir / "reconstructions.png", seed=seed)
        result["recon_mse"] = ev["recon_mse"]
    ev["split"] = "test"
    (run_dir / "evaluation.json").write_text(json.dumps(ev, indent=2))
    return result


def _write_labels(run_dir: Path, data: TrainingData) -> None:
    (run_dir / "labels.json").write_text(json.dumps(data.provenance, indent=2))
    with open(run_dir / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label", "split"])
        w.writerows(zip(data.ids, data.labels, data.split))


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------
