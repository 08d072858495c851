"""The vote store, run against SQLite and against a real PostgreSQL server started here.

The PostgreSQL server is started once per session with ``initdb`` + ``pg_ctl`` on a temporary
folder and a free port (as the ``postgres`` user when the tests run as root, since ``initdb``
refuses root), and stopped and removed at the end. Without PostgreSQL installed those tests
skip with the reason; ``.ci/run`` installs Debian's ``postgresql`` so CI runs them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from core.labels import CLASSES, VOTE_LABELS
from core.votes import schema as S
from core.votes import store as V
from core.votes import validation as VV
from core.votes.store import VoteStoreError, migrate, open_store
from tests.pg_server import pg_database

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """An empty vote database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'votes.sqlite'}"
        return
    pg = request.getfixturevalue("pg_server")
    url, drop = pg_database(pg)
    yield url
    drop()


@pytest.fixture
def store(url):
    s = open_store(url)
    s.add_galaxies([f"g{i}" for i in range(10)])
    for name in ("ann", "bob", "cyd", "dee"):
        s.add_inspector(name)
    s.add_inspector("eve", "expert")
    yield s
    s.close()


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------
def test_new_store_has_latest_schema_and_connection_settings(url):
    s = open_store(url)
    assert s.schema_version == S.SCHEMA_VERSION == 3
    with s.engine.connect() as conn:
        versions = conn.execute(sa.select(S.schema_version.c.version).order_by(S.schema_version.c.version))
        assert list(versions.scalars()) == [1, 2, 3]
        labels = dict(conn.execute(sa.select(S.labels_table.c.name, S.labels_table.c.code)).all())
        assert labels == {name: code for code, name in enumerate(VOTE_LABELS)}
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == S.BUSY_TIMEOUT_S * 1000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    # Reopening changes nothing.
    assert open_store(url).schema_version == 3
    s.close()


def test_migrates_an_old_schema_and_refuses_a_newer_one(url):
    engine = S.make_engine(url)
    assert migrate(engine, target=1) == 1
    insp = sa.inspect(engine)
    assert "ix_votes_galaxy_inspector" not in {ix["name"] for ix in insp.get_indexes("votes")}
    engine.dispose()
    s = open_store(url)
    assert s.schema_version == 3
    assert "ix_votes_galaxy_inspector" in {ix["name"] for ix in sa.inspect(s.engine).get_indexes("votes")}
    with s.engine.begin() as conn:
        conn.execute(S.schema_version.insert().values(version=99, applied_at=S.now_utc(), description="future"))
    s.close()
    with pytest.raises(VoteStoreError, match="newer"):
        open_store(url)


def test_migration_3_fills_integer_codes_of_existing_votes(url):
    # A version-2 store (no integer columns) with votes written the version-2 way.
    engine = S.make_engine(url)
    assert migrate(engine, target=2) == 2
    assert "galaxy_pk" not in {c["name"] for c in sa.inspect(engine).get_columns("votes")}
    now = S.now_utc()
    with engine.begin() as conn:
        conn.execute(S.galaxies.insert(), [{"id": g} for g in ("a", "b", "c")])
        conn.execute(sa.insert(S.inspectors).values(name="ann", role="inspector", created_at=now))
        conn.execute(sa.insert(S.inspectors).values(name="bob", role="inspector", created_at=now))
        conn.execute(sa.insert(S.inspectors).values(name="cyd", role="expert", created_at=now))
        conn.execute(sa.insert(S.actions).values(inspector_id=1, kind="cast", source="ui", n_votes=3, created_at=now))
        rows = [("b", 1, "Core"), ("b", 2, "Core"), ("b", 3, "Clean"), ("a", 1, "Peculiar"), ("a", 2, "Skip")]
        conn.execute(sa.insert(S.votes_table).values(
            action_id=1, galaxy_id=sa.bindparam("g"), inspector_id=sa.bindparam("i"), label=sa.bindparam("lab"),
            comment="", source="ui", created_at=now), [{"g": g, "i": i, "lab": lab} for g, i, lab in rows])
    engine.dispose()
    s = open_store(url)
    assert s.schema_version == 3
    with s.engine.connect() as conn:
        codes = conn.execute(sa.select(S.votes_table.c.galaxy_id, S.votes_table.c.galaxy_pk, S.votes_table.c.label,
                                       S.votes_table.c.label_code).order_by(S.votes_table.c.id)).all()
    pk = {"a": 1, "b": 2, "c": 3}
    assert [(r[1], r[3]) for r in codes] == [(pk[g], VOTE_LABELS.index(lab)) for g, _, lab in rows]
    cons = s.consensus().set_index("id")
    assert list(cons.index) == ["a", "b", "c"]
    assert cons.loc["b", "label"] == "Clean" and cons.loc["b", "expert"]  # cyd is an expert
    assert (cons.loc["b", "Core"], cons.loc["a", "Skip"], cons.loc["a", "n_votes"]) == (2, 1, 1)
    s.cast("c", "ann", "General")  # new votes get their codes from the store
    assert s.consensus().set_index("id").loc["c", "General"] == 1
    s.close()


def test_foreign_keys_are_enforced_by_the_database(store):
    # Even bypassing the Python checks, the database refuses a vote on an unknown galaxy.
    with pytest.raises(sa.exc.IntegrityError):
        with store.engine.begin() as conn:
            conn.execute(S.votes_table.insert().values(
                action_id=1, galaxy_id="nope", inspector_id=1, label="Clean", comment="",
                source="ui", created_at=S.now_utc()))


# ---------------------------------------------------------------------------------------------
# Casting, current votes, undo
# ---------------------------------------------------------------------------------------------
def test_cast_and_current_vote_is_the_latest(store):
    assert store.cast(["g0", "g1", "g1"], "ann", "Core", comment="bright nucleus") == 2
    assert store.cast("g0", "ann", "clean") == 1  # case-insensitive; overrides ann's g0 vote
    cur = store.current_votes()
    assert list(cur.columns[:6]) == ["id", "inspector", "label", "comment", "created_at", "source"]
    got = {(r.id, r.inspector): (r.label, r.comment) for r in cur.itertuples()}
    assert got == {("g0", "ann"): ("Clean", ""), ("g1", "ann"): ("Core", "bright nucleus")}
    assert set(cur["source"]) == {"ui"}
    assert str(cur["created_at"].dt.tz) == "UTC"
    assert len(store.history()) == 3
    assert list(store.votes_for("g1")["inspector"]) == ["ann"]
    assert store.votes_for("g5").empty


INVALID = [
    (lambda s: s.cast(["g0", "zzz"], "ann", "Core"), "unknown galaxy"),
    (lambda s: s.cast(["g0"], "ann", "Spiral"), "unknown label"),
    (lambda s: s.cast(["g0"], "nobody", "Core"), "unknown inspector"),
    (lambda s: s.cast(["g0"], "ann", "Core", source="web"), "source"),
    (lambda s: s.add_inspector("zed", "boss"), "role"),
]


def test_invalid_votes_are_rejected_and_nothing_is_written(store):
    for call, message in INVALID:
        with pytest.raises(VoteStoreError, match=message):
            call(store)
    assert len(store.history()) == 0
    assert "zed" not in set(store.inspectors()["name"])


def test_bulk_cast_of_thousands_is_one_action_and_undo_restores_previous(store):
    ids = [f"b{i}" for i in range(3000)]
    store.add_galaxies(ids)
    store.cast(ids[:10], "ann", "Clean")
    assert store.cast(ids, "ann", "Peculiar") == 3000
    assert (store.current_votes()["label"] == "Peculiar").all()
    assert store.undo_last("ann") == 3000
    cur = store.current_votes()
    assert len(cur) == 10 and (cur["label"] == "Clean").all()
    assert store.undo_last("ann") == 10
    assert store.undo_last("ann") == 0  # nothing left
    hist = store.history()
    assert len(hist) == 3010 and hist["undone"].all()  # append-only: undone votes stay
    # Undo touches only that inspector.
    store.cast("g0", "bob", "Core")
    store.cast("g0", "ann", "Core")
    store.undo_last("bob")
    assert list(store.current_votes()["inspector"]) == ["ann"]


def test_add_galaxies_and_inspectors_are_idempotent(store):
    assert store.add_galaxies(["g0", "g1", "new"]) == 1
    assert list(store.galaxy_ids()[-2:]) == ["g9", "new"]
    # known ids in any form (numpy strings, bytes, a repeat) are skipped; others are validated
    assert store.add_galaxies(np.array(["g2", "new", "n2", "n2"])) == 1
    assert store.add_galaxies([b"g3", b"n3", 7]) == 2
    assert list(store.galaxy_ids()[-4:]) == ["new", "n2", "n3", "7"]
    assert store.add_galaxies(np.array(["g0", "n3"])) == 0
    with pytest.raises(VoteStoreError, match="must not be empty"):
        store.add_galaxies(["g1", "  "])
    other = open_store(store.url)  # a second writer
    other.add_galaxies(["from-other"])
    assert store.add_galaxies(["from-other", "n4"]) == 1  # the cache notices the other writer
    other.close()
    store.add_inspector("ann")
    store.add_inspector("ann", "expert")  # promotion
    roles = dict(zip(store.inspectors()["name"], store.inspectors()["role"]))
    assert roles["ann"] == "expert" and len(roles) == 5


# ---------------------------------------------------------------------------------------------
# Consensus through the store
# ---------------------------------------------------------------------------------------------
def test_store_consensus_two_thirds_rule_and_expert(store):
    store.cast(["g0", "g1", "g2"], "ann", "Core")
    store.cast(["g0", "g1", "g2"], "bob", "Core")
    store.cast(["g0"], "cyd", "Clean")  # g0: 2-1 -> Core
    store.cast(["g1"], "cyd", "Clean")
    store.cast(["g1"], "dee", "Clean")  # g1: 2-2 -> undecided
    store.cast(["g2"], "cyd", "Skip")  # g2: 2 non-skip votes < 3 -> undecided
    store.cast(["g3"], "eve", "Asymmetric")  # g3: expert alone validates
    store.cast(["g1"], "eve", "General")  # g1: expert overrides the 2-2 split
    c = store.consensus().set_index("id")
    assert c.loc["g0", "label"] == "Core" and c.loc["g0", "n_votes"] == 3
    assert c.loc["g1", "label"] == "General" and bool(c.loc["g1", "expert"])
    assert c.loc["g1", ["Core", "Clean", "General"]].tolist() == [2, 2, 1] and c.loc["g1", "n_votes"] == 5
    assert c.loc["g2", "label"] == "undecided" and c.loc["g2", "n_votes"] == 2 and c.loc["g2", "Skip"] == 1
    assert c.loc["g3", "label"] == "Asymmetric" and bool(c.loc["g3", "expert"])
    assert c.loc["g9", "label"] == "undecided" and c.loc["g9", "n_votes"] == 0
    assert len(c) == 10 and list(c.columns[:2]) == ["label", "n_votes"]
    # Configurable: 2 votes suffice with min_votes=2.
    assert store.consensus(min_votes=2).set_index("id").loc["g2", "label"] == "Core"
    ag = store.agreement()
    assert ag.n_galaxies == 3  # g0, g1, g2 have >= 2 non-skip votes
    row = ag.per_inspector.set_index("inspector").loc["cyd"]
    assert (row["n_compared"], row["n_agree"], row["n_skip"]) == (2, 0, 1)


@pytest.mark.parametrize("packed, chunk", [(True, 1_000_000), (False, 7)])
def test_store_consensus_from_integer_codes_equals_the_string_rule(url, packed, chunk, monkeypatch):
    """Random votes with re-votes, undos, experts, awkward ids and a gap in the galaxy keys:
    the integer path of VoteStore.consensus equals the string rule on current_votes()."""
    from core.votes.consensus import consensus_from_votes

    if not packed:
        monkeypatch.setattr(V.VoteStore, "_PACK_LIMIT", 0)  # three numbers per vote
    monkeypatch.setattr(V.VoteStore, "_CODES_CHUNK", chunk)  # many chunks
    rng = np.random.default_rng(3)
    s = open_store(url, config={"experts": ["zed"]})
    ids = [f"g,{i}'\"" if i % 7 == 0 else f"g{i}" for i in range(40)]
    s.add_galaxies(ids[:30])
    with s.engine.begin() as conn:  # a gap in the keys (e.g. a PostgreSQL sequence skipped values)
        conn.execute(S.galaxies.insert().values(pk=1000, id="gap"))
    names = ["ann", "bob", "cyd", "dee", "eve"]
    for n in names:
        s.add_inspector(n)
    s.add_inspector("ola", "expert")
    s.add_inspector("zed")  # expert by configuration
    first = s.consensus()  # fills the galaxy cache; later galaxies must still appear
    assert list(first["id"]) == ids[:30] + ["gap"]
    s.add_galaxies(ids[30:])
    everyone = names + ["ola", "zed"]
    for step in range(60):
        who = everyone[rng.integers(len(everyone))] if step % 5 else names[step % 5]
        chosen = rng.choice(ids + ["gap"], rng.integers(1, 12), replace=False).tolist()
        s.cast(chosen, who, VOTE_LABELS[rng.choice(len(VOTE_LABELS), p=[.4, .2, .15, .1, .05, .05, .05])],
               source="ui-unauth" if step % 4 == 3 else "ui")  # a typed name without auth: never an expert's
        if step % 9 == 8:
            s.undo_last(who)
    votes = s.current_votes()
    experts = (votes["role"] == "expert") | (votes["inspector"] == "zed")
    validates = experts & (votes["source"] != "ui-unauth")
    assert validates.any() and (experts & ~validates).any()  # some experts' votes were typed names without auth
    expected = consensus_from_votes(votes["id"], votes["label"], validates, ids=s.galaxy_ids(), min_votes=2)
    got = s.consensus(min_votes=2)
    assert sorted(got["id"]) == sorted(ids + ["gap"])
    pd.testing.assert_frame_equal(got, expected)
    assert got["expert"].any() and (got["label"] != "undecided").any() and (got["n_votes"] > 3).any()
    # The fast name-only read and the per-galaxy reads (the dashboard's after each vote) agree.
    pd.testing.assert_frame_equal(s.current_labels(), votes[["id", "inspector", "label"]].assign(expert=validates),
                                  check_dtype=False)
    if not packed:
        monkeypatch.setattr(V, "_CHUNK", 3)  # ids in many chunks
    subset = [ids[5], "gap", ids[0], ids[5], ids[17], ids[39]]  # a repeat is read once
    part = s.consensus(min_votes=2, ids=subset)
    pd.testing.assert_frame_equal(part, got.set_index("id").loc[list(dict.fromkeys(subset))].reset_index())
    pd.testing.assert_frame_equal(s.current_votes(subset),
                                  votes[votes["id"].isin(subset)].reset_index(drop=True))
    assert len(s.current_votes([])) == 0
    with pytest.raises(VoteStoreError, match="unknown galaxy"):
        s.consensus(ids=["nope"])
    s.close()


def test_concurrent_undos_by_one_inspector_each_undo_a_different_action(store):
    import threading

    for i in range(6):
        store.cast([f"g{i}"], "ann", "Core")
    barrier, results, errors = threading.Barrier(6), [], []

    def undo():
        barrier.wait()
        try:
            results.append(store.undo_last("ann"))
        except Exception as exc:  # pragma: no cover - the failure this test guards against
            errors.append(exc)

    threads = [threading.Thread(target=undo) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and results == [1] * 6
    assert len(store.current_votes()) == 0 and store.history()["undone"].all()


def test_config_experts_are_registered_as_experts(url):
    s = open_store(url, config={"experts": ["Prof. X"], "min_votes": 2})
    assert dict(zip(s.inspectors()["name"], s.inspectors()["role"]))["Prof. X"] == "expert"
    s.add_galaxies(["a"])
    s.cast("a", "Prof. X", "Core")
    c = s.consensus()
    assert c.loc[0, "label"] == "Core" and bool(c.loc[0, "expert"])
    s.close()


# ---------------------------------------------------------------------------------------------
# Hostile input
# ---------------------------------------------------------------------------------------------
HOSTILE = [
    "Robert'); DROP TABLE votes;--",
    '" OR 1=1 --',
    "x'; DELETE FROM inspectors WHERE 'a'='a",
    "名前 ünïcødé 🙂 \u202e",
    "tab\tnew\nline",
    "%s %(name)s :param ? $1",
    "a" * VV.MAX_NAME,
]


def test_hostile_text_is_stored_verbatim_never_executed(store):
    store.add_galaxies(HOSTILE)
    for name in HOSTILE:
        store.add_inspector(name)
    for i, name in enumerate(HOSTILE):
        store.cast(HOSTILE, name, CLASSES[i % 5], comment=HOSTILE[-1 - i] + "x" * (VV.MAX_COMMENT - 300))
    cur = store.current_votes()
    assert len(cur) == len(HOSTILE) ** 2
    assert set(cur["inspector"]) == set(HOSTILE) and set(cur["id"]) == set(HOSTILE)
    for i, name in enumerate(HOSTILE):
        mine = cur[cur["inspector"] == name]
        assert set(mine["comment"]) == {HOSTILE[-1 - i] + "x" * (VV.MAX_COMMENT - 300)}
    assert set(store.inspectors()["name"]) >= set(HOSTILE)
    assert store.integrity_check() == "ok"
    assert len(store.votes_for(HOSTILE[0])) == len(HOSTILE)


HOSTILE_REJECTED = [
    lambda s: s.add_inspector(""),
    lambda s: s.add_inspector("   "),
    lambda s: s.add_inspector("a" * (VV.MAX_NAME + 1)),
    lambda s: s.add_inspector("nul\x00byte"),
    lambda s: s.add_inspector(None),
    lambda s: s.add_galaxies([""]),
    lambda s: s.add_galaxies(["x\x00"]),
    lambda s: s.cast("g0", "ann", "Core", comment="c" * (VV.MAX_COMMENT + 1)),
    lambda s: s.cast("g0", "ann", "Core', 'x'); --"),
    lambda s: s.cast("g0", "ann", ""),
    lambda s: s.cast("g0", "ann", None),
]


def test_hostile_text_rejected_cleanly(store):
    for call in HOSTILE_REJECTED:
        with pytest.raises(VoteStoreError):
            call(store)
    assert len(store.history()) == 0 and len(store.inspectors()) == 5
    assert len(store.galaxy_ids()) == 10
    assert store.integrity_check() == "ok"


def test_import_all_or_nothing(store):
    import pandas as pd

    good = pd.DataFrame({"id": ["g0", "g1", "g0"], "inspector": ["new1", "new1", "ann"],
                         "label": ["Core", "clean", "Skip"], "comment": ["", "it's fine", ""]})
    rep = store.import_votes(good, source="simulated")
    assert (rep.n_votes, rep.new_inspectors, rep.inspectors) == (3, ["new1"], ["new1", "ann"])
    cur = store.current_votes()
    assert len(cur) == 3 and set(cur["source"]) == {"simulated"}
    assert dict(zip(store.inspectors()["name"], store.inspectors()["role"]))["new1"] == "inspector"
    bad = pd.DataFrame({"id": ["g2", "ghost", "g3", "g4"], "inspector": ["new2", "new2", "new2", ""],
                        "label": ["Core", "Core", "Spiral", "Core"]})
    with pytest.raises(V.VoteImportError) as err:
        store.import_votes(bad, name="bad.csv")
    assert [p.split(":")[0] for p in err.value.problems] == ["row 2", "row 3", "row 4"]
    assert "ghost" in str(err.value) and "bad.csv" in str(err.value)
    assert len(store.history()) == 3 and "new2" not in set(store.inspectors()["name"])


# ---------------------------------------------------------------------------------------------
# Many processes at once; a writer killed mid-stream
# ---------------------------------------------------------------------------------------------
N_PROC, N_GAL = 8, 500


def _vote_worker(url: str, k: int, go: str) -> None:
    """One of the concurrent writers (a fresh process: see the test)."""
    import faulthandler

    faulthandler.dump_traceback_later(240, exit=True)  # a hang fails with this worker's stack
    store = open_store(url)  # every worker migrates the same fresh database at once
    ids = [f"g{i:03d}" for i in range(N_GAL)]
    store.add_galaxies(ids)
    store.add_inspector(f"insp{k}")
    Path(f"{go}.ready{k}").touch()
    while not os.path.exists(go):
        time.sleep(0.01)
    # even g: 6 of 8 vote A (wins); odd g: 5 of 8 vote A (5/8 < 2/3: undecided)
    mine: dict[str, list[str]] = {}
    for g in range(N_GAL):
        n_a = 6 if g % 2 == 0 else 5
        mine.setdefault(CLASSES[g % 5] if k < n_a else CLASSES[(g + 1) % 5], []).append(ids[g])
    # 500 votes in ~60 transactions: a single vote then bulk votes of up to 10 per label,
    # interleaved with the other processes' transactions
    n = 0
    for label, gal in mine.items():
        for chunk in [gal[:1]] + [gal[i:i + 10] for i in range(1, len(gal), 10)]:
            n += store.cast(chunk, f"insp{k}", label)
    store.close()
    if n != N_GAL:
        raise SystemExit(1)


@pytest.mark.slow
def test_eight_processes_vote_at_once(url, tmp_path):
    go = tmp_path / "go"
    # Fresh processes ("spawn"), not forks of this one: by now the test process runs threads of
    # earlier tests (TensorFlow, Dask, zarr), and a fork inherits any lock they hold -- a forked
    # worker once hung here for the whole join timeout.
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_vote_worker, args=(url, k, str(go))) for k in range(N_PROC)]
    for p in procs:
        p.start()
    deadline = time.time() + 180  # every worker has opened the store and registered ...
    while sum(Path(f"{go}.ready{k}").exists() for k in range(N_PROC)) < N_PROC and time.time() < deadline:
        time.sleep(0.05)
    go.touch()  # ... then all vote at once
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * N_PROC
    s = open_store(url)
    cur = s.current_votes()
    assert len(cur) == N_PROC * N_GAL == 4000
    assert len(s.history()) == 4000 and len(s.inspectors()) == N_PROC
    c = s.consensus().set_index("id")
    g = np.arange(N_GAL)
    expected = np.where(g % 2 == 0, np.array(CLASSES, dtype=object)[g % 5], "undecided")
    assert list(c.loc[[f"g{i:03d}" for i in g], "label"]) == list(expected)
    assert (c["n_votes"] == N_PROC).all()
    with s.engine.connect() as conn:
        assert list(conn.execute(sa.select(S.schema_version.c.version)).scalars()) == [1, 2, 3]
    assert s.integrity_check() == "ok"
    s.close()


CRASH_WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from core.votes.store import open_store
    from core.labels import CLASSES
    store = open_store(sys.argv[2])
    for a in range(10_000):
        ids = [f"c{a:05d}_{j:02d}" for j in range(20)]
        store.add_galaxies(ids)
        store.cast(ids, "writer", CLASSES[a % 5], comment=f"action {a}")
        print(a, flush=True)  # acknowledged: the transaction has committed
""")


@pytest.mark.slow
def test_writer_killed_with_sigkill_loses_no_acknowledged_vote(url):
    s = open_store(url)
    s.add_inspector("writer")
    s.close()
    proc = subprocess.Popen([sys.executable, "-c", CRASH_WRITER, str(PROJECT), url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked: list[int] = []
    try:
        for line in proc.stdout:
            acked.append(int(line))
            if len(acked) >= 40:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
    acked += [int(x) for x in rest.split()]
    assert len(acked) >= 40, err[-2000:]
    assert proc.returncode == -signal.SIGKILL
    s = open_store(url)
    assert s.integrity_check() == "ok"
    hist = s.history()
    per_action = hist.groupby("comment").size()
    assert (per_action == 20).all()  # whole actions only: a bulk vote never half-lands
    present = {int(c.split()[1]) for c in per_action.index}
    assert set(acked) <= present
    assert len(present - set(acked)) <= 1  # at most the one committed just before the kill
    cur = s.current_votes()
    for a in acked[::7]:
        mine = cur[cur["comment"] == f"action {a}"]
        assert len(mine) == 20 and set(mine["label"]) == {CLASSES[a % 5]}
    # The store still takes votes.
    s.add_galaxies(["after"])
    assert s.cast("after", "writer", "Clean") == 1
    s.close()


# ---------------------------------------------------------------------------------------------
# Inspector identity: NFC, trimmed, case-folded; shown as typed
# ---------------------------------------------------------------------------------------------
def test_inspector_names_are_one_person_up_to_case_form_and_spaces(store):
    assert VV.inspector_key(" Ann ") == VV.inspector_key("ANN") == "ann"
    assert VV.inspector_key("Jos\u00e9") == VV.inspector_key("jose\u0301")  # precomposed = combining
    store.add_inspector(" Ann ")  # "ann" is registered: the same person
    store.add_inspector("Jos\u00e9")
    store.add_inspector("JOSE\u0301  ")
    names = list(store.inspectors()["name"])
    assert names.count("ann") == 1 and "Jos\u00e9" in names and len(names) == 6
    store.cast("g0", " ANN", "Core")
    store.cast("g1", "jos\u00e9", "Clean")
    cur = store.current_votes()
    assert set(cur["inspector"]) == {"ann", "Jos\u00e9"}  # shown as first typed
    assert store.undo_last("Ann") == 1
    # an import file with a stray space or other case counts one person once
    store.import_votes(pd.DataFrame({"id": ["g2", "g2", "g3"], "inspector": ["bob", " BOB ", "New Person "],
                                     "label": ["Core", "Clean", "Core"]}))
    cur = store.current_votes()
    assert len(cur[cur["id"] == "g2"]) == 1 and cur.loc[cur["id"] == "g2", "label"].item() == "Clean"
    assert "New Person" in set(store.inspectors()["name"])
    assert store.inspector_collisions() == []


def test_config_experts_match_by_identity(url):
    s = open_store(url, config={"experts": ["Eve"], "min_votes": 3})
    s.add_galaxies(["g0"])
    for n in ("a", "b"):
        s.add_inspector(n)
    s.cast("g0", "a", "Core")
    s.cast("g0", "b", "Core")
    s.cast("g0", " eve", "Clean")
    c = s.consensus()
    assert c.loc[0, "label"] == "Clean" and bool(c.loc[0, "expert"])
    s.close()


def test_colliding_names_in_an_old_store_are_reported_and_merged_only_when_asked(url):
    s = open_store(url)
    s.add_galaxies(["g0", "g1", "g2"])
    with s.engine.begin() as conn:  # a store written before names were normalised
        for name, role in (("alice", "inspector"), (" Alice", "expert"), ("ALICE ", "inspector"), ("bob", "inspector")):
            conn.execute(S.inspectors.insert().values(name=name, role=role, created_at=S.now_utc()))
    s.cast("g0", "alice", "Core")
    s.cast("g0", " Alice", "Clean")  # exact names still address their own rows before the merge
    s.cast("g1", "ALICE ", "Peculiar")
    s.cast("g2", "bob", "Core")
    assert s.inspector_collisions() == [["alice", " Alice", "ALICE "]]
    assert len(s.current_votes()) == 4  # nothing merged by reading or voting
    assert s.merge_inspectors() == [["alice", " Alice", "ALICE "]]
    people = dict(zip(s.inspectors()["name"], s.inspectors()["role"]))
    assert people == {"alice": "expert", "bob": "inspector"}
    cur = s.current_votes()
    assert len(cur) == 3 and set(cur["inspector"]) == {"alice", "bob"}
    assert cur.loc[cur["id"] == "g0", "label"].item() == "Clean"  # the latest of the merged votes
    assert s.inspector_collisions() == [] and s.merge_inspectors() == []
    assert s.undo_last("ALICE") == 1  # the merged history undoes as one inspector's
    assert s.integrity_check() == "ok"
    s.close()


def test_a_write_outlasts_a_lock_held_longer_than_the_busy_timeout(tmp_path, monkeypatch, caplog):
    """SQLite: a writer that cannot take the lock within busy_timeout tries again (logged), no vote lost."""
    import logging
    import sqlite3
    import threading

    monkeypatch.setattr(S, "BUSY_TIMEOUT_S", 0.2)
    monkeypatch.setattr(S, "LOCK_BACKOFF_S", 0.3)
    path = tmp_path / "votes.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.add_galaxies(["g0", "g1"])
    store.add_inspector("ann")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock for 0.7 s
    release = threading.Timer(0.7, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        with caplog.at_level(logging.WARNING, logger="core.votes.schema"):
            store.cast(["g0"], "ann", "Core")
    finally:
        release.join()
        blocker.close()
    assert list(store.current_votes()["label"]) == ["Core"]
    assert any("write lock not taken" in r.getMessage() for r in caplog.records)
    store.close()


def test_a_lock_held_past_every_retry_is_an_error_not_a_lost_vote(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setattr(S, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(S, "LOCK_BACKOFF_S", 0.01)
    monkeypatch.setattr(S, "LOCK_RETRIES", 2)
    path = tmp_path / "votes.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.add_galaxies(["g0"])
    store.add_inspector("ann")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            store.cast(["g0"], "ann", "Core")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.cast(["g0"], "ann", "Core")  # the store still works once the lock is free
    assert list(store.current_votes()["label"]) == ["Core"]
    store.close()
