"""The ``resx`` command: the parser, and the one place where errors become messages.

Each subcommand is a module of this package (``core.cli.<command>``) with a ``register(sub)``
function that adds its parser and sets ``func`` to its handler. Handlers parse nothing and catch
nothing: they call the engine and print what it returns. The engine is imported inside the
handlers, so ``resx --help`` does not pay for TensorFlow.

Exit status:

* 0 — done;
* 1 — the run finished but some items failed (per-galaxy or per-image errors, recorded);
* 2 — an expected failure (:class:`core.errors.ResxError`, or the operating system refusing a
  file), printed as ``resx <command>: <message>`` on stderr; also argparse's usage errors;
* 3 — an unexpected error (a bug): one line on stderr and the path of the log that holds the
  traceback; ``--verbose`` prints the traceback too;
* 130 — interrupted (Ctrl-C); a training run cancelled from the dashboard.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Iterator

from core.errors import ResxError

log = logging.getLogger("core.cli")

EPILOG = "Run `resx COMMAND --help` for the options of each command."

#: The subcommands, in the order ``resx --help`` lists them (one module of core.cli each).
COMMANDS: tuple[str, ...] = ("simulate", "fit", "ingest", "prep", "catalog", "train", "runs", "embed",
                             "votes", "queue", "demo", "serve")
#: Commands that load TensorFlow: its native start-up lines are kept out of the terminal.
TENSORFLOW_COMMANDS = frozenset({"train", "embed", "demo", "queue"})

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    """The ``resx`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="resx",
        description="Residual Explorer: classify the residual substructure of galaxies after "
        "single-Sérsic fits, with deep learning and human inspection.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug); tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"core.cli.{name}").register(sub)
    return parser


def log_path() -> Path:
    """The file where ``resx`` logs tracebacks and TensorFlow's start-up output.

    ``$RESX_LOG`` when set, else ``resx.log`` in the per-user log folder (platformdirs).
    """
    env = os.environ.get("RESX_LOG")
    if env:
        return Path(env)
    import platformdirs

    return platformdirs.user_log_path("residual-explorer", appauthor=False) / "resx.log"


def _open_log() -> Path | None:
    """Attach a DEBUG file handler to the root logger; None when no log file can be written."""
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return path


@contextlib.contextmanager
def native_stderr_to(path: Path | None) -> Iterator[None]:
    """Send what native code writes to file descriptor 2 into ``path`` for the block.

    TensorFlow's C++ start-up lines ("Could not find cuda drivers", oneDNN notices) are
    written before any Python logging is set up and ignore ``TF_CPP_MIN_LOG_LEVEL``; they are
    noise for a user without a GPU, and kept in the log for one who wonders.
    """
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as fh:
            os.dup2(fh.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _load_tensorflow_quietly(log_file: Path | None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_stderr_to(log_file):
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            pass  # the command itself reports it
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _command_name(args: argparse.Namespace) -> str:
    parts = [args.command] + ([args.votes_command] if getattr(args, "votes_command", None) else [])
    return "resx " + " ".join(parts)


class _ConsoleFormatter(logging.Formatter):
    """``resx <command>: warning: <message>`` for warnings and errors; ``name: message`` below."""

    def __init__(self, prog: str):
        super().__init__()
        self.prog = prog

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{self.prog}: {record.levelname.lower()}: {message}"
        return f"{record.levelname} {record.name}: {message}"


class _ConsoleHandler(logging.StreamHandler):
    """Writes through ``tqdm.write``, so log lines and progress bars do not mix."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


@contextlib.contextmanager
def _logging(prog: str, verbose: int) -> Iterator[Path | None]:
    """Console logging on this call's stderr, and the log file, for one ``main()`` call."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    root = logging.getLogger()
    console = _ConsoleHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(_ConsoleFormatter(prog))
    old_level = root.level
    root.addHandler(console)
    root.setLevel(min(level, logging.INFO))
    path = _open_log()
    try:
        yield path
    finally:
        for handler in list(root.handlers):
            if handler is console or isinstance(handler, logging.FileHandler):
                handler.close()
                root.removeHandler(handler)
        root.setLevel(old_level)


def main(argv: list[str] | None = None) -> int:
    """Run ``resx`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    name = _command_name(args)
    with _logging(name, args.verbose) as log_file:
        try:
            if args.command in TENSORFLOW_COMMANDS and not args.verbose:
                _load_tensorflow_quietly(log_file)
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            print(f"{name}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (ResxError, OSError) as exc:  # expected, or a file the user named cannot be used
            log.info("%s failed", name, exc_info=True)
            print(f"{name}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback in the log
            log.info("%s: unexpected error\n%s", name, traceback.format_exc())
            where = f"the traceback is in {log_file}" if log_file else "run again with --verbose for the traceback"
            print(f"{name}: unexpected error: {type(exc).__name__}: {exc} ({where}; please report it)",
                  file=sys.stderr)
            if args.verbose:
                traceback.print_exc()
            return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
