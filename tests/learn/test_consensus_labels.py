"""Training on the labels of any consensus method (`resx train --labels consensus --consensus-method ds`)."""

from __future__ import annotations

import core.learn.training as training
from core.cli.main import main
from core.learn.data import training_labels
from core.votes.store import open_store
from tests.model_workspace import make_workspace


def _votes(w):
    ids = [f"G{i:05d}" for i in range(3)]
    with open_store(w) as store:
        for name in ("ann", "bob", "cy"):
            store.add_inspector(name)
        for name, lab in zip(("ann", "bob", "cy"), ("Clean", "Peculiar", "General")):
            store.cast(ids[0], name, lab)  # 1-1-1: undecided for the majority
        for name in ("ann", "bob"):
            store.cast(ids[1], name, "Core")
        store.cast(ids[1], "cy", "Clean")
        for name in ("ann", "bob", "cy"):
            store.cast(ids[2], name, "Asymmetric")


def test_training_labels_by_method(tmp_path):
    w = make_workspace(tmp_path / "ws", n=12, size=16)
    _votes(w)
    maj, _, prov = training_labels(w, "consensus")
    assert list(maj[:3]) == ["", "Core", "Asymmetric"] and prov["method"] == "majority"
    ds, _, prov = training_labels(w, "consensus", "ds")
    # Dawid-Skene decides every galaxy with >= 3 votes: the 1-1-1 split gets a label too.
    assert ds[0] in ("Clean", "Peculiar", "General") and list(ds[1:3]) == ["Core", "Asymmetric"]
    assert prov["method"] == "ds"


def test_resx_train_passes_the_consensus_method(tmp_path, monkeypatch):
    seen = {}

    def fake_train(workspace, model, labels, **kw):
        seen.update(kw, labels=labels)
        raise training.TrainingError("stop here")

    monkeypatch.setattr(training, "train", fake_train)
    assert main(["train", str(tmp_path), "--model", "cnn", "--labels", "consensus",
                 "--consensus-method", "ds"]) == 2
    assert seen["labels"] == "consensus" and seen["config"] == {"votes": {"method": "ds"}}
