"""The vote database: its tables, their versioned migrations, and the engines for SQLite and PostgreSQL.

* **SQLite** (default): ``votes.sqlite`` in the workspace. Every connection sets
  ``journal_mode=WAL`` (readers never block the writer), ``busy_timeout`` (writers queue
  instead of failing), ``synchronous=FULL`` (a committed vote survives a crash of the process
  and of the machine) and ``foreign_keys=ON``. Write transactions start with
  ``BEGIN IMMEDIATE`` so concurrent writers serialise cleanly instead of dead-locking.
* **PostgreSQL**: any ``postgresql://`` URL (config ``votes.database_url``), through psycopg 3
  (the ``postgres`` extra).

Tables (versioned; :data:`MIGRATIONS` are applied in order and recorded in ``schema_version``):
``labels`` (the vocabulary, :data:`core.labels.VOTE_LABELS`), ``inspectors`` (name, role
``inspector`` | ``expert``), ``galaxies`` (the workspace's ids: a vote on any other id is
rejected), ``actions`` (one row per cast — a bulk vote on thousands of galaxies is one action —
or per undo) and ``votes`` (galaxy, inspector, label, comment, created_at, source
``ui`` | ``import`` | ``simulated``). Since schema 3 every vote also carries integer codes,
``galaxy_pk`` (``galaxies.pk``) and ``label_code`` (``labels.code``, the order of
:data:`core.labels.VOTE_LABELS`), so the store's consensus reads integers only.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event

from core.errors import require
from core.labels import VOTE_LABELS
from core.votes.errors import VoteStoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "make_engine", "migrate"]

log = logging.getLogger(__name__)

#: How long a writer waits for another one before giving up (seconds).
BUSY_TIMEOUT_S = 60.0

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER only
_Time = sa.DateTime(timezone=True)

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", _Time, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
)
labels_table = sa.Table(
    "labels", metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("code", sa.Integer, nullable=True, unique=True),  # schema 3: integer label code
)
inspectors = sa.Table(
    "inspectors", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.CheckConstraint("role IN ('inspector', 'expert')", name="ck_inspectors_role"),
)
galaxies = sa.Table(
    "galaxies", metadata,
    sa.Column("pk", _BigId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.Text, nullable=False, unique=True),
)
actions = sa.Table(
    "actions", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("inspector_id", sa.Integer, sa.ForeignKey("inspectors.id"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("undoes", _BigId, sa.ForeignKey("actions.id"), nullable=True, unique=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("n_votes", sa.Integer, nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    sa.CheckConstraint("kind IN ('cast', 'undo')", name="ck_actions_kind"),
    sa.CheckConstraint("(kind = 'undo') = (undoes IS NOT NULL)", name="ck_actions_undoes"),
)
votes_table = sa.Table(
    "votes", metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("action_id", _BigId, sa.ForeignKey("actions.id"), nullable=False),
    sa.Column("galaxy_id", sa.Text, sa.ForeignKey("galaxies.id"), nullable=False),
    sa.Column("inspector_id", sa.Integer, sa.ForeignKey("inspectors.id"), nullable=False),
    sa.Column("label", sa.String(32), sa.ForeignKey("labels.name"), nullable=False),
    sa.Column("comment", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", _Time, nullable=False),
    # Schema 3: integer codes of the galaxy (galaxies.pk) and label (labels.code), written
    # with every vote so consensus reads integers only (nullable: added by ALTER TABLE).
    sa.Column("galaxy_pk", _BigId, sa.ForeignKey("galaxies.pk"), nullable=True),
    sa.Column("label_code", sa.Integer, sa.ForeignKey("labels.code"), nullable=True),
    sa.CheckConstraint("source IN ('ui', 'import', 'simulated')", name="ck_votes_source"),
)

#: Columns added by migration 3 (left out of the tables migration 1 creates).
_ADDED_IN_3 = {"labels": ("code",), "votes": ("galaxy_pk", "label_code")}


def _migrate_1(conn: sa.Connection) -> None:
    # The tables as they were at version 1: the declarations above less later columns.
    v1 = sa.MetaData()
    for table in (labels_table, inspectors, galaxies, actions, votes_table):
        later = _ADDED_IN_3.get(table.name, ())
        columns = [c._copy() for c in table.columns if c.name not in later]
        checks = [sa.CheckConstraint(c.sqltext, name=c.name) for c in table.constraints
                  if isinstance(c, sa.CheckConstraint)]
        foreign = [sa.ForeignKeyConstraint([c.name for c in fk.columns], [e.target_fullname for e in fk.elements],
                                           name=fk.name)
                   for fk in table.foreign_key_constraints if not {c.name for c in fk.columns} & set(later)]
        sa.Table(table.name, v1, *columns, *checks, *foreign)
    v1.create_all(conn)


def _migrate_2(conn: sa.Connection) -> None:
    # Current votes: latest per (galaxy, inspector); undo: last action per inspector.
    # Plain DDL (not sa.Index objects, which would attach to the tables and be created by
    # migration 1 from then on).
    for ddl in (
        "CREATE INDEX ix_votes_galaxy_inspector ON votes (galaxy_id, inspector_id, id)",
        "CREATE INDEX ix_votes_action ON votes (action_id)",
        "CREATE INDEX ix_actions_inspector ON actions (inspector_id, id)",
    ):
        conn.exec_driver_sql(ddl)


def _migrate_3(conn: sa.Connection) -> None:
    # Integer label codes (the vocabulary's order) and integer galaxy keys on every vote.
    conn.exec_driver_sql("ALTER TABLE labels ADD COLUMN code INTEGER")
    for code, name in enumerate(VOTE_LABELS):
        conn.execute(labels_table.update().where(labels_table.c.name == name).values(code=code))
    others = conn.execute(sa.select(labels_table.c.name).where(labels_table.c.code.is_(None))
                          .order_by(labels_table.c.name)).scalars().all()
    for code, name in enumerate(others, start=len(VOTE_LABELS)):
        conn.execute(labels_table.update().where(labels_table.c.name == name).values(code=code))
    conn.exec_driver_sql("CREATE UNIQUE INDEX ux_labels_code ON labels (code)")
    big = "INTEGER" if conn.dialect.name == "sqlite" else "BIGINT"
    conn.exec_driver_sql(f"ALTER TABLE votes ADD COLUMN galaxy_pk {big} REFERENCES galaxies (pk)")
    conn.exec_driver_sql("ALTER TABLE votes ADD COLUMN label_code INTEGER REFERENCES labels (code)")
    conn.exec_driver_sql(
        "UPDATE votes SET galaxy_pk = (SELECT pk FROM galaxies WHERE galaxies.id = votes.galaxy_id), "
        "label_code = (SELECT code FROM labels WHERE labels.name = votes.label)")


#: Ordered schema migrations: (version, description, function applied in one transaction).
MIGRATIONS: list[tuple[int, str, Callable[[sa.Connection], None]]] = [
    (1, "tables: labels, inspectors, galaxies, actions, votes", _migrate_1),
    (2, "indexes for current votes and undo", _migrate_2),
    (3, "integer galaxy keys and label codes on votes", _migrate_3),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]
_PG_MIGRATION_LOCK = 0x72657378  # "resx": advisory lock key serialising migrations


# ---------------------------------------------------------------------------------------------
# Engines
# ---------------------------------------------------------------------------------------------
def sqlite_engine(url: sa.URL) -> sa.Engine:
    kwargs: dict[str, Any] = {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    if url.database in (None, "", ":memory:"):
        kwargs["poolclass"] = sa.pool.StaticPool
        kwargs["connect_args"]["check_same_thread"] = False
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # every new connection
        # Let SQLAlchemy's "begin" event (below) issue BEGIN, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        mode = "IMMEDIATE" if conn.get_execution_options().get("resx_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_engine(url: str | sa.URL) -> sa.Engine:
    """A SQLAlchemy engine for a vote store URL (``sqlite:///FILE`` or ``postgresql://...``).

    Raises
    ------
    VoteStoreError
        For a malformed URL or an unsupported database.
    core.errors.MissingDependencyError
        For a PostgreSQL URL when psycopg (the ``postgres`` extra) is not installed.
    """
    try:
        url = sa.make_url(url)
    except Exception as exc:
        raise VoteStoreError(f"{url!r} is not a database URL: {exc}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        return sqlite_engine(url)
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgresql+psycopg"):  # psycopg 3: the `postgres` extra
            require("psycopg", "postgres", "a PostgreSQL vote store")
            url = url.set(drivername="postgresql+psycopg")
        return sa.create_engine(url, pool_pre_ping=True)
    raise VoteStoreError(f"unsupported vote database {backend!r}: use sqlite:///FILE or postgresql://...")


def migrate(engine: sa.Engine, target: int | None = None) -> int:
    """Bring the schema up to ``target`` (default: :data:`SCHEMA_VERSION`); return the version.

    Safe to call from many processes at once: the check and the migrations run in one
    exclusive transaction (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock).
    """
    target = SCHEMA_VERSION if target is None else target
    with write_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        if current > SCHEMA_VERSION:
            raise VoteStoreError(
                f"the vote store {engine.url.render_as_string(hide_password=True)} has schema version "
                f"{current}, newer than this Residual Explorer understands ({SCHEMA_VERSION}); upgrade it"
            )
        for version, description, function in MIGRATIONS:
            if current < version <= target:
                log.info("vote store: migrating to schema version %d (%s)", version, description)
                function(conn)
                conn.execute(schema_version.insert().values(
                    version=version, applied_at=now_utc(), description=description))
                current = version
        if current >= 1:
            known = set(conn.execute(sa.select(labels_table.c.name)).scalars())
            missing = [lab for lab in VOTE_LABELS if lab not in known]
            if missing and current >= 3:
                start = conn.execute(sa.select(sa.func.max(labels_table.c.code))).scalar()
                start = -1 if start is None else start
                conn.execute(labels_table.insert(), [{"name": lab, "code": start + 1 + k}
                                                     for k, lab in enumerate(missing)])
            elif missing:
                conn.execute(sa.insert(labels_table).values(name=sa.bindparam("name")),
                             [{"name": lab} for lab in missing])
    return current


def insert_ignore(conn: sa.Connection, table: sa.Table, key: str):
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` for the connection's database."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing(index_elements=[key])


#: Further attempts to take SQLite's write lock after a ``BEGIN IMMEDIATE`` gave up ("database is
#: locked": another writer held it for all of :data:`BUSY_TIMEOUT_S`, e.g. on a machine so loaded
#: that fsyncs queue), with waits of :data:`LOCK_BACKOFF_S` x 2**attempt between them.
LOCK_RETRIES = 3
LOCK_BACKOFF_S = 0.5


def _is_locked(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def _begin(conn: sa.Connection) -> sa.RootTransaction:
    """Begin a write transaction, retrying while SQLite's write lock cannot be taken.

    A write transaction takes the lock at ``BEGIN IMMEDIATE`` (the ``begin`` event above), before
    any statement of the caller runs, so trying again repeats nothing. PostgreSQL never raises
    this (its row locks wait) and is not retried.
    """
    import time

    for attempt in range(LOCK_RETRIES + 1):
        try:
            return conn.begin()
        except sa.exc.OperationalError as exc:
            if attempt == LOCK_RETRIES or not _is_locked(exc):
                raise
            wait = LOCK_BACKOFF_S * 2 ** attempt
            log.warning("vote store write lock not taken after %.0f s (%s); attempt %d of %d in %.1f s",
                        BUSY_TIMEOUT_S, exc.orig, attempt + 2, LOCK_RETRIES + 1, wait)
            if conn.in_transaction():
                conn.rollback()
            time.sleep(wait)
    raise AssertionError("unreachable")


@contextmanager
def write_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite, retried while locked)."""
    with engine.connect() as conn:
        conn.execution_options(resx_write=True)
        with _begin(conn):
            yield conn


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
