"""The command line's one error model: ``resx <command>: <message>`` on stderr, exit 2 for an
expected failure, 1 for a finished run with per-item failures, 3 for a bug (traceback in the log)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli.main import EXIT_BUG, EXIT_ERROR, main
from core.errors import MissingDependencyError, ResxError

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def log_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "resx.log"
    monkeypatch.setenv("RESX_LOG", str(path))
    return path


def test_every_expected_failure_derives_from_resx_error():
    from core.fitting.fit import SersicFitError
    from core.io.catalog import CatalogError
    from core.io.galfit import GalfitBlockError
    from core.io.images import ImageReadError
    from core.io.stamps import StampStoreError
    from core.latent.embedding import EmbeddingError
    from core.learn.runs import RunError
    from core.learn.training import TrainingError
    from core.prep.metrics import MetricError
    from core.prep.residual import PrepError
    from core.segmentation import SegmentationError
    from core.simulation.errors import SimulationError
    from core.votes.files import VoteFileError
    from core.votes.store import VoteImportError, VoteStoreError
    from core.workspace.config import ConfigError
    from core.workspace.workspace import WorkspaceError

    for cls in (SersicFitError, CatalogError, GalfitBlockError, ImageReadError, StampStoreError, EmbeddingError,
                RunError, TrainingError, MetricError, PrepError, SimulationError, VoteFileError, VoteImportError,
                VoteStoreError, WorkspaceError, MissingDependencyError, SegmentationError, ConfigError):
        assert issubclass(cls, ResxError), cls


def test_an_expected_failure_is_one_line_with_the_command_name(tmp_path, capsys):
    assert main(["runs", str(tmp_path / "nope")]) == EXIT_ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("resx runs: No workspace at ") and err.count("\n") == 1
    assert main(["votes", "stats", str(tmp_path / "nope")]) == EXIT_ERROR
    assert capsys.readouterr().err.startswith("resx votes stats: No workspace at ")


def test_a_bug_is_one_line_and_the_traceback_goes_to_the_log(tmp_path, capsys, monkeypatch, log_file):
    import core.cli.runs

    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(core.cli.runs, "run", broken)  # the parser is built by each main() call
    assert main(["runs", str(tmp_path)]) == EXIT_BUG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("resx runs: unexpected error: TypeError: unsupported operand")
    assert str(log_file) in err
    logged = log_file.read_text()
    assert "Traceback (most recent call last)" in logged and "unsupported operand" in logged

    assert main(["-v", "runs", str(tmp_path)]) == EXIT_BUG
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_missing_optional_dependency_names_the_extra(tmp_path, capsys, monkeypatch):
    from core.workspace.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", {"votes": {"database_url": "postgresql://nobody@127.0.0.1:1/none"}})
    monkeypatch.setitem(sys.modules, "psycopg", None)  # "not installed": importing it raises ImportError
    assert main(["votes", "stats", str(ws.root)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "psycopg" in err and "pip install 'residual-explorer[postgres]'" in err


def test_serve_prints_where_and_runs_panel(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert main(["serve", str(tmp_path / "ws"), "--port", "5123"]) == 0
    out, err = capsys.readouterr()
    assert "http://localhost:5123/app" in out
    assert "no workspace at" in err  # it does not exist yet: the page will say how to build one
    (cmd,) = calls
    assert cmd[:4] == [sys.executable, "-m", "panel", "serve"]
    assert cmd[cmd.index("--port") + 1] == "5123" and cmd[-2:] == ["--workspace", str((tmp_path / "ws").resolve())]


def test_demo_refuses_too_few_galaxies(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "ws"), "--n", "10"]) == EXIT_ERROR
    assert capsys.readouterr().err == "resx demo: the demo needs at least 1000 galaxies, not 10\n"


def test_tensorflow_start_up_lines_are_not_shown(tmp_path):
    """`resx embed` imports TensorFlow: its native CUDA/absl lines go to the log, not the terminal."""
    env = {**os.environ, "RESX_LOG": str(tmp_path / "resx.log")}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run([sys.executable, "-m", "core", "embed", str(tmp_path / "nope")], capture_output=True,
                          text=True, env=env, cwd=PROJECT, timeout=300)
    assert proc.returncode == EXIT_ERROR
    assert proc.stderr == f"resx embed: No workspace at {tmp_path / 'nope'}. Build the demo with " \
                          f"`resx demo {tmp_path / 'nope'}`, or create one from GALFIT blocks with " \
                          f"`resx ingest SOURCE {tmp_path / 'nope'}`.\n"
    assert proc.stdout == ""


def test_a_config_file_that_is_not_toml_is_an_expected_error(tmp_path, capsys):
    bad = tmp_path / "over.toml"
    bad.write_text("[cuts\nhmag_max = 24\n")
    assert main(["ingest", str(tmp_path / "survey"), str(tmp_path / "ws"), "--config", str(bad)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith(f"resx ingest: {bad}: not valid TOML") and "unexpected" not in err


def test_serve_with_auth_warns_when_no_lead_is_configured(tmp_path, capsys, monkeypatch):
    from core.workspace.config import write_config
    from core.workspace.workspace import Workspace

    monkeypatch.setattr(subprocess, "call", lambda cmd: 0)
    ws = Workspace.create(tmp_path / "ws")
    users = tmp_path / "users.json"
    users.write_text('{"ann": "a", "bob": "b"}')
    auth = ["--basic-auth", str(users), "--cookie-secret", "s3cret"]
    assert main(["serve", str(ws.root), *auth]) == 0
    err = capsys.readouterr().err
    assert f"app.leads in {ws.root / Workspace.CONFIG} is empty" in err and "nobody has the lead role" in err
    assert main(["serve", str(ws.root)]) == 0  # without auth the loopback is the lead: nothing to warn about
    assert "app.leads" not in capsys.readouterr().err
    ws.config["app"]["leads"] = ["ann"]
    write_config(ws.config, ws.root / Workspace.CONFIG)
    assert main(["serve", str(ws.root), *auth]) == 0
    assert "app.leads" not in capsys.readouterr().err
