"""Resumable runs: a trainer killed with SIGKILL mid-epoch is `interrupted`, never active, and
`resx train --resume` finishes it as if it had not stopped.

Tolerance: with TensorFlow's op determinism (``train.deterministic``) and one thread per process,
the resumed run's final weights equal the uninterrupted run's to ``WEIGHT_ATOL`` (in practice
bit for bit: the checkpoint restores every variable exactly and epoch ``e``'s augmented batches
depend on ``(seed, e)`` only).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest

WEIGHT_ATOL = 1e-6
EPOCHS = 4
CONFIG = {"models": {"filters": [8, 16, 16]}, "train": {"deterministic": True, "early_stopping": True}}
ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return env


def _trainer(tmp_path: Path, ws_root: Path, run_id: str) -> list[str]:
    script = tmp_path / f"train_{run_id}.py"
    script.write_text(textwrap.dedent(f"""
        from core.learn.training import train
        train({str(ws_root)!r}, "cnn", epochs={EPOCHS}, per_class=400, seed=5, run_id={run_id!r},
              activate=True, config={CONFIG!r})
    """))
    return [sys.executable, str(script)]


def _history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_end(tmp_path):
    from core.learn.runs import RunError, activate, list_runs, read_run
    from tests.model_workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", n=240, size=24)
    log = open(tmp_path / "trainers.log", "wb")
    subprocess.run(_trainer(tmp_path, ws.root, "ref"), check=True, env=_env(), stdout=log, stderr=log, timeout=600)
    ws.set_active_run("cnn", None)

    victim = subprocess.Popen(_trainer(tmp_path, ws.root, "victim"), env=_env(), stdout=log, stderr=log)
    run_dir = ws.runs_dir / "victim"
    deadline = time.time() + 600
    epoch_s = None
    while time.time() < deadline and victim.poll() is None:
        try:
            prog = json.loads((run_dir / "progress.json").read_text())
        except (OSError, ValueError):
            prog = {}
        if prog.get("epoch", 0) >= 2:
            epoch_s = float(prog["history"]["seconds"][-1])  # the last epoch: the first one also traced
            break
        time.sleep(0.02)
    assert epoch_s is not None, "the trainer never finished two epochs"
    time.sleep(0.4 * epoch_s)  # into the third epoch
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL

    # interrupted: listed so, never active, cannot be activated
    info = read_run(ws, "victim")
    assert info.status == "interrupted" and not info.active
    assert ws.active_run("cnn") is None
    with pytest.raises(RunError, match="interrupted"):
        activate(ws, "victim")
    assert {r.id: r.status for r in list_runs(ws)}["victim"] == "interrupted"
    done_before = len(_history(run_dir))
    assert done_before == 2  # killed in the third epoch
    assert not (run_dir / "model.keras").exists()

    out = subprocess.run([sys.executable, "-m", "core", "train", str(ws.root), "--resume", "victim"],
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("run victim (cnn, catalog labels) done: test accuracy ")

    ref, res = read_run(ws, "ref"), read_run(ws, "victim")
    assert res.status == "done" and res.active and res.epochs_run == EPOCHS
    rec_ref = json.loads((ref.path / "run.json").read_text())
    rec_res = json.loads((res.path / "run.json").read_text())
    assert rec_res["steps"] == rec_ref["steps"] == EPOCHS * rec_ref["steps_per_epoch"]
    assert len(rec_res["resumed"]) == 1 and rec_res["best_epoch"] == rec_ref["best_epoch"]
    assert not (res.path / "trainer.json").exists() and not (res.path / "checkpoint").exists()

    # one continuous history, epoch for epoch the uninterrupted run's
    h_ref, h_res = _history(ref.path), _history(res.path)
    assert [int(r["epoch"]) for r in h_res] == list(range(1, EPOCHS + 1))
    for key in ("loss", "accuracy", "val_loss", "learning_rate"):
        np.testing.assert_allclose([float(r[key]) for r in h_res], [float(r[key]) for r in h_ref], rtol=1e-6,
                                   err_msg=key)

    a = keras.models.load_model(ref.path / "model.keras", compile=False)
    b = keras.models.load_model(res.path / "model.keras", compile=False)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(y, x, rtol=0, atol=WEIGHT_ATOL)
    assert json.loads((res.path / "evaluation.json").read_text())["confusion"] == \
        json.loads((ref.path / "evaluation.json").read_text())["confusion"]


def test_resume_refuses_a_done_or_live_run_and_one_without_a_checkpoint(tmp_path):
    from core.learn.runs import RunError, write_run_json, write_trainer
    from core.learn.training import resume
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    for rid, status in (("d", "done"), ("live", "running"), ("dead", "running")):
        folder = ws.runs_dir / rid
        folder.mkdir(parents=True)
        write_run_json(folder, {"id": rid, "model": "cnn", "labels": "catalog", "status": status, "created": "x"})
    write_trainer(ws.runs_dir / "live")  # this process: alive
    (ws.runs_dir / "dead" / "trainer.json").write_text(json.dumps({"pid": 2**22 + 7, "host": os.uname().nodename}))
    with pytest.raises(RunError, match="done"):
        resume(ws, "d")
    with pytest.raises(RunError, match="still training"):
        resume(ws, "live")
    with pytest.raises(RunError, match="no checkpoint"):
        resume(ws, "dead")
    from core.cli.main import main

    assert main(["train", str(ws.root), "--resume", "dead", "--epochs", "3"]) == 2
    assert main(["train", str(ws.root)]) == 2


def test_a_dead_trainer_is_interrupted_a_live_one_running(tmp_path):
    from core.learn.runs import read_run, trainer_alive, write_run_json, write_trainer
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws")
    folder = ws.runs_dir / "r"
    folder.mkdir(parents=True)
    write_run_json(folder, {"id": "r", "model": "cnn", "labels": "catalog", "status": "running", "created": "x"})
    assert trainer_alive(folder) is None and read_run(ws, "r").status == "running"  # cannot tell
    write_trainer(folder)
    assert trainer_alive(folder) is True and read_run(ws, "r").status == "running"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    info = json.loads((folder / "trainer.json").read_text())
    (folder / "trainer.json").write_text(json.dumps({**info, "pid": child.pid}))
    assert trainer_alive(folder) is False and read_run(ws, "r").status == "interrupted"
    (folder / "trainer.json").write_text(json.dumps({**info, "start": "1"}))  # our pid, but another start: reused
    assert trainer_alive(folder) is False
    (folder / "trainer.json").write_text(json.dumps({**info, "host": "elsewhere"}))
    assert trainer_alive(folder) is None


@pytest.mark.slow
def test_a_cancelled_cvae_run_resumes(tmp_path):
    """The CvAE (a subclassed model with a sampling layer and KL warm-up) resumes from a STOP."""
    import threading

    from core.learn.runs import read_run
    from core.learn.training import resume, train
    from tests.model_workspace import make_workspace

    ws = make_workspace(tmp_path / "ws", n=120, size=16)
    cfg = {"models": {"filters": [4, 8, 8], "latent_dim": 8}}
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("info", train(
        ws, "cvae", epochs=4, per_class=60, seed=2, run_id="v", config=cfg, handle_signals=False)))
    t.start()
    run_dir = ws.runs_dir / "v"
    deadline = time.time() + 300
    while time.time() < deadline and t.is_alive():
        try:
            if json.loads((run_dir / "progress.json").read_text()).get("epoch", 0) >= 1:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    (run_dir / "STOP").touch()
    t.join(timeout=300)
    assert box["info"].status == "cancelled" and not box["info"].active
    done_before = len(_history(run_dir))
    assert 1 <= done_before < 4
    info = resume(ws, "v", handle_signals=False)
    assert info.status == "done" and info.active and info.epochs_run == 4 and read_run(ws, "v").recon_mse > 0
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["steps"] == 4 * rec["steps_per_epoch"]
    assert [int(r["epoch"]) for r in _history(run_dir)] == [1, 2, 3, 4]
    saved = keras.models.load_model(run_dir / "model.keras", compile=False)
    assert saved.kl_warmup_steps == round(4 * rec["steps_per_epoch"] / 3)
