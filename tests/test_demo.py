"""`resx demo`: argument checks and idempotence (the full build takes minutes: see
tests/benchmarks/bench_train.py --demo and tests/benchmarks/science_check.py --demo)."""

from __future__ import annotations

import json

import pytest

from core import demo


def test_demo_refuses_fewer_than_1000_galaxies(tmp_path):
    with pytest.raises(ValueError, match="at least 1000"):
        demo.build_demo(tmp_path / "ws", n=999)


def test_a_complete_demo_workspace_is_left_as_is(tmp_path, monkeypatch, caplog):
    from tests.model_workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", n=20, size=16)
    for model in ("cnn", "cvae"):
        folder = ws.runs_dir / f"{model}-1"
        folder.mkdir()
        (folder / "embedding.npz").write_bytes(b"")
        ws.set_active_run(model, f"{model}-1")
    marker = {"complete": True, "n": 1000, "seed": 0, "stages": {"simulate": 1.0}, "total_s": 1.0}
    (ws.root / demo.DEMO_JSON).write_text(json.dumps(marker))

    def boom(*a, **k):
        raise AssertionError("a complete demo must not be rebuilt")

    monkeypatch.setattr("core.simulation.survey.simulate_survey", boom)
    with caplog.at_level("INFO", logger="core.demo"):
        info = demo.build_demo(ws.root, n=1000)
    assert info["skipped"] and "already a complete demo" in caplog.text
    from core.cli.main import main

    assert main(["demo", str(ws.root)]) == 0


def test_an_interrupted_demo_resumes_after_the_last_finished_stage(tmp_path, monkeypatch):
    calls = []
    root = tmp_path / "ws"
    root.mkdir()
    (root / demo.DEMO_JSON).write_text(json.dumps({"n": 1000, "seed": 0, "done": ["simulate", "ingest"],
                                                   "stages": {}, "runs": {}}))
    def prep(*a, **k):
        calls.append("prep")
        raise RuntimeError("stop here")

    monkeypatch.setattr("core.prep.pipeline.prep_workspace", prep)
    monkeypatch.setattr("core.workspace.workspace.Workspace.open", classmethod(lambda cls, r: None))
    with pytest.raises(RuntimeError, match="stop here"):
        demo.build_demo(root, n=1000, echo=lambda *a: None)
    assert calls == ["prep"]  # simulate and ingest were not redone
    info = json.loads((root / demo.DEMO_JSON).read_text())
    assert set(info["done"]) == {"simulate", "ingest"} and not info.get("complete")


def test_demo_schedule_learning_rate_reaches_the_run_config(tmp_path, monkeypatch):
    from types import SimpleNamespace

    root = tmp_path / "ws"
    root.mkdir()
    (root / demo.DEMO_JSON).write_text(json.dumps({"n": 1000, "seed": 0, "stages": {}, "runs": {},
                                                   "done": ["simulate", "ingest", "prep", "votes"]}))
    seen = {}

    def fake_train(ws, model, labels, **kw):
        seen[model] = kw
        raise RuntimeError("stop here")

    monkeypatch.setattr("core.learn.training.train", fake_train)
    monkeypatch.setattr("core.workspace.workspace.Workspace.open", classmethod(lambda cls, r: SimpleNamespace()))
    with pytest.raises(RuntimeError, match="stop here"):
        demo.build_demo(root, n=1000, echo=lambda *a: None,
                        schedule={"cnn": {"learning_rate": 2e-3, "epochs": 1}})
    kw = seen["cnn"]
    assert kw["config"] == {"train": {"learning_rate": 2e-3, "early_stopping": False}}  # the demo's 6 epochs
    assert kw["epochs"] == 1 and kw["per_class"] == demo.DEMO_SCHEDULE["cnn"]["per_class"]
    assert "learning_rate" not in kw
