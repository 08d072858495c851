"""Training runs: the run folder, fine-tuning, reproducibility, cancel/failure, labels, `resx runs`."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time

import keras
import numpy as np
import pytest
from astropy.table import Table

from core.labels import CLASSES

SMALL = {"models": {"filters": [8, 16, 16]}}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from tests.model_workspace import make_workspace

    return make_workspace(tmp_path_factory.mktemp("train") / "ws", n=240, size=24)


@pytest.fixture(scope="module")
def first(ws):
    from core.learn.training import train

    return train(ws, "cnn", epochs=2, per_class=40, seed=7, run_id="cnn-first", config=SMALL)


def _weights(model):
    return [w.copy() for w in model.get_weights()]


@pytest.mark.slow
def test_run_folder_is_complete_and_reloads(ws, first):
    folder = first.path
    for name in ("model.keras", "config.toml", "run.json", "labels.json", "labels.csv", "history.csv",
                 "progress.json", "evaluation.json", "confusion.png"):
        assert (folder / name).is_file(), name
    assert not (folder / "checkpoint.keras").exists()  # removed once the run is done
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "done" and run["model"] == "cnn" and run["labels"] == "catalog"
    assert run["epochs"] == 2 and run["init"] is None and run["error"] is None and run["finished"]
    assert first.active and ws.active_run("cnn") == "cnn-first"

    # labels: provenance counts = the rows of labels.csv = the labelled, usable galaxies
    prov = json.loads((folder / "labels.json").read_text())
    with open(folder / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    cat = ws.read_catalog()
    usable = ((np.asarray(cat["prep_status"]) == "ok") & ~np.asarray(cat["fit_quality"]))
    assert len(rows) == usable.sum() == prov["n_train"] + prov["n_test"]
    for split in ("train", "test"):
        for c in CLASSES:
            assert prov["counts"][split][c] == sum(r["split"] == split and r["label"] == c for r in rows)
    assert prov["source"] == "catalog"

    # history and progress: one entry per epoch; LR halved every third of the steps
    with open(folder / "history.csv") as fh:
        hist = list(csv.DictReader(fh))
    assert [int(h["epoch"]) for h in hist] == [1, 2]
    assert {"loss", "accuracy", "learning_rate"} <= set(hist[0])
    prog = json.loads((folder / "progress.json").read_text())
    assert prog["state"] == "done" and prog["epoch"] == prog["epochs"] == 2
    assert len(prog["history"]["loss"]) == 2

    # evaluation on the held-out split: accuracy = trace / total of the confusion matrix
    ev = json.loads((folder / "evaluation.json").read_text())
    cm = np.array(ev["confusion"])
    assert cm.shape == (5, 5) and cm.sum() == ev["n_test"] == prov["n_test"]
    assert ev["accuracy"] == pytest.approx(np.trace(cm) / cm.sum())
    assert run["accuracy"] == pytest.approx(ev["accuracy"])
    for i, c in enumerate(CLASSES):
        support = cm[i].sum()
        assert ev["per_class"][c]["support"] == support
        if support:
            assert ev["per_class"][c]["recall"] == pytest.approx(cm[i, i] / support)

    # the config is the one trained with, and the model reloads with it
    from core.workspace.config import read_config

    cfg = read_config(folder / "config.toml")
    assert cfg["models"]["filters"] == [8, 16, 16] and cfg["train"]["epochs"] == 2 and cfg["train"]["seed"] == 7
    model = keras.models.load_model(folder / "model.keras", compile=False)
    assert model.input_shape == (None, 24, 24, 1) and model.output_shape == (None, 5)


@pytest.mark.slow
def test_fine_tuning_changes_weights_and_keeps_architecture(ws, first):
    from core.learn.training import train

    tuned = train(ws, "cnn", init=first.id, epochs=1, per_class=20, run_id="cnn-tuned", activate=False)
    assert tuned.status == "done" and tuned.init == first.id and not tuned.active
    assert ws.active_run("cnn") == first.id  # --no-activate
    a = keras.models.load_model(first.path / "model.keras", compile=False)
    b = keras.models.load_model(tuned.path / "model.keras", compile=False)
    assert [(lay.name, type(lay)) for lay in a.layers] == [(lay.name, type(lay)) for lay in b.layers]
    wa, wb = _weights(a), _weights(b)
    assert [w.shape for w in wa] == [w.shape for w in wb]
    assert any(not np.allclose(x, y) for x, y in zip(wa, wb))
    # it started from the earlier weights, not from scratch: still close to them
    rel = np.linalg.norm(wb[0] - wa[0]) / np.linalg.norm(wa[0])
    assert rel < 0.5
    with pytest.raises(ValueError, match="cnn run"):
        train(ws, "cvae", init=first.id, epochs=1)


@pytest.mark.slow
def test_a_seeded_run_is_reproducible(ws, first):
    from core.learn.training import train

    again = train(ws, "cnn", epochs=2, per_class=40, seed=7, run_id="cnn-again", activate=False, config=SMALL)
    a = keras.models.load_model(first.path / "model.keras", compile=False)
    b = keras.models.load_model(again.path / "model.keras", compile=False)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    ha = json.loads((first.path / "progress.json").read_text())["history"]["loss"]
    hb = json.loads((again.path / "progress.json").read_text())["history"]["loss"]
    np.testing.assert_allclose(ha, hb, rtol=1e-4)


@pytest.mark.slow
def test_stop_file_cancels_and_the_run_is_not_activated(ws, first):
    from core.learn.training import train

    before = ws.active_run("cnn")
    box = {}

    def go():
        box["info"] = train(ws, "cnn", epochs=50, per_class=400, run_id="cnn-stopped", config=SMALL)

    t = threading.Thread(target=go)
    t.start()
    folder = ws.runs_dir / "cnn-stopped"
    deadline = time.time() + 120
    while time.time() < deadline and not (folder / "run.json").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    (folder / "STOP").touch()
    t.join(timeout=180)
    assert not t.is_alive()
    info = box["info"]
    assert info.status == "cancelled" and not info.active
    assert ws.active_run("cnn") == before
    assert json.loads((folder / "run.json").read_text())["status"] == "cancelled"
    assert json.loads((folder / "progress.json").read_text())["state"] == "cancelled"
    assert not (folder / "model.keras").exists()


def test_signal_sets_the_stop_flag(tmp_path):
    from core.learn.training import _StopFlag

    previous = signal.getsignal(signal.SIGTERM)
    with _StopFlag(tmp_path, handle_signals=True) as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop()
    assert signal.getsignal(signal.SIGTERM) is previous
    with _StopFlag(tmp_path, handle_signals=False) as stop:
        (tmp_path / "STOP").touch()
        assert stop()


@pytest.mark.slow
def test_a_failed_run_is_recorded_and_not_activated(ws, first):
    from core.learn.training import TrainingError, train

    before = ws.active_runs()
    # no votes yet: no consensus label to train on
    with pytest.raises(TrainingError, match="no labelled training galaxies"):
        train(ws, "cnn", labels="consensus", epochs=1, run_id="cnn-failed")
    run = json.loads((ws.runs_dir / "cnn-failed" / "run.json").read_text())
    assert run["status"] == "failed" and "no labelled training galaxies" in run["error"]
    assert ws.active_runs() == before
    from core.learn.runs import activate

    with pytest.raises(ValueError, match="failed"):
        activate(ws, "cnn-failed")


def test_consensus_labels_exclude_skip_undecided_and_fit_quality(tmp_path):
    from core.learn.data import training_labels
    from core.votes.store import open_store
    from tests.model_workspace import make_workspace

    w = make_workspace(tmp_path / "ws", n=12, size=16)
    with open_store(w) as store:
        for name in ("ann", "bob", "cy"):
            store.add_inspector(name)
        ids = [f"G{i:05d}" for i in range(5)]
        for name in ("ann", "bob", "cy"):
            store.cast(ids[0], name, "Core")
            store.cast(ids[1], name, "FitQuality")
            store.cast(ids[2], name, "Skip")
        for name, lab in zip(("ann", "bob", "cy"), ("Clean", "Peculiar", "General")):
            store.cast(ids[3], name, lab)  # undecided
        store.cast(ids[4], "ann", "Asymmetric")
        store.cast(ids[4], "bob", "Asymmetric")
        store.cast(ids[4], "cy", "Clean")  # 2/3 wins
    labels, excluded, prov = training_labels(w, "consensus")
    assert list(labels[:6]) == ["Core", "", "", "", "Asymmetric", ""]
    assert excluded[1] and not excluded[0]
    assert prov["source"] == "consensus" and prov["undecided"] >= 1 and prov["fit_quality"] == 1
    cat_labels, _, _ = training_labels(w, "catalog")
    assert list(cat_labels) == [str(c) for c in Table.read(w.catalog_path)["catalog_class"]]


@pytest.mark.slow
def test_cvae_run_and_resx_runs(ws, first, capsys):
    from core.cli.main import main
    from core.learn.training import train

    v = train(ws, "cvae", epochs=1, per_class=20, run_id="cvae-1",
              config={"models": {"filters": [8, 16, 16], "latent_dim": 16}})
    ev = json.loads((v.path / "evaluation.json").read_text())
    assert (v.path / "reconstructions.png").is_file() and not (v.path / "confusion.png").exists()
    assert ev["recon_mse"] > 0 and v.recon_mse == pytest.approx(ev["recon_mse"]) and v.accuracy is None
    # the run records how far it is from the trivial all-zero reconstruction, and is flagged near it
    assert v.recon_mse_ratio == pytest.approx(ev["recon_mse"] / ev["recon_mse_zero"])
    assert (v.warning is not None) == (v.recon_mse_ratio >= 0.98)
    assert {"loss", "recon_loss", "kl_loss"} <= set(json.loads((v.path / "progress.json").read_text())["history"])
    # KL warm-up: models.kl_warmup (1/3) of the run's steps; 240 galaxies, 80 % train, 20 per class, batch 32
    steps = -(-20 * len(set(np.loadtxt(v.path / "labels.csv", dtype=str, delimiter=",", skiprows=1)[:, 1])) // 32)
    saved = keras.models.load_model(v.path / "model.keras", compile=False)
    assert saved.kl_warmup_steps == round(steps / 3) and saved.kl_warmup_steps >= 1
    capsys.readouterr()
    assert main(["runs", str(ws.root), "--json"]) == 0
    listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["cnn-first"]["accuracy"] is not None and listed["cvae-1"]["recon_mse"] is not None
    assert listed["cvae-1"]["active"] and listed["cvae-1"]["model"] == "cvae"
    assert listed["cvae-1"]["warning"] == v.warning
    assert main(["runs", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert ("(no better than zeros)" in out) == (v.warning is not None)
    assert "cnn-first" in out and "mse" in out
    assert main(["runs", str(ws.root), "--activate", "cnn-first"]) == 0
    assert ws.active_run("cnn") == "cnn-first"
    assert main(["train", str(ws.root), "--model", "cnn", "--init", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("resx train: ") and "nope" in err


@pytest.mark.slow
def test_resx_train_through_the_cli(ws, first, capsys):
    from core.cli.main import main

    capsys.readouterr()
    assert main(["train", str(ws.root), "--model", "cnn", "--epochs", "1", "--per-class", "8", "--seed", "1",
                 "--run-id", "cnn-cli", "--no-activate"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("run cnn-cli (cnn, catalog labels) done: test accuracy ")
    assert f"folder: {ws.runs_dir / 'cnn-cli'}" in out and "Traceback" not in err
    assert json.loads((ws.runs_dir / "cnn-cli" / "run.json").read_text())["status"] == "done"
    assert ws.active_run("cnn") != "cnn-cli"  # --no-activate
