"""The inspectors' vote store: a durable, multi-user, append-only history of votes.

One interface (:class:`VoteStore`) over two databases (SQLAlchemy Core, parameterised queries
only): SQLite by default, PostgreSQL for a team on several servers; the tables, their migrations
and the engines are :mod:`core.votes.schema`, what a vote may contain :mod:`core.votes.validation`.
Consensus reads integer codes only and maps them to the galaxy ids once, with one array take
(about 4 s for 10^6 galaxies x 4 votes on a loaded 2-core machine, against ~140 s for reading
the votes as strings; ``bench_votes.py``).

History is append-only: nothing is ever updated or deleted. An inspector's *current* vote on a
galaxy is their latest vote whose action has not been undone. :meth:`VoteStore.undo_last`
records an ``undo`` action pointing at the inspector's last not-yet-undone cast; calling it
again steps further back (an undo cannot itself be undone: cast again instead).

Consensus and agreement are computed by :mod:`core.votes.consensus` and :mod:`core.votes.agreement`
(Skip votes never become a label and do not count toward ``n_votes``; see there).

Import files (``resx votes import``) are all-or-nothing: if any row names an unknown galaxy
or label, or is otherwise invalid, every problem is reported and nothing is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd
import sqlalchemy as sa

from core.labels import VOTE_LABELS
from core.votes.agreement import Agreement, compute_agreement
from core.votes.consensus import consensus_from_codes, consensus_from_votes
from core.votes.errors import VoteImportError, VoteStoreError
from core.votes.schema import (
    actions,
    galaxies,
    insert_ignore,
    inspectors,
    labels_table,
    make_engine,
    metadata,
    migrate,
    now_utc,
    votes_table,
    write_connection,
)
from core.votes.validation import (
    MAX_COMMENT,
    MAX_NAME,
    ROLES,
    SOURCES,
    UNAUTHENTICATED,
    check_galaxy_id,
    check_galaxy_ids,
    check_text,
    display_name,
    inspector_key,
    normalize_label,
)
from core.workspace.config import DEFAULT_CONFIG

__all__ = ["ImportReport", "VoteImportError", "VoteStore", "VoteStoreError", "migrate", "open_store"]

log = logging.getLogger(__name__)

#: Galaxy ids checked per query.
_CHUNK = 5000


def _positions(pks: np.ndarray, galaxy_pk: np.ndarray) -> np.ndarray:
    """Rows of the galaxies table (sorted keys ``pks``) of the keys ``galaxy_pk``: a subtraction
    when the keys are contiguous, else a search in the sorted keys."""
    if len(pks) and pks[-1] - pks[0] + 1 == len(pks):
        return galaxy_pk - pks[0]
    return np.searchsorted(pks, galaxy_pk)


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What :meth:`VoteStore.import_votes` wrote.

    ``n_skipped`` votes on ``skipped_ids`` (galaxies not in the workspace: removed by the cuts, or
    never in its catalog) were left out (``unknown="skip"``).
    """

    n_rows: int
    n_votes: int
    inspectors: list[str] = field(default_factory=list)
    new_inspectors: list[str] = field(default_factory=list)
    n_skipped: int = 0
    skipped_ids: list[str] = field(default_factory=list)


class VoteStore:
    """Inspectors, galaxies and votes in a SQLite or PostgreSQL database.

    Open one with :func:`open_store`. Every write is one committed transaction; many processes
    may write to the same store at once.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        From :func:`make_engine`; the schema is migrated on construction.
    config : dict, optional
        The ``votes`` section of the configuration (``min_votes``, ``fraction``, ``experts``).
    """

    def __init__(self, engine: sa.Engine, config: dict[str, Any] | None = None):
        self.engine = engine
        self.config = {**DEFAULT_CONFIG["votes"], **(config or {})}
        self.schema_version = migrate(engine)
        for name in self.config.get("experts") or []:
            self.add_inspector(name, "expert")

    # -- life cycle ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The database URL (password hidden)."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> "VoteStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VoteStore({self.url!r})"

    def _write(self):
        return write_connection(self.engine)

    # -- inspectors --------------------------------------------------------------------------
    def add_inspector(self, name: str, role: str = "inspector") -> None:
        """Register an inspector, or change the role of a registered one.

        Parameters
        ----------
        name : str
            Non-empty, at most :data:`MAX_NAME` characters. Identity is
            :func:`~core.votes.validation.inspector_key` (NFC, trimmed, case-folded): a name
            matching a registered one is that inspector; a new one is stored as typed (trimmed).
        role : {"inspector", "expert"}
            An expert's vote validates (overrides) the consensus of a galaxy.
        """
        name = check_text(name, "inspector name", MAX_NAME)
        if role not in ROLES:
            raise VoteStoreError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        with self._write() as conn:
            row = self._find_inspector(conn, name)
            if row is None:
                conn.execute(insert_ignore(conn, inspectors, "name").values(name=display_name(name), role=role,
                                                                           created_at=now_utc()))
                row = self._find_inspector(conn, name)
            if row.role != role:
                log.info("inspector %r: role %s -> %s", name, row.role, role)
                conn.execute(inspectors.update().where(inspectors.c.id == row.id).values(role=role))

    def inspectors(self) -> pd.DataFrame:
        """Registered inspectors: ``name``, ``role``, ``created_at`` (in registration order)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inspectors.c.name, inspectors.c.role, inspectors.c.created_at)
                                .order_by(inspectors.c.id)).all()
        df = pd.DataFrame(rows, columns=["name", "role", "created_at"])
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df

    @staticmethod
    def _find_inspector(conn: sa.Connection, name: str):
        """The registered inspector that ``name`` is (by :func:`inspector_key`), or None.

        An exact match wins; otherwise the oldest registered name with the same key (a store
        holding several such names -- see :meth:`inspector_collisions` -- keeps them apart until
        :meth:`merge_inspectors`).
        """
        row = conn.execute(sa.select(inspectors.c.id, inspectors.c.name, inspectors.c.role)
                           .where(inspectors.c.name == name)).first()
        if row is not None:
            return row
        key = inspector_key(name)
        rows = conn.execute(sa.select(inspectors.c.id, inspectors.c.name, inspectors.c.role)
                            .order_by(inspectors.c.id)).all()
        return next((r for r in rows if inspector_key(r.name) == key), None)

    def inspector_collisions(self) -> list[list[str]]:
        """Registered inspector names that are one person under :func:`inspector_key`.

        Returns
        -------
        list of list of str
            One list per identity with more than one registered name, oldest first (the name
            :meth:`merge_inspectors` keeps comes first). Empty when there is nothing to merge.
        """
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inspectors.c.id, inspectors.c.name).order_by(inspectors.c.id)).all()
        groups: dict[str, list[str]] = {}
        for _, name in rows:
            groups.setdefault(inspector_key(name), []).append(name)
        return [names for names in groups.values() if len(names) > 1]

    def merge_inspectors(self) -> list[list[str]]:
        """Merge the names of :meth:`inspector_collisions` into one inspector each, in one transaction.

        The oldest name of each group is kept; the votes and actions of the others become its
        own (so their current vote on a galaxy is the latest of all of them), the kept name is an
        expert if any of them was, and the other names are removed. This rewrites history, so
        it runs only when asked (``resx votes merge-inspectors``).

        Returns
        -------
        list of list of str
            The groups merged (kept name first); empty when there was nothing to merge.
        """
        merged: list[list[str]] = []
        with self._write() as conn:
            rows = conn.execute(sa.select(inspectors.c.id, inspectors.c.name, inspectors.c.role)
                                .order_by(inspectors.c.id)).all()
            groups: dict[str, list] = {}
            for r in rows:
                groups.setdefault(inspector_key(r.name), []).append(r)
            for group in groups.values():
                if len(group) < 2:
                    continue
                keep, others = group[0], [r.id for r in group[1:]]
                conn.execute(votes_table.update().where(votes_table.c.inspector_id.in_(others))
                             .values(inspector_id=keep.id))
                conn.execute(actions.update().where(actions.c.inspector_id.in_(others)).values(inspector_id=keep.id))
                if any(r.role == "expert" for r in group) and keep.role != "expert":
                    conn.execute(inspectors.update().where(inspectors.c.id == keep.id).values(role="expert"))
                conn.execute(inspectors.delete().where(inspectors.c.id.in_(others)))
                merged.append([r.name for r in group])
                log.warning("inspectors merged into %r: %s", keep.name, ", ".join(repr(r.name) for r in group[1:]))
        return merged

    def _inspector(self, conn: sa.Connection, name: Any) -> tuple[int, str]:
        name = check_text(name, "inspector name", MAX_NAME)
        row = self._find_inspector(conn, name)
        if row is None:
            raise VoteStoreError(f"unknown inspector {name!r}: register them first (add_inspector)")
        return row.id, row.role

    # -- galaxies ----------------------------------------------------------------------------
    def add_galaxies(self, ids: Iterable[Any]) -> int:
        """Register galaxy ids (those already known are ignored); return how many were new.

        Ids already registered are recognised in one vectorised lookup against the (cached)
        galaxies table, so re-opening a workspace of 10⁶ galaxies validates and writes nothing.
        """
        values = np.asarray([ids] if isinstance(ids, (str, bytes)) else list(ids) if not hasattr(ids, "__array__")
                            else ids, dtype=object).ravel()
        if values.size:
            with self.engine.connect() as conn:
                _, registered = self._galaxy_table(conn)
            if len(registered):
                values = values[~pd.Index(values, dtype=object).isin(pd.Index(registered, dtype=object))]
        ids = check_galaxy_ids(values)
        if not ids:
            return 0
        with self._write() as conn:
            known = self._known(conn, ids)
            new = [g for g in ids if g not in known]
            if new:  # another writer may be adding the same ids right now
                result = conn.execute(insert_ignore(conn, galaxies, "id"), [{"id": g} for g in new])
                n_new = result.rowcount if result.rowcount >= 0 else len(new)
            else:
                n_new = 0
        return n_new

    def galaxy_ids(self) -> np.ndarray:
        """Every registered galaxy id, in registration order (the catalog's order)."""
        with self.engine.connect() as conn:
            ids = conn.execute(sa.select(galaxies.c.id).order_by(galaxies.c.pk)).scalars().all()
        return np.array(ids, dtype=object)

    @staticmethod
    def _known(conn: sa.Connection, ids: list[str]) -> dict[str, int]:
        """The registered ones of ``ids``, with their integer keys (``galaxies.pk``)."""
        known: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            known.update(conn.execute(sa.select(galaxies.c.id, galaxies.c.pk).where(galaxies.c.id.in_(chunk))).all())
        return known

    def _check_galaxies(self, conn: sa.Connection, ids: list[str]) -> dict[str, int]:
        known = self._known(conn, ids)
        unknown = [g for g in ids if g not in known]
        if unknown:
            shown = ", ".join(repr(g[:60]) for g in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise VoteStoreError(
                f"{len(unknown)} unknown galaxy id(s), not in this workspace: {shown}{more}; nothing was written")
        return known

    # -- voting ------------------------------------------------------------------------------
    def cast(self, ids: Iterable[Any] | str, inspector: str, label: str, comment: str = "",
             source: str = "ui") -> int:
        """Record one inspector's vote for ``label`` on one or many galaxies, in one transaction.

        Parameters
        ----------
        ids : str or iterable of str
            Galaxy id(s); repeated ids count once. All must be registered.
        inspector : str
            A registered inspector.
        label : str
            One of :data:`core.labels.VOTE_LABELS` (case-insensitive).
        comment : str
            Free text (at most :data:`MAX_COMMENT` characters), stored verbatim on each vote.
        source : {"ui", "import", "simulated", "ui-unauth"}
            ``ui-unauth``: cast from a dashboard without authentication; it never counts as an
            expert's vote, whatever the name.

        Returns
        -------
        int
            Number of votes written. The whole call is one action for :meth:`undo_last`.

        Raises
        ------
        VoteStoreError
            Unknown label, galaxy or inspector, or invalid text; nothing is written then.
        """
        label = normalize_label(label)
        comment = check_text(comment, "comment", MAX_COMMENT, allow_empty=True)
        if source not in SOURCES:
            raise VoteStoreError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        ids = check_galaxy_ids(ids)
        if not ids:
            return 0
        with self._write() as conn:
            inspector_id, _ = self._inspector(conn, inspector)
            pks = self._check_galaxies(conn, ids)
            self._insert_action(conn, inspector_id, ids, [label] * len(ids), [comment] * len(ids), source, pks)
        return len(ids)

    @staticmethod
    def _insert_action(conn: sa.Connection, inspector_id: int, ids: list[str], labels: list[str],
                       comments: list[str], source: str, pks: dict[str, int]) -> int:
        now = now_utc()
        codes = dict(conn.execute(sa.select(labels_table.c.name, labels_table.c.code)).all())
        action_id = conn.execute(actions.insert().values(
            inspector_id=inspector_id, kind="cast", undoes=None, source=source, n_votes=len(ids),
            created_at=now)).inserted_primary_key[0]
        # "ui-unauth" is recorded on the action (its source column has no CHECK constraint); the
        # votes table's CHECK predates it, so its votes say "ui" and readers take the action's source.
        vote_source = "ui" if source == UNAUTHENTICATED else source
        conn.execute(votes_table.insert(), [
            {"action_id": action_id, "galaxy_id": g, "inspector_id": inspector_id, "label": lab,
             "comment": com, "source": vote_source, "created_at": now, "galaxy_pk": pks[g],
             "label_code": codes[lab]}
            for g, lab, com in zip(ids, labels, comments)
        ])
        return action_id

    def undo_last(self, inspector: str) -> int:
        """Undo the inspector's last cast that is not yet undone (a bulk cast is one action).

        The undo is recorded as a new action; the votes stay in the history. The inspector's
        current vote on those galaxies becomes their previous one (or none).

        Returns
        -------
        int
            Number of votes undone (0 when there was nothing to undo).
        """
        undo = actions.alias("undo")
        with self._write() as conn:
            inspector_id, _ = self._inspector(conn, inspector)
            if conn.dialect.name == "postgresql":
                # Serialise undos of one inspector (SQLite's BEGIN IMMEDIATE already does): a
                # concurrent undo waits here, then sees this one's row and steps further back.
                conn.execute(sa.select(inspectors.c.id).where(inspectors.c.id == inspector_id).with_for_update())
            last = conn.execute(
                sa.select(actions.c.id, actions.c.n_votes, actions.c.source)
                .where(actions.c.inspector_id == inspector_id, actions.c.kind == "cast",
                       ~sa.exists().where(undo.c.undoes == actions.c.id))
                .order_by(actions.c.id.desc()).limit(1)
            ).first()
            if last is None:
                return 0
            conn.execute(actions.insert().values(
                inspector_id=inspector_id, kind="undo", undoes=last.id, source=last.source,
                n_votes=last.n_votes, created_at=now_utc()))
        return int(last.n_votes)

    # -- reading -----------------------------------------------------------------------------
    _VOTE_COLUMNS = ["id", "inspector", "label", "comment", "created_at", "source", "role"]

    def _live_votes(self):
        undo = actions.alias("undo")
        return (
            sa.select(votes_table, actions.c.source.label("action_source"))
            .join(actions, votes_table.c.action_id == actions.c.id)
            .where(~sa.exists().where(undo.c.undoes == actions.c.id))
        )

    def _current_query(self, galaxy_ids: list[str] | None = None):
        live = self._live_votes()
        if galaxy_ids is not None:
            live = live.where(votes_table.c.galaxy_id.in_(galaxy_ids))
        ranked = live.add_columns(
            sa.func.row_number().over(
                partition_by=(votes_table.c.galaxy_id, votes_table.c.inspector_id),
                order_by=votes_table.c.id.desc(),
            ).label("rank")
        ).subquery("ranked")
        return (
            sa.select(ranked.c.galaxy_id, inspectors.c.name, ranked.c.label, ranked.c.comment,
                      ranked.c.created_at, ranked.c.action_source, inspectors.c.role, ranked.c.id)
            .join(inspectors, inspectors.c.id == ranked.c.inspector_id)
            .where(ranked.c.rank == 1)
            .order_by(ranked.c.id)
        )

    def _frame(self, queries) -> pd.DataFrame:
        """The current votes of one query or several (in vote order), as a frame."""
        rows = []
        with self.engine.connect() as conn:
            for query in queries if isinstance(queries, list) else [queries]:
                rows.extend(conn.execute(query).all())
        df = pd.DataFrame(rows, columns=self._VOTE_COLUMNS + ["vote"])
        if isinstance(queries, list) and len(queries) > 1:
            df = df.sort_values("vote", kind="stable", ignore_index=True)
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        return df.drop(columns="vote")

    def current_votes(self, ids: Iterable[Any] | None = None) -> pd.DataFrame:
        """Each inspector's current vote on each galaxy, oldest first.

        Parameters
        ----------
        ids : iterable of str, optional
            Only the votes on these galaxies (read through the index on the galaxy id: cheap
            for a few thousand ids however many votes the store holds). Unknown ids have no
            votes. Default: every galaxy.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``inspector``, ``label``, ``comment``, ``created_at`` (UTC),
            ``source`` and ``role`` (the inspector's role now).

        See Also
        --------
        current_labels : id, inspector and label only, from integer codes (much faster for a
            whole campaign).
        """
        if ids is None:
            return self._frame(self._current_query())
        ids = check_galaxy_ids(ids)
        return self._frame([self._current_query(galaxy_ids=ids[start:start + _CHUNK])
                            for start in range(0, max(len(ids), 1), _CHUNK)])

    def current_labels(self, ids: Iterable[Any] | None = None) -> pd.DataFrame:
        """Each inspector's current label on each galaxy: ``id``, ``inspector``, ``label``, ``expert``.

        The same votes as :meth:`current_votes` without comments, times and sources, read as
        integer codes (:meth:`_current_codes`) and mapped to names with lookup tables: about
        20x faster for 10⁴–10⁶ votes, for views that refresh on every vote (the dashboard).
        ``expert`` is whether the vote validates (an expert's, cast with a known identity: not
        ``ui-unauth``). Order: oldest vote first. With ``ids``, only those galaxies (read through
        :meth:`current_votes`, for a view that updates after its own vote).
        """
        if ids is not None:
            cur = self.current_votes(ids)
            experts = {inspector_key(n) for n in self.config.get("experts") or []}
            named = np.fromiter((inspector_key(n) in experts for n in cur["inspector"]), dtype=bool, count=len(cur))
            expert = (cur["role"].eq("expert").to_numpy() | named) & cur["source"].ne(UNAUTHENTICATED).to_numpy()
            return cur[["id", "inspector", "label"]].assign(expert=expert)
        with self.engine.connect() as conn:
            galaxy_pk, label_code, inspector_id, unauth = self._current_codes(conn)
            pks, ids = self._galaxy_table(conn)
            label_lut = self._label_lut(conn)
            expert_lut = self._expert_lut(conn)
            people = conn.execute(sa.select(inspectors.c.id, inspectors.c.name)).all()
        inspector_names = np.empty(max((i for i, _ in people), default=0) + 1, dtype=object)
        for i, name in people:
            inspector_names[i] = name
        position = _positions(pks, galaxy_pk)
        return pd.DataFrame({"id": ids[position], "inspector": inspector_names[inspector_id],
                             "label": np.asarray(VOTE_LABELS, dtype=object)[label_lut[label_code]],
                             "expert": expert_lut[inspector_id] & ~unauth})

    def votes_for(self, galaxy_id: str) -> pd.DataFrame:
        """The current votes on one galaxy (columns as :meth:`current_votes`)."""
        galaxy_id = check_galaxy_id(galaxy_id)
        with self.engine.connect() as conn:
            self._check_galaxies(conn, [galaxy_id])
        return self.current_votes([galaxy_id])

    def history(self) -> pd.DataFrame:
        """Every vote ever cast, oldest first, with ``action`` (id) and ``undone`` (bool) columns."""
        undo = actions.alias("undo")
        query = (
            sa.select(votes_table.c.galaxy_id, inspectors.c.name, votes_table.c.label,
                      votes_table.c.comment, votes_table.c.created_at, actions.c.source,
                      inspectors.c.role, votes_table.c.action_id,
                      sa.exists().where(undo.c.undoes == votes_table.c.action_id).label("undone"))
            .join(inspectors, inspectors.c.id == votes_table.c.inspector_id)
            .join(actions, actions.c.id == votes_table.c.action_id)
            .order_by(votes_table.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        df = pd.DataFrame(rows, columns=self._VOTE_COLUMNS + ["action", "undone"])
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
        df["undone"] = df["undone"].astype(bool)
        return df

    # -- consensus and agreement -------------------------------------------------------------
    def consensus(self, min_votes: int | None = None, fraction: float | None = None,
                  ids: Iterable[Any] | None = None, experts: bool = True) -> pd.DataFrame:
        """The consensus of every registered galaxy (registration order).

        Parameters
        ----------
        min_votes, fraction : optional
            Override the configured rule (``votes.min_votes``, default 3; ``votes.fraction``,
            default 2/3). See :mod:`core.votes.consensus` for the rule, Skip votes and experts.
        ids : iterable of str, optional
            Only these galaxies (each once, in the order given): reads only their votes, so
            updating a view after a vote costs the same however large the campaign. An id
            that is not registered raises :class:`VoteStoreError`.
        experts : bool
            Apply the expert override (the default). False: experts' votes count like anyone's
            (a dashboard served without authentication). A ``ui-unauth`` vote never overrides.

        Returns
        -------
        pandas.DataFrame
            ``id``, ``label`` (class, FitQuality or ``"undecided"``), ``n_votes`` (non-skip),
            one count column per label of :data:`core.labels.VOTE_LABELS`, ``expert``.

        Notes
        -----
        Reads only integer codes of the current votes (:meth:`_current_codes`), maps galaxy
        keys to rows of the galaxies table (whose ids are cached between calls: the table is
        append-only) and applies :func:`core.votes.consensus.consensus_from_codes`.
        """
        min_votes = int(self.config["min_votes"] if min_votes is None else min_votes)
        fraction = float(self.config["fraction"] if fraction is None else fraction)
        if ids is not None:
            ids = check_galaxy_ids(ids)
            with self.engine.connect() as conn:
                self._check_galaxies(conn, ids)
                expert_lut = self._expert_lut(conn)
                people = dict(conn.execute(sa.select(inspectors.c.name, inspectors.c.id)).all())
            votes = self.current_votes(ids)  # oldest first: the last expert vote wins
            expert = expert_lut[[people[name] for name in votes["inspector"]]] if len(votes) else np.zeros(0, bool)
            expert = expert & (votes["source"].to_numpy() != UNAUTHENTICATED) & experts if len(votes) else expert
            return consensus_from_votes(votes["id"].to_numpy(), votes["label"].to_numpy(), expert, ids=ids,
                                        labels=VOTE_LABELS, min_votes=min_votes, fraction=fraction)
        with self.engine.connect() as conn:
            # Votes first: every galaxy they name is then in the galaxies read next (append-only).
            galaxy_pk, label_code, inspector_id, unauth = self._current_codes(conn)
            pks, ids = self._galaxy_table(conn)
            label_lut = self._label_lut(conn)
            expert_lut = self._expert_lut(conn)
        # Map codes to positions once: galaxy keys -> rows of the galaxies table, label codes ->
        # vocabulary.
        expert = expert_lut[inspector_id] & ~unauth & experts
        return consensus_from_codes(
            _positions(pks, galaxy_pk), label_lut[label_code], expert, ids=ids, labels=VOTE_LABELS,
            min_votes=min_votes, fraction=fraction)

    # Votes per chunk of the integer export of the votes table; packing bound (62 bits).
    _CODES_CHUNK = 2_000_000
    _PACK_LIMIT = 2**62

    def _galaxy_table(self, conn: sa.Connection) -> tuple[np.ndarray, np.ndarray]:
        """Galaxy keys (sorted) and ids, in registration order; cached between calls.

        The galaxies table is append-only, so only rows with a key above the cached ones are
        fetched; a count that does not match (a concurrent insert committed a lower key late)
        re-reads the table.
        """
        count, top = conn.execute(sa.select(sa.func.count(), sa.func.max(galaxies.c.pk))).one()
        cached_pks, cached_ids = getattr(self, "_galaxy_cache", (np.zeros(0, np.int64), np.zeros(0, object)))
        if len(cached_pks) == count and (count == 0 or cached_pks[-1] == top):
            return cached_pks, cached_ids
        after = int(cached_pks[-1]) if len(cached_pks) else None
        # The driver's own cursor: ~2.5x faster than SQLAlchemy rows for 10^6 ids.
        cursor = conn.connection.cursor()
        try:
            if after is None:
                cursor.execute("SELECT pk, id FROM galaxies ORDER BY pk")
            else:
                cursor.execute("SELECT pk, id FROM galaxies WHERE pk > %d ORDER BY pk" % after)
            rows = cursor.fetchall()
        finally:
            cursor.close()
        new_pks = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        new_ids = np.empty(len(rows), dtype=object)
        new_ids[:] = [r[1] for r in rows]
        pks, ids = np.concatenate([cached_pks, new_pks]), np.concatenate([cached_ids, new_ids])
        if len(pks) != count:  # a key below the cached ones appeared: read everything again
            self._galaxy_cache = (np.zeros(0, np.int64), np.zeros(0, object))
            return self._galaxy_table(conn)
        self._galaxy_cache = (pks, ids)
        return pks, ids

    def _label_lut(self, conn: sa.Connection) -> np.ndarray:
        """Stored label code -> position in :data:`core.labels.VOTE_LABELS`."""
        rows = conn.execute(sa.select(labels_table.c.code, labels_table.c.name)
                            .where(labels_table.c.code.is_not(None))).all()
        lut = np.full(max((r[0] for r in rows), default=0) + 1, -1, dtype=np.int64)
        for code, name in rows:
            if name in VOTE_LABELS:
                lut[code] = VOTE_LABELS.index(name)
        return lut

    def _expert_lut(self, conn: sa.Connection) -> np.ndarray:
        """Inspector id -> expert (role expert, or named in the ``votes.experts`` setting)."""
        experts = {inspector_key(n) for n in self.config.get("experts") or []}
        rows = conn.execute(sa.select(inspectors.c.id, inspectors.c.name, inspectors.c.role)).all()
        lut = np.zeros(max((r[0] for r in rows), default=0) + 1, dtype=bool)
        for i, name, role in rows:
            lut[i] = role == "expert" or inspector_key(name) in experts
        return lut

    def _current_codes(self, conn: sa.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Galaxy key, label code, inspector id and "unauthenticated" of every current vote, oldest first.

        Reads integers only. Fetching millions of rows one Python tuple at a time costs ~1 us a
        row, so the database concatenates each chunk of ``(vote id, packed codes)`` into one
        text (``group_concat`` / ``string_agg``) that numpy parses in C. The packed code is
        ``((galaxy_pk * n_label_codes + label_code) * n_inspector_ids + inspector_id) * 2 + unauth``
        (``unauth``: the vote's source is ``ui-unauth``) when that fits in 62 bits, else the four
        numbers are sent apart. Votes of undone actions are
        left out in SQL; the latest vote per galaxy and inspector is kept in numpy.
        """
        lo, hi, n_lab, n_insp, top_pk = conn.execute(sa.select(
            sa.func.min(votes_table.c.id), sa.func.max(votes_table.c.id),
            sa.select(sa.func.max(labels_table.c.code)).scalar_subquery(),
            sa.select(sa.func.max(inspectors.c.id)).scalar_subquery(),
            sa.select(sa.func.max(galaxies.c.pk)).scalar_subquery())).one()
        empty = np.zeros(0, np.int64)
        if lo is None:
            return empty, empty, empty, np.zeros(0, bool)
        n_lab, n_insp = int(n_lab or 0) + 1, int(n_insp or 0) + 1
        packed = (int(top_pk or 0) + 1) * n_lab * n_insp * 2 < self._PACK_LIMIT
        unauth_sql = (f"(CASE WHEN v.action_id IN (SELECT u.id FROM actions u WHERE u.source = '{UNAUTHENTICATED}') "
                      "THEN 1 ELSE 0 END)")
        cols = ["v.id", f"((v.galaxy_pk * {n_lab} + v.label_code) * {n_insp} + v.inspector_id) * 2 + {unauth_sql}"] \
            if packed else ["v.id", "v.galaxy_pk", "v.label_code", "v.inspector_id", unauth_sql]
        # One aggregate per column: every aggregate of a query steps through the same rows in
        # the same order, so the texts line up (one long text per row would cost twice as much).
        if conn.dialect.name == "postgresql":
            aggs = ", ".join(f"string_agg(({c})::text, ',' ORDER BY v.id)" for c in cols)
        else:
            aggs = ", ".join(f"group_concat({c})" for c in cols)
        sql = (f"SELECT {aggs} FROM votes v WHERE v.id BETWEEN :lo AND :hi "
               "AND v.galaxy_pk IS NOT NULL AND v.label_code IS NOT NULL "
               "AND v.action_id NOT IN (SELECT a.undoes FROM actions a WHERE a.undoes IS NOT NULL)")
        parts = []
        for start in range(int(lo), int(hi) + 1, self._CODES_CHUNK):
            texts = conn.execute(sa.text(sql), {"lo": start, "hi": start + self._CODES_CHUNK - 1}).one()
            if texts[0]:
                columns = [np.fromstring(t, dtype=np.int64, sep=",") for t in texts]
                if len({len(c) for c in columns}) != 1:
                    raise VoteStoreError(f"{self.url}: the vote export of votes {start}.. is inconsistent")
                parts.append(np.stack(columns, axis=1))
        table = np.concatenate(parts) if parts else np.zeros((0, len(cols)), np.int64)
        vote_id = table[:, 0]
        if len(vote_id) > 1 and not (np.diff(vote_id) > 0).all():  # order is not promised
            table = table[np.argsort(vote_id, kind="stable")]
        if packed:
            code, unauth = table[:, 1] // 2, table[:, 1] % 2
            inspector_id, rest = code % n_insp, code // n_insp
            galaxy_pk, label_code = rest // n_lab, rest % n_lab
        else:
            galaxy_pk, label_code, inspector_id, unauth = table[:, 1], table[:, 2], table[:, 3], table[:, 4]
        # The latest vote per (galaxy, inspector): the last of each run of a stable sort.
        key = galaxy_pk * n_insp + inspector_id
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        last = np.ones(len(key), dtype=bool)
        last[:-1] = sorted_key[1:] != sorted_key[:-1]
        if not last.all():
            keep = np.sort(order[last])
            galaxy_pk, label_code, inspector_id, unauth = (galaxy_pk[keep], label_code[keep], inspector_id[keep],
                                                           unauth[keep])
        return galaxy_pk, label_code, inspector_id, unauth.astype(bool)

    def agreement(self) -> Agreement:
        """Fleiss' kappa, per-inspector agreement and confusion matrices (:mod:`core.votes.agreement`)."""
        return compute_agreement(self.current_labels(), self.consensus())

    # -- import ------------------------------------------------------------------------------
    def import_votes(self, table: pd.DataFrame, source: str = "import", name: str = "<table>", *,
                     unknown: str = "error") -> ImportReport:
        """Import many inspectors' votes at once, all or nothing.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``id``, ``inspector``, ``label`` and optionally ``comment``; one vote per row,
            in chronological order (a later row for the same galaxy and inspector wins).
        source : {"import", "simulated", "ui"}
        name : str
            How errors refer to the table (the file name).
        unknown : {"error", "skip"}
            A vote on a galaxy not in this workspace (e.g. one the sample cuts removed): an
            invalid row (``"error"``: nothing is imported), or left out and counted in the report
            (``"skip"``). Any other invalid row is an error either way.

        Returns
        -------
        ImportReport
            Unknown inspectors are registered with role ``inspector``; each inspector's rows
            become one action (one :meth:`undo_last` undoes that inspector's import).

        Raises
        ------
        VoteImportError
            Listing every invalid row (unknown galaxy or label, empty or over-long text);
            nothing is written.
        """
        if source not in SOURCES:
            raise VoteStoreError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
        if unknown not in ("error", "skip"):
            raise VoteStoreError(f"unknown must be 'error' or 'skip', not {unknown!r}")
        missing = [c for c in ("id", "inspector", "label") if c not in table.columns]
        if missing:
            raise VoteImportError(name, [f"missing column(s): {', '.join(missing)} "
                                         f"(found: {', '.join(map(str, table.columns))})"])
        comments = table["comment"] if "comment" in table.columns else pd.Series([""] * len(table))
        problems: list[str] = []
        rows: list[tuple[str, str, str, str]] = []
        row_numbers: list[int] = []
        for i, (gid, insp, lab, com) in enumerate(zip(table["id"], table["inspector"], table["label"], comments)):
            try:
                gid = check_galaxy_id(gid)
                insp = check_text(insp, "inspector name", MAX_NAME)
                lab = normalize_label(lab)
                com = check_text("" if com is None or (isinstance(com, float) and np.isnan(com)) else com,
                            "comment", MAX_COMMENT, allow_empty=True)
            except VoteStoreError as exc:
                problems.append(f"row {i + 1}: {exc}")
                continue
            rows.append((gid, insp, lab, com))
            row_numbers.append(i + 1)
        skipped: dict[str, None] = {}
        n_skipped = 0
        with self._write() as conn:
            known = self._known(conn, list(dict.fromkeys(r[0] for r in rows)))
            kept = []
            for number, r in zip(row_numbers, rows):
                if r[0] in known:
                    kept.append(r)
                elif unknown == "skip":
                    skipped[r[0]] = None
                    n_skipped += 1
                else:
                    problems.append(f"row {number}: unknown galaxy id {r[0][:60]!r}, not in this workspace")
            rows = kept
            if problems:
                problems.sort(key=lambda p: int(p.split(":")[0].split()[1]))
                raise VoteImportError(name, problems)
            # one inspector per identity (inspector_key): " Alice " and "alice" are one person
            registered = conn.execute(sa.select(inspectors.c.id, inspectors.c.name).order_by(inspectors.c.id)).all()
            exact = {r.name: r.id for r in registered}
            by_key: dict[str, int] = {}
            for r in registered:
                by_key.setdefault(inspector_key(r.name), r.id)
            names: list[str] = []  # as registered, one per identity, in first-seen order
            new: list[str] = []
            id_of: dict[str, int] = {}  # name in the file -> inspector id
            for n in dict.fromkeys(r[1] for r in rows):
                iid = exact.get(n, by_key.get(inspector_key(n)))
                if iid is None:
                    stored = display_name(n)
                    conn.execute(insert_ignore(conn, inspectors, "name").values(
                        name=stored, role="inspector", created_at=now_utc()))
                    iid = conn.execute(sa.select(inspectors.c.id).where(inspectors.c.name == stored)).scalar_one()
                    by_key[inspector_key(n)] = iid
                    exact[stored] = iid
                    new.append(stored)
                id_of[n] = iid
            name_of = {iid: name for name, iid in exact.items()}
            by_inspector: dict[int, list[tuple[str, str, str, str]]] = {}
            for r in rows:
                by_inspector.setdefault(id_of[r[1]], []).append(r)
            for iid, mine in by_inspector.items():
                names.append(name_of.get(iid, mine[0][1]))
                self._insert_action(conn, iid, [r[0] for r in mine], [r[2] for r in mine],
                                    [r[3] for r in mine], source, known)
        return ImportReport(n_rows=len(table), n_votes=len(rows), inspectors=names, new_inspectors=new,
                            n_skipped=n_skipped, skipped_ids=list(skipped))

    # -- maintenance -------------------------------------------------------------------------
    def version(self) -> tuple[int, int]:
        """(number of actions, latest action id): changes with every committed vote, undo or import.

        Cheap (two aggregates over the primary key of the small actions table), so a view can
        poll it every few seconds and re-read the votes only when it changed. The count also
        catches a PostgreSQL transaction that took a lower id but committed after a higher one.
        """
        with self.engine.connect() as conn:
            count, top = conn.execute(sa.select(sa.func.count(), sa.func.max(actions.c.id))).one()
        return int(count or 0), int(top or 0)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``"ok"`` when sound); ``"ok"`` for other databases
        after checking that every table can be read."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                return "\n".join(r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check").all())
            for table in metadata.sorted_tables:
                conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            return "ok"


def open_store(workspace_or_url: Any, config: dict[str, Any] | None = None,
               galaxy_ids: Iterable[Any] | None = None) -> VoteStore:
    """Open (creating or migrating as needed) a vote store.

    Parameters
    ----------
    workspace_or_url : Workspace, path or str
        A :class:`core.workspace.workspace.Workspace`, a workspace folder, or a database URL
        (``sqlite:///FILE``, ``postgresql://user@host:port/db``). For a workspace, the store is
        the one its config names (``votes.database_url``, default ``votes.sqlite`` in the
        folder), its ``votes`` settings apply, and the catalog's galaxy ids are registered so
        votes on any other id are rejected.
    config : dict, optional
        Overrides of the ``votes`` configuration section.
    galaxy_ids : iterable of str, optional
        The workspace catalog's ids when the caller has read them already (saves reading the
        catalog again: ~1 s for 10⁶ galaxies). Ignored for a database URL.

    Returns
    -------
    VoteStore
    """
    if isinstance(workspace_or_url, (str, sa.URL)) and "://" in str(workspace_or_url):
        return VoteStore(make_engine(workspace_or_url), config)
    from core.workspace.workspace import Workspace, WorkspaceError

    workspace = workspace_or_url if isinstance(workspace_or_url, Workspace) else Workspace.open(workspace_or_url)
    store = VoteStore(make_engine(workspace.votes_url), {**workspace.config.get("votes", {}), **(config or {})})
    try:
        ids = workspace.read_catalog()["id"] if galaxy_ids is None else galaxy_ids
    except WorkspaceError as exc:
        log.warning("vote store: no galaxy ids registered from the catalog (%s)", exc)
    else:
        n_new = store.add_galaxies(ids)
        if n_new:
            log.info("vote store: registered %d galaxies from %s", n_new, workspace.catalog_path)
    return store
