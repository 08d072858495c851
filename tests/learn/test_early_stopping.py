"""Early stopping: Keras' EarlyStopping on a validation split carved from the training galaxies."""

from __future__ import annotations

import csv
import json

import keras
import numpy as np
import pytest

from core.labels import CLASSES

SMALL = {"models": {"filters": [8, 16, 16]}}


def test_a_plateau_stops_training_and_the_best_weights_come_back():
    """A tiny regression whose validation targets are noise: val_loss bottoms out, then rises."""
    from core.learn.training import RunEarlyStopping

    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1))).astype("float32")
    x_val = rng.normal(size=(32, 6)).astype("float32")
    y_val = rng.normal(size=(32, 1)).astype("float32")  # unrelated to x_val: fitting x -> y cannot help
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(3e-2), loss="mse")

    seen: list[list[np.ndarray]] = []
    keep = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(model.get_weights()))
    es = RunEarlyStopping(patience=3, min_delta=0.0, restore_best=True)
    hist = model.fit(x, y, validation_data=(x_val, y_val), epochs=200, batch_size=16, verbose=0,
                     callbacks=[keep, es])
    val = hist.history["val_loss"]
    assert len(val) < 200, "never stopped"
    best = int(np.argmin(val))
    assert es.best_epoch == best and es.best == pytest.approx(min(val))
    assert len(val) - 1 - best == 3  # stopped after `patience` epochs without an improvement
    assert all(v >= val[best] for v in val[best + 1:])
    for w, b in zip(model.get_weights(), seen[best]):  # the best epoch's weights, not the last
        np.testing.assert_array_equal(w, b)
    assert any(not np.array_equal(w, b) for w, b in zip(seen[-1], seen[best]))
    assert model.evaluate(x_val, y_val, verbose=0) == pytest.approx(val[best], rel=1e-5)
    state = es.get_state()
    assert state["best_epoch"] == best and state["wait"] == 3 and state["stopped_epoch"] == len(val) - 1


def test_min_delta_counts_small_gains_as_no_improvement():
    from core.learn.training import RunEarlyStopping

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    es = RunEarlyStopping(patience=2, min_delta=1e6, restore_best=False)  # nothing is a big enough gain
    hist = model.fit(x, y, validation_data=(x, y), epochs=50, verbose=0, callbacks=[es])
    assert len(hist.history["val_loss"]) == 3 and es.best_epoch == 0


def test_validation_split_is_stratified_seeded_and_inside_the_training_set():
    from core.learn.data import validation_split

    labels = np.array(["Clean"] * 50 + ["Core"] * 20 + ["Peculiar"] * 1 + ["General"] * 30)
    train = np.ones(labels.size, bool)
    train[::5] = False  # the test galaxies
    val = validation_split(labels, train, 0.2, seed=1)
    assert not np.any(val & ~train)
    for c in ("Clean", "Core", "General"):
        n = np.sum(train & (labels == c))
        assert np.sum(val & (labels == c)) == round(0.2 * n)
    assert not np.any(val & (labels == "Peculiar"))  # a class of one keeps its galaxy to fit on
    np.testing.assert_array_equal(val, validation_split(labels, train, 0.2, seed=1))
    assert not np.array_equal(val, validation_split(labels, train, 0.2, seed=2))
    with pytest.raises(ValueError, match="validation_fraction"):
        validation_split(labels, train, 1.0, seed=1)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from tests.model_workspace import make_workspace

    return make_workspace(tmp_path_factory.mktemp("early") / "ws", n=240, size=24)


@pytest.mark.slow
def test_a_run_stops_early_records_why_and_keeps_the_best_epoch(ws):
    """min_delta so large that no epoch after the first improves: the run stops at epoch 1 + patience."""
    from core.learn.training import train

    info = train(ws, "cnn", epochs=20, per_class=16, seed=3, run_id="cnn-early",
                 config={**SMALL, "train": {"early_stopping": True, "patience": 2, "min_delta": 1e6}})
    run = json.loads((info.path / "run.json").read_text())
    assert run["status"] == "done" and run["epochs"] == 20 and run["epochs_run"] == 3 and run["best_epoch"] == 1
    assert run["stopped"].startswith("early at epoch 3 of 20, best val_loss ")
    assert "at epoch 1" in run["stopped"] and "best weights restored" in run["stopped"]
    assert info.stopped == run["stopped"] and info.epochs_run == 3
    with open(info.path / "history.csv") as fh:
        hist = list(csv.DictReader(fh))
    assert len(hist) == 3 and {"val_loss", "val_accuracy", "learning_rate"} <= set(hist[0])
    assert run["best_val_loss"] == pytest.approx(float(hist[0]["val_loss"]))
    prog = json.loads((info.path / "progress.json").read_text())
    assert prog["state"] == "done" and prog["epoch"] == 3 and prog["epochs"] == 20

    # the validation galaxies: ~10 % of each class's training galaxies, never a test galaxy
    with open(info.path / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    val = [r for r in rows if r["role"] == "validation"]
    assert val and all(r["split"] == "train" for r in val)
    assert all(r["role"] == "test" for r in rows if r["split"] == "test")
    n_train = sum(r["split"] == "train" for r in rows)
    assert abs(len(val) - 0.1 * n_train) <= len(CLASSES)
    prov = json.loads((info.path / "labels.json").read_text())
    assert prov["n_validation"] == len(val) == sum(prov["counts"]["validation"].values())

    # the saved model is the best epoch's: its loss on the validation galaxies is epoch 1's val_loss
    from core.learn.data import load_training_data

    data = load_training_data(ws, "catalog")
    ids = {r["id"] for r in val}
    m = np.isin(data.ids, list(ids))
    model = keras.models.load_model(info.path / "model.keras", compile=False)
    prob = model.predict(data.images[m][..., None], verbose=0)
    y = np.array([CLASSES.index(c) for c in data.labels[m]])
    ce = float(np.mean(-np.log(np.clip(prob[np.arange(len(y)), y], 1e-7, 1.0))))
    assert ce == pytest.approx(float(hist[0]["val_loss"]), rel=1e-3)
    assert ce != pytest.approx(float(hist[-1]["val_loss"]), rel=1e-3)


@pytest.mark.slow
def test_a_schedule_sized_to_the_labels(ws, capsys):
    from core.cli.main import main
    from core.learn.training import sized_per_class

    capsys.readouterr()
    assert main(["train", str(ws.root), "--model", "cnn", "--epochs", "2", "--size-to-labels", "--run-id",
                 "cnn-sized", "--no-activate"]) == 0
    out, err = capsys.readouterr()
    assert "stopped: completed 2 of 2 epochs, best val_loss" in out
    assert "run cnn-sized: device CPU, " in err and "  device: CPU, " in out  # where it trains (no GPU here)
    run = json.loads((ws.runs_dir / "cnn-sized" / "run.json").read_text())
    with open(ws.runs_dir / "cnn-sized" / "labels.csv") as fh:
        fit = [r["label"] for r in csv.DictReader(fh) if r["role"] == "fit"]
    expected = sized_per_class(len(fit), len(set(fit)), ws.config)
    assert run["size_to_labels"] and run["per_class"] == expected == max(32, -(-2 * len(fit) // len(set(fit))))
    assert run["steps_per_epoch"] == -(-expected * len(set(fit)) // 32)
    from core.workspace.config import read_config

    assert read_config(ws.runs_dir / "cnn-sized" / "config.toml")["train"]["per_class"] == expected
    assert main(["train", str(ws.root), "--model", "cnn", "--size-to-labels", "--per-class", "5"]) == 2
    capsys.readouterr()
    assert main(["runs", str(ws.root)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if "cnn-sized" in ln]
    assert " 2/2 " in line[0]


def test_sized_per_class_is_bounded():
    from core.learn.training import sized_per_class
    from core.workspace.config import default_config

    cfg = default_config()
    assert sized_per_class(1000, 5, cfg) == 400
    assert sized_per_class(3, 5, cfg) == cfg["train"]["min_per_class"]
    assert sized_per_class(10**7, 5, cfg) == cfg["augment"]["per_class"]


def test_an_old_workspace_keeps_training_every_epoch(tmp_path):
    """Schema 3 had no early stopping: a migrated config keeps it off; a new workspace has it on."""
    from core.workspace.config import DEFAULT_CONFIG, read_config

    path = tmp_path / "config.toml"
    path.write_text("schema_version = 3\n[train]\nepochs = 7\n")
    cfg = read_config(path)
    assert cfg["train"]["early_stopping"] is False and cfg["train"]["epochs"] == 7
    assert cfg["train"]["patience"] == DEFAULT_CONFIG["train"]["patience"]
    assert DEFAULT_CONFIG["train"]["early_stopping"] is True
