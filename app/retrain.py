"""Retrain in a subprocess: the server starts ``python -m core train ... --embed`` and watches it.

Training never runs in the web server's process. :class:`RetrainJob` starts the trainer with
the server's own interpreter (``sys.executable``), so it runs the ``core`` that the server
imports, installed or editable, from whatever folder the server was started in; its working
folder is the workspace, never the source tree.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from core.workspace.workspace import Workspace

__all__ = ["RetrainJob"]

log = logging.getLogger(__name__)


class RetrainJob:
    """One ``python -m core train ... --embed`` subprocess and its run folder.

    The server never trains: it starts the process, reads ``progress.json`` when polled, writes
    ``STOP`` to cancel, and reads ``run.json`` when the process has ended.

    Parameters
    ----------
    ws : Workspace
        The workspace to train in.
    model : {"cnn", "cvae"}
        The model to train.
    epochs : int
        Epochs of the new run.
    init : str or None
        Run to fine-tune from (``--init``); None trains from scratch.
    run_id : str, optional
        Id of the new run; default ``<model>-ui-<timestamp>``.
    extra_args : sequence of str
        More ``resx train`` options.
    """

    def __init__(self, ws: Workspace, model: str, epochs: int, init: str | None, run_id: str | None = None,
                 extra_args: Sequence[str] = ()):
        self.ws = ws
        self.model = model
        self.epochs = int(epochs)
        self.init = init
        self.run_id = run_id or f"{model}-ui-{time.strftime('%Y%m%d-%H%M%S')}"
        # --size-to-labels: core.learn.training.retrain, the one implementation shared with `resx train`
        # (an epoch sized to the consensus labels, early stopping on a validation split)
        self.cmd = [sys.executable, "-m", "core", "train", str(Path(ws.root).resolve()), "--model", model,
                    "--labels", "consensus", "--epochs", str(self.epochs), "--run-id", self.run_id, "--embed",
                    "--no-activate",  # the dashboard makes it active only when asked
                    *(["--size-to-labels"] if "--per-class" not in extra_args else []), *extra_args]
        if init:
            self.cmd += ["--init", init]
        self.log_path = Path(tempfile.gettempdir()) / f"resx-retrain-{os.getpid()}-{self.run_id}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def run_dir(self) -> Path:
        """The new run's folder (``runs/<run-id>/`` of the workspace)."""
        return self.ws.runs_dir / self.run_id

    def start(self) -> None:
        """Start the trainer (in its own session, so the server's signals do not reach it)."""
        with open(self.log_path, "wb") as fh:
            self.proc = subprocess.Popen(self.cmd, stdout=fh, stderr=subprocess.STDOUT,
                                         cwd=Path(self.ws.root).resolve(), start_new_session=True)
        self.started = time.time()
        log.info("retrain started: %s (log %s)", " ".join(self.cmd), self.log_path)

    def cancel(self) -> None:
        """Ask the trainer to stop (a ``STOP`` file in the run folder)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "STOP").write_text("cancelled from the dashboard\n")

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def progress(self) -> dict[str, Any]:
        """``progress.json`` of the run (empty dict before the first epoch)."""
        try:
            return json.loads((self.run_dir / "progress.json").read_text())
        except (OSError, ValueError):
            return {}

    def run_json(self) -> dict[str, Any]:
        """``run.json`` of the run (empty dict until the trainer writes it)."""
        try:
            return json.loads((self.run_dir / "run.json").read_text())
        except (OSError, ValueError):
            return {}

    def outcome(self) -> tuple[str, str]:
        """(status, message) once the process has ended: done | failed | cancelled."""
        info = self.run_json()
        code = self.proc.returncode if self.proc else None
        status = info.get("status") or ("done" if code == 0 else "failed")
        if code not in (0, None) and status == "done":
            status = "failed"
        if status == "running":
            status = "failed"
        message = info.get("error") or ""
        if status == "failed" and not message:
            try:
                tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:]
            except OSError:
                tail = []
            message = "\n".join(tail) or f"the training process exited with status {code}"
        return status, message
