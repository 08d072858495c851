"""Training runs: one folder ``WORKSPACE/runs/<run-id>/`` per run, and the list of them.

A run folder holds::

    model.keras        the trained model (core.learn.models registers its custom layers)
    config.toml        the exact configuration it was trained with
    run.json           {id, model, labels, status, created, finished, error, init, epochs,
                        accuracy, recon_mse, stopped, epochs_run, best_epoch, best_val_loss};
                        status is running | done | failed | cancelled; ``epochs`` is the most
                        epochs planned, ``epochs_run`` those trained, ``stopped`` why it ended
    labels.json        provenance of the labels: source, counts per class and split
    labels.csv         id, label, split (train / test), role (fit / validation / test) of every
                        galaxy used
    history.csv        one row per epoch (loss, accuracy or recon/KL, learning rate)
    progress.json      {"state", "epoch", "epochs", "history": {metric: [...]}}, every epoch
    evaluation.json    on the held-out test split (see core.learn.training)
    confusion.png      CNN;  reconstructions.png  CvAE
    embedding.npz/json after `resx embed` (core.latent.analysis)
    STOP               create this file to cancel a running training cleanly
    trainer.json       {pid, host, start} of the process training the run, while it trains
    checkpoint/        TensorFlow checkpoint of the last complete epoch (weights, optimizer,
                        epoch, early-stopping state); ``resx train WORKSPACE --resume RUN``

A run whose ``run.json`` says ``running`` but whose trainer (``trainer.json``: same host, that
pid no longer alive or now another process) has died -- kill -9, a crash, a reboot -- is listed
as ``interrupted``. Only a run whose status is ``done`` can be the active one
(``WORKSPACE/active.json``): never a running, interrupted, cancelled or failed one.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.errors import ResxError
from core.workspace.workspace import MODELS, Workspace, WorkspaceError

RUN_JSON = "run.json"
TRAINER_JSON = "trainer.json"
STATUSES = ("running", "done", "failed", "cancelled", "interrupted")


class RunError(ResxError, ValueError):
    """A run id that cannot be used: invalid, taken, unfinished, or of the wrong model."""


@dataclass
class RunInfo:
    """What ``run.json`` says about a run, plus whether it is the active run of its model."""

    id: str
    model: str
    labels: str
    status: str
    created: str
    path: Path
    finished: str | None = None
    error: str | None = None
    init: str | None = None
    epochs: int | None = None
    accuracy: float | None = None
    recon_mse: float | None = None
    active: bool = False
    stopped: str | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    recon_mse_ratio: float | None = None
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def _as_workspace(ws) -> Workspace:
    return ws if isinstance(ws, Workspace) else Workspace.open(ws)


def write_run_json(folder: str | Path, record: dict[str, Any]) -> None:
    """Write ``run.json`` atomically (readers poll it while training runs)."""
    folder = Path(folder)
    tmp = folder / (RUN_JSON + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, folder / RUN_JSON)


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux ``/proc``; ``None`` where unknown)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, starttime, counted after the "(comm)"


def write_trainer(folder: str | Path) -> None:
    """Record this process as the run's trainer (``trainer.json``), atomically."""
    folder = Path(folder)
    pid = os.getpid()
    tmp = folder / f"{TRAINER_JSON}.{pid}.tmp"
    tmp.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "start": _process_start(pid)}))
    os.replace(tmp, folder / TRAINER_JSON)


def clear_trainer(folder: str | Path) -> None:
    """Remove ``trainer.json`` (the trainer is done with the run)."""
    (Path(folder) / TRAINER_JSON).unlink(missing_ok=True)


def trainer_alive(folder: str | Path) -> bool | None:
    """Whether the process in ``trainer.json`` still runs: ``None`` when it cannot be told (no
    file, another host), ``False`` when that pid is gone or is now another process."""
    try:
        info = json.loads((Path(folder) / TRAINER_JSON).read_text())
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("host") != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    start = _process_start(pid)
    if info.get("start") is not None and start is not None and start != info["start"]:
        return False  # the pid was reused
    return True


def read_run(ws, run_id: str) -> RunInfo:
    """The :class:`RunInfo` of one run (:class:`WorkspaceError` if absent or unreadable)."""
    ws = _as_workspace(ws)
    folder = ws.run_dir(run_id)
    try:
        record = json.loads((folder / RUN_JSON).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise WorkspaceError(f"{folder / RUN_JSON} cannot be read: {exc}") from exc
    active = ws.active_run(record.get("model", "")) == run_id
    known = {k: record.get(k) for k in ("finished", "error", "init", "epochs", "accuracy", "recon_mse",
                                        "stopped", "epochs_run", "best_epoch", "best_val_loss",
                                        "recon_mse_ratio", "warning")}
    status = record.get("status", "?")
    if status == "running" and trainer_alive(folder) is False:
        status = "interrupted"
    return RunInfo(id=record.get("id", run_id), model=record.get("model", "?"),
                   labels=record.get("labels", "?"), status=status,
                   created=record.get("created", ""), path=folder, active=active, **known)


def list_runs(ws) -> list[RunInfo]:
    """Every run of a workspace with a readable ``run.json``, oldest first."""
    ws = _as_workspace(ws)
    if not ws.runs_dir.is_dir():
        return []
    runs = []
    for folder in ws.runs_dir.iterdir():
        if (folder / RUN_JSON).is_file():
            try:
                runs.append(read_run(ws, folder.name))
            except WorkspaceError:
                continue
    return sorted(runs, key=lambda r: (r.created, r.id))


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def new_run_id(ws, model: str, run_id: str | None = None) -> str:
    """A fresh run id: ``run_id`` if free (and a plain name), else ``<model>-YYYYmmdd-HHMMSS[-n]``."""
    ws = _as_workspace(ws)
    if run_id is not None:
        if not _ID.match(run_id):
            raise RunError(f"run id {run_id!r} must be letters, digits, '.', '_' or '-'")
        if (ws.runs_dir / run_id).exists():
            raise RunError(f"run {run_id!r} already exists in {ws.runs_dir}")
        return run_id
    base = f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = base, 1
    while (ws.runs_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def activate(ws, run_id: str) -> RunInfo:
    """Make a finished run the active run of its model."""
    ws = _as_workspace(ws)
    info = read_run(ws, run_id)
    if info.status != "done":
        raise RunError(f"run {run_id} is {info.status}: only a finished (done) run can be active")
    if info.model not in MODELS:
        raise RunError(f"run {run_id} has an unknown model {info.model!r}")
    ws.set_active_run(info.model, run_id)
    info.active = True
    return info
