"""A throw-away PostgreSQL server for the tests (the ``pg_server`` fixture, registered in conftest).

Started once per test session with ``initdb`` + ``pg_ctl`` on a temporary folder and a free port
(as the ``postgres`` user when the tests run as root, since ``initdb`` refuses root), stopped and
removed at the end. Without PostgreSQL installed the tests that use it skip with the reason;
``.ci/run`` installs Debian's ``postgresql`` so CI runs them. :func:`pg_database` makes a fresh
database on it per test.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


# ---------------------------------------------------------------------------------------------
# A throw-away PostgreSQL server
# ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server():
    """Base URL of a PostgreSQL server private to this test session."""
    if not INITDB:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                    "`.ci/run` installs Debian's postgresql to run these tests")
    bindir = Path(INITDB[-1]).parent
    prefix: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and `runuser` is missing: cannot start PostgreSQL as 'postgres'")
        prefix = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="resx-pg-"))
    if owner is not None:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    data, logfile, port = root / "data", root / "server.log", _free_port()
    run = lambda *cmd, **kw: subprocess.run(prefix + [str(c) for c in cmd], capture_output=True,  # noqa: E731
                                             text=True, timeout=120, **kw)
    try:
        res = run(bindir / "initdb", "-D", data, "-U", "resx", "--auth=trust", "-E", "UTF8", "--no-locale")
        if res.returncode:
            pytest.skip(f"initdb failed: {res.stderr.strip()[-500:]}")
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=60"
        res = run(bindir / "pg_ctl", "-D", data, "-l", logfile, "-o", opts, "-w", "-t", "60", "start")
        if res.returncode:
            log = logfile.read_text() if logfile.exists() else ""
            pytest.skip(f"pg_ctl start failed: {res.stderr.strip()[-300:]} {log[-300:]}")
        yield f"postgresql+psycopg://resx@127.0.0.1:{port}"
    finally:
        if (data / "postmaster.pid").exists():
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def pg_database(pg_server: str):
    """Create a fresh database; return its URL and a function that drops it."""
    name = "resx_" + uuid.uuid4().hex[:16]  # a fixed alphabet: safe as an identifier
    admin = sa.create_engine(f"{pg_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop():
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return f"{pg_server}/{name}", drop
