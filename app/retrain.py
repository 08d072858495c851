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
        #: The session has shown the new run's map (before the trainer's acquisition scores).
        self.map_shown = False

    @property
    def run_dir(self) -> Path:
        """The new run's folder (``runs/<run-id>/`` of the workspace)."""
        return self.ws.runs_dir / self.run_id

    def start(self) -> None:
        """Start the trainer (in its own session, so the server's signals do not reach it).

        One retrain at a time per workspace, across sessions and server processes: an exclusive
        ``flock`` on ``runs/.retrain.lock``, shared with the trainer (its inherited descriptor),
        so it is held until the trainer has exited *and* this server has read its outcome
        (:meth:`release`); a killed server or trainer releases it with its process.

        Raises
        ------
        RuntimeError
            Another retrain of this workspace holds the lock (the message says which).
        """
        import fcntl

        self.ws.runs_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.ws.runs_dir / ".retrain.lock", "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            who = lock.read().strip() or "another session"
            lock.close()
            raise RuntimeError(f"a retrain of this workspace is already running ({who}); one at a time: "
                               "wait for it to end") from None
        lock.truncate(0)
        lock.write(f"run {self.run_id}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        lock.flush()
        self._lock = lock
        try:
            with open(self.log_path, "wb") as fh:
                self.proc = subprocess.Popen(self.cmd, stdout=fh, stderr=subprocess.STDOUT,
                                             cwd=Path(self.ws.root).resolve(), start_new_session=True,
                                             pass_fds=(lock.fileno(),))
        except BaseException:
            self.release()
            raise
        self.started = time.time()
        log.info("retrain started: %s (log %s)", " ".join(self.cmd), self.log_path)

    def release(self) -> None:
        """Let go of this server's hold on the workspace's retrain lock (the trainer's ends with it)."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()
            self._lock = None

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

    def map_ready(self) -> bool:
        """The run's refreshed map is written (``progress.json`` past its ``embedding`` phase, the
        embedding on disk) while the trainer may still compute the acquisition scores."""
        from core.latent.embedding import EMBEDDING_NPZ

        return (self.progress().get("phase") in ("scoring", "ready", "scores failed")
                and (self.run_dir / EMBEDDING_NPZ).exists())

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
