"""Training runs of the CNN and the CvAE (paper §4), each in its own folder ``runs/<run-id>/``.

The schedule is the paper's: Adam with an initial learning rate of 1e-4, halved every third of
the total steps (:class:`StepHalving`), batches of 32, up to 100 epochs of ``per_class`` x 5
class-balanced, freshly augmented images (:func:`core.learn.augment.augment_dataset`: random flips and
45° rotations; paper: 5,000 per class). Every value comes from the config sections ``train``,
``augment``, ``split``, ``scaling`` and ``models`` and is recorded in the run's ``config.toml``.

Labels (``labels=``):

* ``"catalog"`` — the catalog's ``catalog_class`` column;
* ``"consensus"`` — the inspectors' consensus (:meth:`core.votes.store.VoteStore.consensus`);
  ``undecided``, ``Skip`` and ``FitQuality`` are never trained on (a FitQuality consensus
  also excludes the galaxy from the test set).

The train/test split is the catalog's ``split`` column (``resx prep`` stores it: 80/20,
stratified by catalog class, fit-quality excluded), so a retrain on consensus labels is tested
on the same held-out galaxies as the catalog run; a workspace without that column gets
:func:`core.learn.augment.split_sample` on the chosen labels. Only galaxies whose ``prep_status`` is
ok or flagged are used.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter

import keras  # noqa: E402
import numpy as np
from keras import ops

from core.errors import ResxError
from core.labels import CLASSES, FIT_QUALITY
from core.latent.analysis import quiet_tensorflow
from core.learn.runs import RunError, RunInfo, new_run_id, read_run, write_run_json
from core.workspace.config import write_config
from core.workspace.workspace import Workspace

log = logging.getLogger(__name__)

PREPPED = ("ok", "flagged")
STOP_FILE = "STOP"
LABEL_SOURCES = ("catalog", "consensus")


class TrainingError(ResxError, RuntimeError):
    """Training could not start or did not finish (the run folder records why)."""


class Cancelled(Exception):
    """Raised internally when a run is cancelled."""


# ----------------------------------------------------------------------------------------
# The learning-rate schedule
# ----------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="resx")
class StepHalving(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay: ``lr = initial * factor ** floor(step / interval)``, ``interval`` =
    ``drop_every * total_steps`` (rounded, at least 1)."""

    def __init__(self, initial_learning_rate: float, total_steps: int, drop_every: float = 1 / 3,
                 factor: float = 0.5):
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.drop_every = float(drop_every)
        self.factor = float(factor)
        self.interval = max(1, int(round(self.drop_every * self.total_steps)))

    def __call__(self, step):
        n = ops.floor(ops.cast(step, "float32") / float(self.interval))
        return self.initial_learning_rate * ops.power(self.factor, n)

    def get_config(self) -> dict[str, Any]:
        return {"initial_learning_rate": self.initial_learning_rate, "total_steps": self.total_steps,
                "drop_every": self.drop_every, "factor": self.factor}


def make_schedule(initial_learning_rate: float, total_steps: int, drop_every: float = 1 / 3,
                  factor: float = 0.5) -> StepHalving:
    """The paper's schedule: ``lr = initial * factor ** floor(step / (drop_every * total_steps))``.

    With the defaults the rate is 1e-4 for the first third of the steps, 5e-5 for the second
    and 2.5e-5 for the last.
    """
    return StepHalving(initial_learning_rate, total_steps, drop_every, factor)


# ----------------------------------------------------------------------------------------
# Labels and data
# ----------------------------------------------------------------------------------------
@dataclass
class TrainingData:
    """The galaxies a run trains and tests on.

    ``rows`` are catalog rows; ``labels`` the class names (:data:`core.labels.CLASSES`);
    ``split`` ``"train"`` or ``"test"``; ``images`` the scaled object-only stamps
    ``(n, S, S)`` float32 in [-1, 1]. ``provenance`` goes to ``labels.json``.
    """

    ids: np.ndarray
    rows: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    images: np.ndarray
    provenance: dict[str, Any]

    def part(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        m = self.split == which
        return self.images[m], self.labels[m]


def _column(cat, name: str, default) -> np.ndarray:
    if name in cat.colnames:
        return np.asarray(cat[name])
    return np.full(len(cat), default)


def training_labels(ws: Workspace, source: str = "catalog") -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Per catalog row: the training label ("" when none), an exclusion flag, and provenance.

    Parameters
    ----------
    ws : Workspace
    source : {"catalog", "consensus"}

    Returns
    -------
    labels : (n,) str array
        A class of :data:`CLASSES` or "".
    excluded : (n,) bool array
        Fit-quality galaxies (catalog flag, or a FitQuality consensus).
    provenance : dict
        ``source`` and, for consensus, the vote counts it came from.
    """
    cat = ws.read_catalog()
    fq = _column(cat, "fit_quality", False).astype(bool)
    prov: dict[str, Any] = {"source": source}
    if source == "catalog":
        labels = np.array([str(c).strip() for c in _column(cat, "catalog_class", "")], dtype=object)
        prov["column"] = "catalog_class"
    elif source == "consensus":
        from core.votes.store import open_store

        store = open_store(ws)
        try:
            cons = store.consensus()
            rule = dict(store.config)
        finally:
            store.close()
        lookup = dict(zip(cons["id"].astype(str), cons["label"].astype(str)))
        ids = np.asarray(cat["id"]).astype(str)
        raw = np.array([lookup.get(g, "") for g in ids], dtype=object)
        fq = fq | (raw == FIT_QUALITY)
        labels = raw.copy()
        prov.update({
            "rule": {k: rule.get(k) for k in ("min_votes", "fraction") if k in rule},
            "galaxies_with_votes": int((cons["n_votes"] > 0).sum()) if "n_votes" in cons else None,
            "undecided": int((raw == "undecided").sum()),
            "fit_quality": int((raw == FIT_QUALITY).sum()),
        })
    else:
        raise ValueError(f"labels must be one of {LABEL_SOURCES}, not {source!r}")
    labels = np.where(np.isin(labels, CLASSES), labels, "").astype(str)
    return labels, fq, prov


def load_training_data(ws: Workspace, source: str = "catalog", config: dict[str, Any] | None = None) -> TrainingData:
    """Labels, split and scaled stamps of every labelled, prepared galaxy (see module docstring)."""
    from core.learn.augment import split_sample
    from core.learn.scaling import scale_stamps

    cfg = config or ws.config
    cat = ws.read_catalog()
    labels, fq, prov = training_labels(ws, source)
    status = np.array([str(s).strip() for s in _column(cat, "prep_status", "ok")])
    prepped = np.isin(status, PREPPED)
    if "split" in cat.colnames:
        split = np.array([str(s).strip() for s in cat["split"]])
        prov["split"] = "catalog column 'split'"
    else:
        sc = cfg.get("split", {})
        split = split_sample(labels, fq | ~prepped, sc.get("test_fraction", 0.2), sc.get("seed", 42))
        prov["split"] = "core.learn.augment.split_sample on these labels"
    use = prepped & ~fq & (labels != "") & np.isin(split, ("train", "test"))
    rows = np.flatnonzero(use)
    if not np.any(split[rows] == "train"):
        raise TrainingError(
            f"no labelled training galaxies in {ws.root} (labels: {source}); "
            + ("vote on galaxies first, or train with --labels catalog" if source == "consensus"
               else "does the catalog have a catalog_class column? try --labels consensus"))
    stamps = ws.stamps().read("object_only", rows=rows)
    bad = ~np.isfinite(stamps).all(axis=(1, 2))
    if bad.any():
        log.warning("%d stamps with NaN pixels set to 0 (prep status ok/flagged but incomplete)", int(bad.sum()))
    sc = cfg.get("scaling", {})
    images = scale_stamps(np.nan_to_num(stamps, nan=0.0, posinf=0.0, neginf=0.0),
                          method=sc.get("method", "maxabs"), per=sc.get("per", "stamp"))
    lab, spl = labels[rows], split[rows]
    counts = {s: {c: int(np.sum((lab == c) & (spl == s))) for c in CLASSES} for s in ("train", "test")}
    prov.update({"counts": counts, "n_train": int(np.sum(spl == "train")), "n_test": int(np.sum(spl == "test"))})
    return TrainingData(ids=np.asarray(cat["id"]).astype(str)[rows], rows=rows, labels=lab, split=spl,
                        images=np.asarray(images, np.float32), provenance=prov)


# ----------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------
def _callbacks(run_dir: Path, epochs: int, steps: int, schedule, stop: Callable[[], bool], progress: bool):
    import keras

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
# Evaluation
# ----------------------------------------------------------------------------------------
def evaluate_cnn(model, x: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/support and the confusion matrix (rows: true class)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y = np.array([CLASSES.index(c) for c in labels])
    prob = model.predict(x[..., None], batch_size=batch_size, verbose=0)
    pred = prob.argmax(axis=1)
    p, r, _, s = precision_recall_fscore_support(y, pred, labels=range(len(CLASSES)), zero_division=0)
    cm = confusion_matrix(y, pred, labels=range(len(CLASSES)))
    return {
        "n_test": int(len(y)),
        "accuracy": float(np.mean(pred == y)) if len(y) else None,
        "classes": list(CLASSES),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "support": int(s[i])}
                      for i, c in enumerate(CLASSES)},
        "confusion": cm.tolist(),
    }


def evaluate_cvae(model, x: np.ndarray, batch_size: int = 256) -> tuple[dict[str, Any], np.ndarray]:
    """Reconstruction MSE (decoded from the encoder mean) and mean KL on ``x``; also the reconstructions."""
    from core.learn.models import kl_divergence

    xb = x[..., None]
    rec = model.predict(xb, batch_size=batch_size, verbose=0)
    z_mean, z_log_var, _ = model.encoder.predict(xb, batch_size=batch_size, verbose=0)
    mse = float(np.mean((rec[..., 0] - x) ** 2)) if len(x) else None
    kl = float(kl_divergence(z_mean, z_log_var, model.kl_reduction)) if len(x) else None
    return {"n_test": int(len(x)), "recon_mse": mse, "kl": kl}, rec[..., 0]


def plot_confusion(cm: np.ndarray, path: Path, title: str = "") -> None:
    """Confusion matrix PNG: colour = fraction of the true class, numbers = counts."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    frac = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=110)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]}\n{frac[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=30)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (test split)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_reconstructions(x: np.ndarray, rec: np.ndarray, path: Path, n: int = 8, seed: int = 0) -> None:
    """Input (top) / reconstruction (bottom) pairs like the paper's Figure 8."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = min(n, len(x))
    pick = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False)) if n else []
    fig, axes = plt.subplots(2, max(n, 1), figsize=(1.3 * max(n, 1), 2.9), dpi=110, squeeze=False)
    for col, i in enumerate(pick):
        for row, img in enumerate((x[i], rec[i])):
            ax = axes[row, col]
            ax.imshow(img, cmap="RdBu_r", vmin=-1, vmax=1, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ----------------------------------------------------------------------------------------
# A run
# ----------------------------------------------------------------------------------------
def _strategy():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


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
        Run :func:`core.latent.analysis.embed_run` on the finished run.
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
        from core.latent.analysis import embed_run

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
    import keras
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

    with _strategy().scope():
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
