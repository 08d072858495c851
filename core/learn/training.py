"""Training runs of the CNN and the CvAE (paper §4), each in its own folder ``runs/<run-id>/``.

The schedule is the paper's: Adam with an initial learning rate of 1e-4, halved every third of
the total steps (:class:`core.learn.schedule.StepHalving`), batches of 32, up to 100 epochs of ``per_class`` x 5
class-balanced, freshly augmented images (:func:`core.learn.augment.augment_dataset`: random flips and
45° rotations; paper: 5,000 per class). Every value comes from the config sections ``train``,
``augment``, ``split``, ``scaling`` and ``models`` and is recorded in the run's ``config.toml``.

Labels (``labels=``, ``"catalog"`` or ``"consensus"``), the galaxies used and the train/test
split are :mod:`core.learn.data`'s: a retrain on consensus labels is tested on the same held-out
galaxies as the catalog run.

Early stopping (``train.early_stopping``, on by default since schema 4): the paper trains "a
maximum of" 100 epochs. ``train.validation_fraction`` (10 %) of each class's *training* galaxies
is held out as a validation split (:meth:`core.learn.data.TrainingData.carve_validation`; the
test split is never looked at before the final evaluation); the unaugmented validation stamps
are scored after every epoch (``val_loss``: cross-entropy for the CNN, MSE + KL at the full KL
weight for the CvAE) and Keras' ``EarlyStopping`` ends training when ``val_loss`` has not
decreased by more than ``train.min_delta`` for ``train.patience`` epochs; with
``train.restore_best`` the run ends with the weights of its best epoch. The CvAE's early
stopping starts only after the KL warm-up (``models.kl_warmup`` of the planned epochs): before it
the KL weight trained with is smaller than the one ``val_loss`` uses. ``run.json`` records why
the run ended (``stopped``: ``"early at epoch 23 of 100, best val_loss 0.4123 at epoch 13"``),
``epochs_run``, ``best_epoch`` and ``best_val_loss``.

**The learning rate keeps its meaning**: it is halved every third of the *planned* steps
(``train.epochs`` x steps per epoch), whether or not the run stops early. A run stopped at epoch
23 of 100 has trained at 1e-4 throughout; the halvings at epochs 34 and 67 are where they would
have been. The schedule is a function of the optimizer's step count only, so a resumed run
continues it exactly.

A schedule sized to the labels (``size_to_labels=True``, :func:`retrain`, ``resx train
--size-to-labels``): an epoch of ``train.per_class`` = ``ceil(train.images_per_label x
n_fit / n_classes)`` images per class (at least ``train.min_per_class``, at most the paper's
``augment.per_class``), ``n_fit`` the galaxies trained on, with early stopping. A fine-tune on
1,000 consensus labels then takes ~63 steps per epoch instead of the paper's 782
(:func:`sized_per_class`).

Seeding: ``train.seed`` (or ``seed=``) seeds Python, numpy and TensorFlow
(``keras.utils.set_random_seed``: weights, noise, dropout, sampling), the validation split and
the augmentation draws, so the same seed on the same machine gives the same run up to
TensorFlow's floating-point non-associativity across threads (``train.deterministic = true``
enables TensorFlow's op determinism for bit-identical runs, slower). Epoch ``e``'s augmented
images are a function of ``(seed, e)`` only.

Resuming: at the end of every complete epoch :class:`EpochCheckpoint` saves what a resumed run
needs (weights and the layers' random-generator states, the optimizer with its step count, the
epoch, the early-stopping state and best weights) with ``tf.train.CheckpointManager`` in
``checkpoint/``; ``trainer.json`` names the training process. A run whose trainer died (kill -9,
power loss) is listed as ``interrupted`` (:func:`core.learn.runs.read_run`) and never becomes
active; :func:`resume` (``resx train WORKSPACE --resume RUN``) continues it from its last
complete epoch and ends as if it had not stopped: the same steps, one continuous history, and,
with ``train.deterministic``, the same weights (``tests/learn/test_resume.py``). Without op
determinism the arithmetic of a resumed run differs from an uninterrupted one only as two
uninterrupted runs differ from each other (thread scheduling, oneDNN).

Cancelling: SIGINT/SIGTERM, or a file named ``STOP`` in the run folder, stops training at the
end of the current batch; the run's status becomes ``cancelled``, its last complete epoch stays
in ``checkpoint.keras`` (and ``checkpoint/``, so it can be resumed), and it never becomes the
active run. A failed run (status ``failed``, ``error`` says why) does not either. More than one GPU: a ``tf.distribute.MirroredStrategy``
(global batch 32 split over the devices); otherwise TensorFlow's default strategy.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import keras  # noqa: E402
import numpy as np

from core.learn.backend import (
    configure_devices,
    describe_device,
    distribution_strategy,
    precision_policy,
    quiet_tensorflow,
)
from core.learn.data import LABEL_SOURCES, TrainingData, TrainingError, load_training_data
from core.learn.evaluate import (
    evaluate_cnn,
    evaluate_cvae,
    plot_confusion,
    plot_reconstructions,
    reconstruction_warning,
)
from core.learn.runs import RunError, RunInfo, clear_trainer, new_run_id, read_run, write_run_json, write_trainer
from core.learn.schedule import make_schedule
from core.workspace.config import write_config
from core.workspace.workspace import Workspace

log = logging.getLogger(__name__)

STOP_FILE = "STOP"


class Cancelled(Exception):
    """Raised internally when a run is cancelled."""


# ----------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------
class RunEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' ``EarlyStopping`` on ``val_loss`` that can start from a saved state (a resumed run).

    ``state`` (from :meth:`get_state`) restores ``best``, ``wait`` and ``best_epoch`` after
    ``on_train_begin`` (which resets them); ``best_weights`` is set by the caller.
    """

    def __init__(self, *, patience: int, min_delta: float, restore_best: bool, start_from_epoch: int = 0,
                 state: dict[str, Any] | None = None):
        super().__init__(monitor="val_loss", mode="min", patience=int(patience), min_delta=float(min_delta),
                         restore_best_weights=bool(restore_best), start_from_epoch=int(start_from_epoch))
        self._initial_state = state
        self._initial_best_weights = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._initial_state:
            st = self._initial_state
            self.best = st.get("best")
            self.wait = int(st.get("wait", 0))
            self.best_epoch = int(st.get("best_epoch", 0))
            self.best_weights = self._initial_best_weights

    def get_state(self) -> dict[str, Any]:
        """``best`` (val_loss), ``wait`` and ``best_epoch`` (0-based), JSON-ready."""
        best = None if self.best is None else float(self.best)
        return {"best": best, "wait": int(self.wait), "best_epoch": int(self.best_epoch),
                "stopped_epoch": int(self.stopped_epoch)}


class EpochCheckpoint(keras.callbacks.Callback):
    """The state a resumed run needs, saved with TensorFlow's ``tf.train.CheckpointManager`` in
    ``checkpoint/`` at the end of every complete epoch.

    Saved: every variable of the model (weights, and the seed-generator states of the noise,
    dropout and sampling layers), the optimizer's (step count -- hence the learning-rate
    schedule's position and the CvAE's KL warm-up --, Adam's moments), the number of complete
    epochs, and the early-stopping state with the best epoch's weights. The manager writes the
    files of a checkpoint before it updates its index (``checkpoint/checkpoint``), so a kill
    during a save leaves the previous epoch's checkpoint in force. The augmentation's draws need
    no state: epoch ``e``'s are a function of ``(train.seed, e)``.
    """

    DIR = "checkpoint"

    def __init__(self, run_dir: Path, net: keras.Model, es: RunEarlyStopping | None,
                 cancelled: Callable[[], bool]):
        super().__init__()
        import tensorflow as tf

        if not net.optimizer.built:
            net.optimizer.build(net.trainable_variables)
        self.es = es
        self.cancelled = cancelled
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.es_best = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        self.es_wait = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.es_best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.es_stopped = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.has_best = tf.Variable(False, trainable=False)
        self.best = [tf.Variable(np.zeros(w.shape, w.dtype), trainable=False) for w in net.get_weights()]
        self.ckpt = tf.train.Checkpoint(variables=list(net.variables), optimizer=list(net.optimizer.variables),
                                        epoch=self.epoch, es_best=self.es_best, es_wait=self.es_wait,
                                        es_best_epoch=self.es_best_epoch, es_stopped=self.es_stopped,
                                        has_best=self.has_best, best=self.best)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(run_dir / self.DIR), max_to_keep=2)

    def restore(self) -> dict[str, Any] | None:
        """Load the last checkpoint into the model and optimizer; ``None`` if there is none, else
        ``{"epoch", "early_stopping": state, "best_weights": list or None}``."""
        path = self.manager.latest_checkpoint
        if path is None:
            return None
        self.ckpt.restore(path).assert_existing_objects_matched()
        best = float(self.es_best.numpy())
        return {"epoch": int(self.epoch.numpy()),
                "early_stopping": {"best": None if not np.isfinite(best) else best, "wait": int(self.es_wait.numpy()),
                                   "best_epoch": int(self.es_best_epoch.numpy()),
                                   "stopped_epoch": int(self.es_stopped.numpy())},
                "best_weights": [v.numpy() for v in self.best] if bool(self.has_best.numpy()) else None}

    def on_epoch_end(self, epoch, logs=None):
        if self.cancelled():
            return  # an epoch cut short is not a checkpoint
        self.epoch.assign(epoch + 1)
        if self.es is not None:
            st = self.es.get_state()
            self.es_best.assign(np.inf if st["best"] is None else st["best"])
            self.es_wait.assign(st["wait"])
            self.es_best_epoch.assign(st["best_epoch"])
            self.es_stopped.assign(st["stopped_epoch"])
            if self.es.best_weights is not None and st["best_epoch"] == epoch:  # a new best: keep its weights
                for v, w in zip(self.best, self.es.best_weights):
                    v.assign(w)
                self.has_best.assign(True)
        self.manager.save(checkpoint_number=epoch + 1)


def _callbacks(run_dir: Path, epochs: int, steps: int, schedule, stop: Callable[[], bool], progress: bool,
               history: dict[str, list[float]] | None = None):

    class RunMonitor(keras.callbacks.Callback):
        """history.csv, progress.json, checkpoint.keras every epoch; STOP file / signal -> stop."""

        def __init__(self):
            super().__init__()
            self.history: dict[str, list[float]] = {k: list(v) for k, v in (history or {}).items()}
            self.cancelled = False
            self.bar = None
            self.t_epoch = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.t_epoch = time.perf_counter()
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
            logs["seconds"] = time.perf_counter() - self.t_epoch
            for k, v in logs.items():
                self.history.setdefault(k, []).append(float(v))
            _write_history(run_dir / "history.csv", self.history)
            _write_progress(run_dir, "running", epoch + 1, epochs, self.history)
            self.model.save(run_dir / "checkpoint.keras")

    return RunMonitor()


def _write_history(path: Path, history: dict[str, list[float]]) -> None:
    keys = sorted(history)
    n = max((len(v) for v in history.values()), default=0)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch"] + keys)
        for i in range(n):
            w.writerow([i + 1] + [history[k][i] if i < len(history[k]) else "" for k in keys])
    os.replace(tmp, path)  # a reader (or a kill) never sees half a file


def _write_progress(run_dir: Path, state: str, epoch: int, epochs: int, history: dict[str, list[float]],
                    **extra: Any) -> None:
    """``progress.json``: state, epoch / epochs, the history, and ``elapsed_s`` / ``eta_s`` (the
    time the remaining planned epochs would take at the mean epoch time so far; an upper bound
    with early stopping)."""
    secs = history.get("seconds", [])
    elapsed = float(sum(secs))
    eta = (elapsed / len(secs)) * max(epochs - epoch, 0) if secs and state == "running" else 0.0
    tmp = run_dir / "progress.json.tmp"
    tmp.write_text(json.dumps({"state": state, "epoch": epoch, "epochs": epochs, "history": history,
                               "elapsed_s": round(elapsed, 1), "eta_s": round(eta, 1), **extra}))
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


def sized_per_class(n_labels: int, n_classes: int = 5, config: dict[str, Any] | None = None) -> int:
    """Images per class per epoch of a schedule sized to ``n_labels`` labelled training galaxies.

    ``ceil(train.images_per_label x n_labels / n_classes)``, at least ``train.min_per_class``
    and at most ``augment.per_class`` (the paper's 5,000).

    Parameters
    ----------
    n_labels : int
        Galaxies the run fits on (the training split less the validation split).
    n_classes : int
        Classes present among them.
    config : dict, optional
        The configuration (default :data:`core.workspace.config.DEFAULT_CONFIG`).

    Returns
    -------
    int

    Examples
    --------
    >>> sized_per_class(1000, 5)
    400
    """
    from core.workspace.config import DEFAULT_CONFIG

    cfg = config or DEFAULT_CONFIG
    tc, ac = cfg.get("train", {}), cfg.get("augment", {})
    per = math.ceil(float(tc.get("images_per_label", 2.0)) * int(n_labels) / max(int(n_classes), 1))
    return int(min(max(per, int(tc.get("min_per_class", 32))), int(ac.get("per_class", 5000))))


def retrain(
    workspace,
    model: str = "cnn",
    labels: str = "consensus",
    *,
    init: str | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    **kwargs: Any,
) -> RunInfo:
    """Train or fine-tune with early stopping and an epoch sized to the number of labels.

    The engine's entry point for the dashboard's retrain (and ``resx train --size-to-labels``):
    :func:`train` with ``size_to_labels=True`` (see :func:`sized_per_class`) and
    ``train.early_stopping`` on, whatever the workspace's configuration says.

    Parameters
    ----------
    workspace : Workspace or path
    model : {"cnn", "cvae"}
    labels : {"catalog", "consensus"}
    init : str, optional
        Fine-tune from this run (e.g. the active one); ``None`` trains from scratch.
    max_epochs : int, optional
        The most epochs (default ``train.epochs``); the learning-rate halvings are at thirds of
        these planned epochs' steps.
    patience : int, optional
        Override ``train.patience``.
    **kwargs
        Passed to :func:`train` (``run_id``, ``activate``, ``embed``, ``seed``, ``progress``,
        ``config``, ...).

    Returns
    -------
    RunInfo
        As :func:`train`; ``stopped`` says when and why training ended.
    """
    overrides: dict[str, Any] = {"train": {"early_stopping": True}}
    if patience is not None:
        overrides["train"]["patience"] = int(patience)
    from core.workspace.config import merge

    config = merge(kwargs.pop("config", None) or {}, overrides)
    return train(workspace, model, labels, init=init, epochs=max_epochs, size_to_labels=True, config=config,
                 **kwargs)


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
    size_to_labels: bool = False,
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
        Override ``train.epochs`` (the most epochs), ``train.per_class`` (else
        ``augment.per_class``) and ``train.seed``.
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
    size_to_labels : bool
        Size the epoch to the labelled galaxies (:func:`sized_per_class`) instead of
        ``train.per_class`` (``per_class`` is then not allowed).

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
    if size_to_labels and per_class is not None:
        raise TrainingError("per_class and size_to_labels exclude each other: a sized schedule sets per_class")
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
        "accuracy": None, "recon_mse": None, "size_to_labels": bool(size_to_labels),
    }
    write_trainer(run_dir)  # before the run says "running": a dead trainer is always noticed
    write_run_json(run_dir, record)
    _write_progress(run_dir, "starting", 0, int(tc["epochs"]), {})
    return _run(ws, run_dir, cfg, record, handle_signals, progress, activate, embed)


def resume(workspace, run_id: str, *, activate: bool = True, embed: bool = False, progress: bool = False,
           handle_signals: bool = True) -> RunInfo:
    """Continue an interrupted (or cancelled) run from its last complete epoch.

    The run keeps its id, folder, configuration, labels and split; training restarts from the
    checkpoint of its last complete epoch (:class:`EpochCheckpoint`) and finishes as if it had
    not stopped: the same planned epochs and steps, the learning-rate schedule and KL warm-up
    where they were, the same augmented epochs, the early-stopping state, and one continuous
    ``history.csv``. ``run.json`` lists each resumption in ``resumed``.

    Parameters
    ----------
    workspace : Workspace or path
    run_id : str
        A run whose status is ``interrupted``, ``cancelled`` or ``failed`` and that has a
        checkpoint.
    activate, embed, progress, handle_signals : bool
        As for :func:`train`.

    Returns
    -------
    RunInfo

    Raises
    ------
    RunError
        The run is done, still training, or has no checkpoint to resume from.
    """
    from core.workspace.config import read_config

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    info = read_run(ws, run_id)
    if info.status == "done":
        raise RunError(f"run {run_id} is done: nothing to resume")
    if info.status == "running":
        raise RunError(f"run {run_id} is still training (pid in {info.path / 'trainer.json'}); "
                       "stop it first (a STOP file) or wait")
    if info.status not in ("interrupted", "cancelled", "failed"):
        raise RunError(f"run {run_id} is {info.status}: cannot be resumed")
    run_dir = info.path
    if not (run_dir / EpochCheckpoint.DIR / "checkpoint").exists():
        raise RunError(f"run {run_id} has no checkpoint to resume from (it stopped before its first complete "
                       f"epoch): train it again")
    cfg = read_config(run_dir / "config.toml")
    record = json.loads((run_dir / "run.json").read_text())
    record.update(status="running", finished=None, error=None)
    record.setdefault("resumed", []).append(_now())
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    write_trainer(run_dir)
    write_run_json(run_dir, record)
    log.info("resuming run %s", run_id)
    return _run(ws, run_dir, cfg, record, handle_signals, progress, activate, embed, resuming=True)


def _run(ws: Workspace, run_dir: Path, cfg: dict[str, Any], record: dict[str, Any], handle_signals: bool,
         progress: bool, activate: bool, embed: bool, resuming: bool = False) -> RunInfo:
    """Train in ``run_dir`` and record the outcome in ``run.json`` (shared by new and resumed runs)."""
    rid, model, epochs = record["id"], record["model"], int(cfg["train"]["epochs"])
    try:
        configure_devices()
        mixed = bool(cfg["train"].get("mixed_precision", False))
        with _StopFlag(run_dir, handle_signals) as stop, precision_policy(mixed) as policy:
            log.info("run %s trains on %s (dtype policy %s)", rid, describe_device(mixed), policy)
            if progress:  # beside the progress bars (stderr), before the first epoch
                from tqdm.auto import tqdm

                tqdm.write(f"run {rid}: device {describe_device(mixed)}", file=sys.stderr)
            result = _train_in(ws, run_dir, cfg, model, record["labels"], record.get("init"), stop, progress,
                               bool(record.get("size_to_labels")), resuming)
        result.update(device=describe_device(mixed), dtype_policy=policy)
        record.update(result)
    except Cancelled:
        record.update(status="cancelled", finished=_now())
        write_run_json(run_dir, record)
        clear_trainer(run_dir)
        _write_progress(run_dir, "cancelled", _last_epoch(run_dir), epochs, _read_history(run_dir))
        log.warning("run %s cancelled", rid)
        return read_run(ws, rid)
    except Exception as exc:
        record.update(status="failed", finished=_now(), error=f"{type(exc).__name__}: {exc}")
        write_run_json(run_dir, record)
        clear_trainer(run_dir)
        (run_dir / "error.txt").write_text(traceback.format_exc())
        _write_progress(run_dir, "failed", _last_epoch(run_dir), epochs, _read_history(run_dir))
        raise TrainingError(f"run {rid} failed: {exc}") from exc

    record.update(status="done", finished=_now())
    write_run_json(run_dir, record)
    clear_trainer(run_dir)
    shutil.rmtree(run_dir / EpochCheckpoint.DIR, ignore_errors=True)
    _write_progress(run_dir, "done", int(record.get("epochs_run") or epochs), epochs, _read_history(run_dir),
                    stopped=record.get("stopped"))
    (run_dir / "checkpoint.keras").unlink(missing_ok=True)
    if activate:
        ws.set_active_run(model, rid)
    if embed:
        _embed_then_score(ws, run_dir, rid, int(record.get("epochs_run") or epochs), epochs, record.get("stopped"))
    return read_run(ws, rid)


def _embed_then_score(ws: Workspace, run_dir: Path, rid: str, epoch: int, epochs: int, stopped: Any) -> None:
    """The refreshed map first, the acquisition scores after it: ``progress.json``'s ``phase`` goes
    ``embedding`` -> ``scoring`` (the map is ready: ``embedding.npz`` written; the queue's scores
    pending) -> ``ready``, with ``map_s`` and ``scores_s`` (seconds from the end of training)."""
    from core.latent.embed import embed_run, score_run

    history = _read_history(run_dir)
    t0 = time.perf_counter()
    _write_progress(run_dir, "done", epoch, epochs, history, stopped=stopped, phase="embedding")
    embed_run(ws, rid, acquisition=False)
    map_s = round(time.perf_counter() - t0, 1)
    _write_progress(run_dir, "done", epoch, epochs, history, stopped=stopped, phase="scoring", map_s=map_s)
    ok = score_run(ws, rid)
    _write_progress(run_dir, "done", epoch, epochs, history, stopped=stopped, phase="ready" if ok else "scores failed",
                    map_s=map_s, scores_s=round(time.perf_counter() - t0, 1))


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


def _stop_reason(es: RunEarlyStopping | None, epochs_run: int, epochs: int) -> dict[str, Any]:
    """``stopped`` (in words), ``epochs_run``, ``best_epoch`` and ``best_val_loss`` of a finished fit."""
    out: dict[str, Any] = {"epochs_run": int(epochs_run), "best_epoch": None, "best_val_loss": None}
    if es is None:
        out["stopped"] = f"completed {epochs_run} of {epochs} epochs (no early stopping)"
        return out
    if es.best is not None:
        out.update(best_epoch=int(es.best_epoch) + 1, best_val_loss=float(es.best))
        best = f"best val_loss {float(es.best):.5g} at epoch {int(es.best_epoch) + 1}"
    else:
        best = "no val_loss watched yet"
    if es.stopped_epoch > 0:
        out["stopped"] = (f"early at epoch {epochs_run} of {epochs}, {best} (patience {es.patience}, "
                          f"min_delta {abs(es.min_delta):g})")
    else:
        out["stopped"] = f"completed {epochs_run} of {epochs} epochs, {best}"
    if es.restore_best_weights and es.best_weights is not None:
        out["stopped"] += "; best weights restored"
    return out


def _validation_dataset(x: np.ndarray, y: np.ndarray, batch: int = 256):
    """The unaugmented validation stamps as a ``tf.data.Dataset`` of ``(x, one-hot y)`` batches."""
    import tensorflow as tf

    from core.labels import CLASSES

    onehot = np.eye(len(CLASSES), dtype=np.float32)[[CLASSES.index(c) for c in y]]
    return tf.data.Dataset.from_tensor_slices((x[..., None].astype(np.float32), onehot)).batch(batch)


def _train_in(ws: Workspace, run_dir: Path, cfg: dict[str, Any], kind: str, labels: str,
              init: str | None, stop: _StopFlag, progress: bool, size_to_labels: bool = False,
              resuming: bool = False) -> dict[str, Any]:
    import tensorflow as tf

    from core.learn.augment import augment_dataset
    from core.learn.models import build_model, model_params

    tc = cfg["train"]
    seed = int(tc.get("seed", 42))
    keras.utils.set_random_seed(seed)
    if tc.get("deterministic"):
        tf.config.experimental.enable_op_determinism()

    data = load_training_data(ws, labels, cfg)
    early = bool(tc.get("early_stopping", False))
    if early and data.carve_validation(float(tc.get("validation_fraction", 0.1)), seed) == 0:
        log.warning("too few training galaxies to hold out a validation split: no early stopping")
        early = False
    _write_labels(run_dir, data)
    size = data.images.shape[1]
    params = model_params(cfg)
    if params["input_size"] != size:
        raise TrainingError(f"stamps are {size} px but models.input_size is {params['input_size']}")

    x_fit, y_fit = data.part("fit")
    n_present = len(set(y_fit.tolist()))
    if size_to_labels and not resuming:  # a resumed run's config.toml has the per_class it used
        tc["per_class"] = sized_per_class(len(y_fit), n_present, cfg)
        write_config(cfg, run_dir / "config.toml")  # the run records the per_class it used
        log.info("schedule sized to %d labelled galaxies: %d images per class per epoch", len(y_fit),
                 tc["per_class"])
    ac = cfg.get("augment", {})
    batch = int(tc.get("batch_size", 32))
    per_class = int(tc["per_class"])
    epochs = int(tc["epochs"])
    steps = math.ceil(per_class * n_present / batch)
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
        warmup_steps = 0
        if kind == "cvae":  # KL warm-up over the first models.kl_warmup of the steps; none when fine-tuning
            warmup_steps = 0 if init else int(round(float(params.get("kl_warmup") or 0.0) * steps * epochs))
            net.kl_warmup_steps = warmup_steps
        optimizer = keras.optimizers.Adam(learning_rate=schedule)
        if kind == "cnn":
            net.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
        else:
            net.compile(optimizer=optimizer)

    es = None
    val_ds = None
    if early:
        val_ds = _validation_dataset(*data.part("validation"))
        es = RunEarlyStopping(patience=int(tc.get("patience", 10)), min_delta=float(tc.get("min_delta", 0.0)),
                              restore_best=bool(tc.get("restore_best", True)),
                              start_from_epoch=math.ceil(warmup_steps / steps) if warmup_steps else 0)
    holder: dict[str, Any] = {}
    # an epoch the monitor recorded (not cut short) is checkpointed, even if STOP came after its last batch
    ckpt = EpochCheckpoint(run_dir, net, es, cancelled=lambda: holder["monitor"].cancelled)
    initial_epoch, history, finished = 0, None, False
    if resuming:
        state = ckpt.restore()
        if state is None:
            raise RunError(f"run {run_dir.name}: no checkpoint in {run_dir / EpochCheckpoint.DIR}")
        initial_epoch = state["epoch"]
        history = {k: v[:initial_epoch] for k, v in _read_history(run_dir).items()}  # epochs after it rerun
        if es is not None:
            es._initial_state = state["early_stopping"]
            es._initial_best_weights = state["best_weights"]
        finished = initial_epoch >= epochs or state["early_stopping"]["stopped_epoch"] > 0
        log.info("run %s resumes after epoch %d of %d", run_dir.name, initial_epoch, epochs)
    monitor = _callbacks(run_dir, epochs, steps, schedule, stop, progress, history)
    holder["monitor"] = monitor
    # the monitor records an epoch before early stopping may end the fit; the checkpoint comes last
    callbacks: list[keras.callbacks.Callback] = [monitor] + ([es] if es is not None else []) + [ckpt]
    # Epoch e's draws depend on (seed, e) only: one endless iterator for the whole run (re-creating
    # the pipeline's iterator every epoch costs seconds), and a resumed run starts at its epoch.
    ds = augment_dataset(x_fit, y_fit, per_class=per_class, batch_size=batch, seed=seed,
                         rotation_step_deg=ac.get("rotation_step_deg", 45), flip=ac.get("flip", True),
                         start_epoch=initial_epoch)
    t0 = time.perf_counter()
    if not finished:
        net.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=callbacks, shuffle=False,
                validation_data=val_ds, initial_epoch=initial_epoch)
    elif es is not None:  # it had stopped and was killed before the end: what fit's end would have done
        st = es._initial_state
        es.best, es.best_epoch = st["best"], st["best_epoch"]
        es.wait, es.stopped_epoch = st["wait"], st["stopped_epoch"]
        es.best_weights = es._initial_best_weights
        if es.restore_best_weights and es.best_weights is not None:
            net.set_weights(es.best_weights)
    train_s = time.perf_counter() - t0
    if monitor.cancelled or stop():
        raise Cancelled()
    epochs_run = max((len(v) for v in monitor.history.values()), default=0)
    reason = _stop_reason(es, epochs_run, epochs)
    log.info("run %s: stopped %s", run_dir.name, reason["stopped"])

    net.save(run_dir / "model.keras")
    x_test, y_test = data.part("test")
    with quiet_tensorflow():
        result = _evaluate(net, kind, run_dir, x_test, y_test, seed, monitor.history, reason)
    result.update(reason)
    result.update(per_class=per_class, steps_per_epoch=steps, steps=int(net.optimizer.iterations.numpy()),
                  train_seconds=round(train_s, 1),
                  images_per_second=round(steps * batch * (epochs_run - initial_epoch) / max(train_s, 1e-9), 1),
                  train_seconds_total=round(sum(monitor.history.get("seconds", [])), 1))
    return result


def _evaluate(net, kind: str, run_dir: Path, x_test: np.ndarray, y_test: np.ndarray, seed: int,
              history: dict[str, list[float]], reason: dict[str, Any] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if kind == "cnn":
        ev = evaluate_cnn(net, x_test, y_test)
        ev["train_accuracy_last_epoch"] = history.get("accuracy", [None])[-1]
        best = (reason or {}).get("best_epoch")
        if best and len(history.get("accuracy", [])) >= best:
            ev["train_accuracy_best_epoch"] = history["accuracy"][best - 1]
            ev["val_accuracy_best_epoch"] = history.get("val_accuracy", [None] * best)[best - 1]
        plot_confusion(np.array(ev["confusion"]), run_dir / "confusion.png",
                       f"{run_dir.name}: test accuracy {ev['accuracy']:.1%}" if ev["accuracy"] is not None else run_dir.name)
        result["accuracy"] = ev["accuracy"]
    else:
        ev, rec = evaluate_cvae(net, x_test)
        if len(x_test):
            plot_reconstructions(x_test, rec, run_dir / "reconstructions.png", seed=seed)
        result["recon_mse"] = ev["recon_mse"]
        result["recon_mse_ratio"] = ev["recon_mse_ratio"]
        warning = reconstruction_warning(ev["recon_mse_ratio"])
        if warning:
            log.warning("run %s: %s", run_dir.name, warning)
            result["warning"] = warning
    ev["split"] = "test"
    ev.update({k: v for k, v in (reason or {}).items()})
    (run_dir / "evaluation.json").write_text(json.dumps(ev, indent=2))
    return result


def _write_labels(run_dir: Path, data: TrainingData) -> None:
    (run_dir / "labels.json").write_text(json.dumps(data.provenance, indent=2))
    role = data.role if data.role is not None else np.where(data.split == "train", "fit", data.split)
    with open(run_dir / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label", "split", "role"])
        w.writerows(zip(data.ids, data.labels, data.split, role))


# ----------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------
