"""The dashboard's state: one ``param.Parameterized`` per browser session.

Everything a view shows is a function of :class:`AppState`: the workspace, the active run of
each model, the map's axes and colouring, the current selection (catalog row numbers), the
inspector, and two counters (``votes_version``, ``runs_version``) that views depend on to
redraw when the vote store or the list of runs changes. Views never talk to each other, nor
to the workspace: what one view points at that another needs (the gallery's page, focused
tile and ticked tiles) is a parameter here, every vote from a view goes through
:meth:`AppState.record_vote` (its outcome in ``vote_outcome``), and stamps, runs'
evaluations and the vote store are read through methods of the state.

The science lives in ``core``; this module only loads what ``core`` wrote and keeps it aligned
by catalog row. The colours are in :mod:`app.palettes`, the selection and paging helpers (plain
functions, testable without a server) in :mod:`app.selection`, the retrain subprocess in
:mod:`app.retrain`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import param

from app.palettes import NO_LABEL, UNDECIDED
from app.retrain import RetrainJob
from app.selection import PointIndex, parse_id_list, points_in_bounds, split_id_line
from core.labels import CLASSES, FIT_QUALITY, SKIP, VOTE_LABELS
from core.votes.validation import inspector_key
from core.workspace.config import DEFAULT_CONFIG
from core.workspace.mapdata import MapData, shared_map_data
from core.workspace.workspace import MODELS, Workspace, WorkspaceError

log = logging.getLogger(__name__)

#: What the map can be coloured by: label -> (column of :meth:`AppState.map_frame`, kind).
COLOR_BY: dict[str, tuple[str, str]] = {
    "catalog class": ("catalog_class", "categorical"),
    "consensus": ("consensus", "categorical"),
    "predicted class": ("predicted", "categorical"),
    "GMM cluster": ("gmm", "categorical"),
    "log SPF": ("log_spf", "continuous"),
    "log Bumpiness": ("log_bumpiness", "continuous"),
    "log RFF": ("log_rff", "continuous"),
    "vote disagreement": ("disagreement", "continuous"),
    "model confidence": ("confidence", "continuous"),
    "acquisition score": ("acquisition", "continuous"),
}

#: The Inspect-next queue's strategies (core.latent.acquisition.STRATEGIES, kept import-free here).
QUEUE_STRATEGIES = ("bald", "entropy", "margin", "disagreement", "random")

#: The gallery's voting keys: key -> vote label (1–5 the classes in order, f fit quality, s skip).
KEYS: dict[str, str] = {str(i + 1): c for i, c in enumerate(CLASSES)} | {"f": FIT_QUALITY, "s": SKIP}

#: The run files the run panel shows as pictures, when the run wrote them.
RUN_FIGURES = ("confusion.png", "reconstructions.png")


# --------------------------------------------------------------------------------------------
# Reading what core wrote
# --------------------------------------------------------------------------------------------
_EMBED_ALIASES = {
    "svc_x": ("svc_x", "svc_grid_x", "grid_x"),
    "svc_y": ("svc_y", "svc_grid_y", "grid_y"),
    "svc_z": ("svc_z", "svc_grid_z", "grid_z", "svc"),
}
_EMBED_FIELDS = ("ids", "pcs", "explained_variance", "inertia", "elbow_k", "gmm_labels", "gmm_means",
                 "gmm_covariances", "probabilities", "predicted", "svc_x", "svc_y", "svc_z", "model")


def load_run_embedding(ws: Workspace, run_id: str) -> dict[str, Any]:
    """The embedding of a run as a dict of arrays (keys of ``embedding.npz``).

    Goes through ``core.latent.embedding.load_embedding`` and reads only the arrays the dashboard
    draws (the 512-d latents stay on disk: 2 GB for 10⁶ galaxies).
    """
    from core.latent.embedding import load_embedding

    wanted = {alias for name in _EMBED_FIELDS for alias in _EMBED_ALIASES.get(name, (name,))}
    emb = load_embedding(ws, run_id, only=wanted)
    out: dict[str, Any] = {}
    for name in _EMBED_FIELDS:
        for alias in _EMBED_ALIASES.get(name, (name,)):
            value = emb.get(alias) if isinstance(emb, dict) else getattr(emb, alias, None)
            if value is not None:
                out[name] = value
                break
    if "ids" not in out or "pcs" not in out:
        raise WorkspaceError(f"the embedding of run {run_id} has no ids or PCs")
    out["ids"] = np.asarray(out["ids"]).astype(str)
    out["pcs"] = np.asarray(out["pcs"], dtype=float)
    return out


@dataclass
class RunRow:
    """What the run selector shows about one run."""

    id: str
    model: str
    status: str
    created: str = ""
    accuracy: float | None = None
    init: str | None = None
    error: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        acc = f", acc {self.accuracy:.2f}" if isinstance(self.accuracy, (int, float)) else ""
        return f"{self.id} ({self.status}{acc})"


def list_run_rows(ws: Workspace) -> list[RunRow]:
    """Every run of the workspace (``core.learn.runs.list_runs``), oldest first."""
    from core.learn.runs import list_runs

    return [RunRow(id=info.id, model=info.model, status=info.status, created=str(info.created or ""),
                   accuracy=info.accuracy, init=info.init, error=info.error, info=info.to_dict())
            for info in list_runs(ws)]


def _log10(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log10(v)
    out[~np.isfinite(out)] = np.nan
    return out


def _catalog_view(shared: MapData) -> dict[str, Any]:
    """What every session of a workspace reads from its catalog, prepared once per process.

    The catalog frame (ids stripped, unknown classes shown as ``NO_LABEL``), ids, the row of
    each id, the log metrics and the classes for the filter: shared, read-only.
    """
    cat = shared.catalog().copy(deep=False)  # new columns below; the others share memory
    if len(cat) == 0:
        raise WorkspaceError(f"{shared.ws.catalog_path} has no galaxies")
    cat["id"] = cat["id"].astype(str).str.strip()
    if "catalog_class" not in cat:
        cat["catalog_class"] = ""
    cat["catalog_class"] = cat["catalog_class"].fillna("").astype(str).str.strip().replace("", NO_LABEL)
    ids = cat["id"].to_numpy()
    row_of = pd.Index(ids)
    if not row_of.is_unique:
        raise WorkspaceError(f"{shared.ws.catalog_path}: galaxy ids are not unique")
    n = len(cat)
    metrics = {name: _log10(cat[col]) if col in cat else np.full(n, np.nan)
               for name, col in (("log_spf", "spf"), ("log_bumpiness", "bumpiness"), ("log_rff", "rff"))}
    return {"catalog": cat, "ids": ids, "row_of": row_of, "metrics": metrics,
            "classes": sorted(cat["catalog_class"].unique())}


# --------------------------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------------------------
#: Why a galaxy's consensus reads "hidden" (blind mode): the tooltip of every place that shows it.
HIDDEN_TIP = ("Blind mode: the other inspectors' votes on this galaxy, and what comes from them (its consensus, "
              "vote count and disagreement), are hidden until you have voted on it, so that your vote is your "
              "own. The model's prediction stays visible; the lead and the experts see everything.")


class AppState(param.Parameterized):
    """All the dashboard's state for one session.

    The data every session reads (catalog, embeddings, consensus, map tables, the lasso's index)
    is held once per process by :func:`core.workspace.mapdata.shared_map_data` and shared
    read-only; a session holds its selection, filters, view and inspector.
    """

    workspace_path = param.String(default="", doc="folder of the open workspace")
    model = param.Selector(default="cnn", objects=list(MODELS), doc="latent space shown (CNN or CvAE)")
    side_by_side = param.Boolean(default=False, doc="show the CNN and CvAE maps side by side")
    run_cnn = param.String(default=None, allow_None=True, doc="run shown for the CNN")
    run_cvae = param.String(default=None, allow_None=True, doc="run shown for the CvAE")
    pc_x = param.Integer(default=1, bounds=(1, None), doc="PC on the map's x axis (1-based)")
    pc_y = param.Integer(default=2, bounds=(1, None), doc="PC on the map's y axis (1-based)")
    color_by = param.Selector(default="catalog class", objects=list(COLOR_BY))
    show_svc = param.Boolean(default=False, doc="overlay the SVC decision boundaries (PC1–PC2)")
    show_gmm = param.Boolean(default=False, doc="overlay the GMM ellipses (PC1–PC2)")
    class_filter = param.ListSelector(default=[], objects=[], doc="catalog classes shown (none = all)")
    consensus_filter = param.ListSelector(default=[], objects=[], doc="consensus labels shown (none = all)")
    selected = param.Array(default=np.empty(0, dtype=int), doc="selected catalog rows, in selection order")
    selection_source = param.String(default="", doc="how the selection was made")
    inspector = param.String(default="", doc="who votes in this session")
    inspector_locked = param.Boolean(default=False, doc="the name comes from the login")
    votes_version = param.Integer(default=0)
    runs_version = param.Integer(default=0)
    active_notice = param.String(default="", doc="set when another session or `resx train` changed the "
                                 "workspace's active run: what changed (plain text)")
    message = param.String(default="", doc="last message for the user")
    # what the gallery shows and points at (set by the gallery, read by the voting view)
    page_rows = param.Array(default=np.empty(0, dtype=int), doc="catalog rows on the gallery's page, in order")
    focused_row = param.Integer(default=None, allow_None=True, doc="catalog row of the gallery's focused tile")
    ticked = param.List(default=[], doc="catalog rows whose tick box is on in the gallery")
    vote_outcome = param.Dict(default={}, doc="the last vote cast from a view (see record_vote)")
    # the Inspect-next queue (core.latent.queue; set by inspect_next, read by the map and the queue view)
    queue_strategy = param.Selector(default="bald", objects=list(QUEUE_STRATEGIES), doc="ranking of the queue")
    queue_batch = param.Integer(default=0, bounds=(0, None), doc="batch of the queue shown (0 = the first)")
    queue_rows = param.Array(default=np.empty(0, dtype=int), doc="catalog rows of the queue's batch, in order")
    queue_info = param.Dict(default={}, doc="what the last queue said: source, cold start, labels missing, note")
    queue_version = param.Integer(default=0, doc="bumped whenever the queue is rebuilt")

    def __init__(self, workspace: str | Path, login: str | None = None, loopback: bool = True, **params):
        super().__init__(workspace_path=str(workspace), **params)
        # Who this session is, decided on the server: the login of an authenticated session
        # (basic auth / OAuth: pn.state.user), never a widget's value. Plain attributes, not
        # parameters: nothing the browser sends can change them.
        self.login: str | None = str(login) if login else None
        self.loopback = bool(loopback)  # the server listens on the loopback only
        if self.login:
            self.param.update(inspector=self.login, inspector_locked=True)
        self.param.watch(self._keep_login, ["inspector"])
        self.ws = Workspace.open(workspace)  # WorkspaceError with a readable message
        self.shared = shared_map_data(self.ws)
        view = self.shared.memo(("app", "catalog"), lambda: _catalog_view(self.shared))
        self.catalog = view["catalog"]  # shared by every session of this process: read-only
        self.ids = view["ids"]
        self.row_of = view["row_of"]
        self.n = len(self.catalog)
        self._metrics = view["metrics"]
        self.vcfg = dict(self.ws.config.get("votes", {}) or {})
        self.acfg = dict(self.ws.config.get("app", {}) or {})
        # one place each (config schema 2; Workspace.open migrates votes.blind -> app.blind)
        self.blind = bool(self.acfg.get("blind", DEFAULT_CONFIG["app"]["blind"]))
        self.experts = {inspector_key(n) for n in self.vcfg.get("experts") or []}
        self.leads = {inspector_key(n) for n in self.acfg.get("leads") or []}
        self._emb_cache: dict[str, dict[str, Any]] = {}  # runs re-read after a retrain (see embedding)
        self._frames: dict[tuple, pd.DataFrame] = {}
        self._votes_serial = 0  # the shared vote snapshot this session has seen
        self.runs: list[RunRow] = []
        self.job: RetrainJob | None = None
        self._actions: list[dict[str, Any]] = []  # this session's vote actions, newest last (what undo names)
        self._undone: dict[str, Any] | None = None
        self._votes_sig: Any = None
        self.consensus = pd.DataFrame()
        self.votes = pd.DataFrame(columns=["id", "inspector", "label"])
        self._queue_scores = pd.Series(dtype=float)
        self.qcfg = dict(self.ws.config.get("queue", {}) or {})
        if self.qcfg.get("strategy") in QUEUE_STRATEGIES:
            self.queue_strategy = self.qcfg["strategy"]
        self.param.class_filter.objects = list(view["classes"])
        self.param.consensus_filter.objects = list(VOTE_LABELS) + [UNDECIDED, NO_LABEL]
        self.refresh_runs(initial=True)
        self.refresh_votes()

    # -- runs -----------------------------------------------------------------------------------
    def run_of(self, model: str) -> str | None:
        return self.run_cnn if model == "cnn" else self.run_cvae

    def set_run(self, model: str, run_id: str | None) -> None:
        self.param.update(**{f"run_{model}": run_id})

    def refresh_runs(self, initial: bool = False) -> None:
        """Re-read the runs list; on start, pick each model's active run (or its newest done run)."""
        try:
            self.runs = list_run_rows(self.ws)
        except Exception as exc:  # a half-written run folder must not take the page down
            log.warning("cannot list runs: %s", exc)
            self.runs = []
        if initial:
            active = self.ws.active_runs()
            self._active_seen = dict(active)
            for m in MODELS:
                run = active.get(m)
                if not run or not any(r.id == run for r in self.runs):
                    done = [r.id for r in self.runs if r.model == m and r.status == "done"]
                    run = done[-1] if done else None
                self.set_run(m, run)
            if not self.run_cnn and self.run_cvae:
                self.model = "cvae"
        self.runs_version += 1

    def runs_for(self, model: str) -> list[RunRow]:
        return [r for r in self.runs if r.model == model]

    def run_row(self, run_id: str | None) -> RunRow | None:
        """The run selector's row of ``run_id`` (None when the workspace has no such run)."""
        return next((r for r in self.runs if r.id == run_id), None)

    def activate_run(self, model: str, run_id: str) -> None:
        """Show ``run_id`` and make it the workspace's active run of ``model``.

        The active run (``active.json``) is what ``resx embed`` and every new session open;
        only a finished run can be it (:func:`core.learn.runs.activate`; the file is written under its lock).

        Parameters
        ----------
        model : {"cnn", "cvae"}
            The model the run belongs to.
        run_id : str
            A run of the workspace.

        Raises
        ------
        core.learn.runs.RunError
            The run is not finished (running, failed, cancelled) or is of another model.
        """
        from core.learn.runs import RunError, activate, read_run

        self.lead_only("changing the workspace's active run")
        if read_run(self.ws, run_id).model != model:
            raise RunError(f"run {run_id} is not a {model} run")
        activate(self.ws, run_id)
        self._active_seen = self.ws.active_runs()  # this session's own change: nothing to tell it
        self.set_run(model, run_id)

    def run_evaluation(self, run_id: str | None) -> dict[str, Any]:
        """``evaluation.json`` of a run (accuracy, per-class recall, confusion matrix, ...).

        Parameters
        ----------
        run_id : str or None
            A run of the workspace.

        Returns
        -------
        dict
            Empty when there is no run, or the run wrote no (readable) evaluation.
        """
        if not run_id:
            return {}
        try:
            out = json.loads((self.ws.runs_dir / run_id / "evaluation.json").read_text())
        except (OSError, ValueError):
            return {}
        return out if isinstance(out, dict) else {}

    def run_figures(self, run_id: str | None) -> list[Path]:
        """The pictures of a run that exist (:data:`RUN_FIGURES`: confusion matrix, reconstructions)."""
        if not run_id:
            return []
        folder = self.ws.runs_dir / run_id
        return [folder / name for name in RUN_FIGURES if (folder / name).exists()]

    def embedding(self, run_id: str | None) -> dict[str, Any] | None:
        """The run's embedding (read once per process and version of its file, shared: read-only);
        None when there is no run."""
        if not run_id:
            return None
        if run_id not in self._emb_cache:
            path = self.ws.runs_dir / run_id / "embedding.npz"
            try:
                st = path.stat()
                version = (st.st_mtime_ns, st.st_size)
            except OSError:
                version = None
            self._emb_cache[run_id] = self.shared.memo(("app", "embedding", run_id, version),
                                                       lambda: load_run_embedding(self.ws, run_id))
        return self._emb_cache[run_id]

    def embedding_error(self, run_id: str | None) -> str:
        """'' when the run's embedding loads, else a readable reason."""
        if not run_id:
            return "No run yet: train one with `resx train WORKSPACE --model cnn --embed`, or use Retrain."
        try:
            self.embedding(run_id)
        except Exception as exc:
            return f"Run {run_id} has no usable embedding ({exc}). Run `resx embed {self.ws.root} --run {run_id}`."
        return ""

    def n_pcs(self, model: str | None = None) -> int:
        emb = self.embedding(self.run_of(model or self.model)) if not self.embedding_error(self.run_of(model or self.model)) else None
        return int(emb["pcs"].shape[1]) if emb is not None else 2

    # -- votes ----------------------------------------------------------------------------------
    @property
    def store(self):
        """The vote store, opened once per process (:attr:`core.workspace.mapdata.MapData.store`)."""
        return self.shared.store

    def _votes_signature(self) -> Any:
        """The store's version (:meth:`core.votes.store.VoteStore.version`): changes with every write."""
        return self.store.version()

    def refresh_votes(self, force: bool = True) -> bool:
        """Pick up the consensus and current labels when the store changed; True when something changed.

        The process's shared snapshot (:meth:`core.workspace.mapdata.MapData.votes`) is re-read
        from the store only when the store's version moved, once for every session of the
        process; it reads integer codes only (comments and times are read per galaxy by the
        detail view). ``force`` adopts the snapshot even when this session has seen it.
        """
        try:
            snap = self.shared.votes()
        except Exception as exc:
            log.warning("cannot read the vote store: %s", exc)
            self.message = f"Cannot read the vote store: {exc}"
            return False
        if not force and snap.serial == self._votes_serial:
            return False
        self._adopt(snap)
        return True

    def _adopt(self, snap) -> None:
        self._votes_serial = snap.serial
        self._votes_sig = snap.signature
        self.consensus = snap.consensus  # shared: read-only
        self.votes = snap.votes
        self._frames.clear()
        self.votes_version += 1

    def _update_votes(self, ids: list[str]) -> None:
        """After this session's own write (one action) on ``ids``: re-read only those galaxies.

        The shared snapshot is updated once (:meth:`core.workspace.mapdata.MapData.update_votes`),
        so the cost does not grow with the campaign nor with the sessions; the other sessions of
        the process see it at their next poll. When another inspector wrote meanwhile, the next
        poll reads everything.
        """
        try:
            snap = self.shared.update_votes(ids)
        except Exception as exc:
            log.warning("cannot read the vote store: %s", exc)
            self.refresh_votes(force=True)
            return
        self._adopt(snap)

    def poll(self) -> None:
        """Called every few seconds by the session: pick up other inspectors' votes and new runs."""
        self.refresh_votes(force=False)
        try:
            self.check_active_runs()
        except Exception as exc:  # noqa: BLE001 - an unreadable active.json must not stop the poll
            log.warning("cannot read the workspace's active runs: %s", exc)

    def check_active_runs(self) -> bool:
        """Tell this session when the workspace's active run changed elsewhere.

        Another session (a lead's "make active", a finished retrain) or ``resx train`` may
        rewrite ``active.json``. The shown runs stay as they are; :attr:`active_notice` says
        what changed, and :meth:`switch_to_active_runs` shows the new ones.

        Returns
        -------
        bool
            True when the active runs changed since this session last looked.
        """
        active = self.ws.active_runs()
        seen = getattr(self, "_active_seen", None)
        if seen is None:
            self._active_seen = dict(active)
            return False
        if active == seen:
            return False
        self._active_seen = dict(active)
        self.refresh_runs()
        changes = [f"{m.upper()}: {active.get(m) or 'none'} (was {seen.get(m) or 'none'})"
                   for m in MODELS if active.get(m) != seen.get(m)]
        self.active_notice = "The workspace's active run changed: " + "; ".join(changes) + "."
        return True

    def switch_to_active_runs(self) -> None:
        """Show the workspace's active run of each model (after :attr:`active_notice`)."""
        for m, run in self.ws.active_runs().items():
            if run and self.run_row(run) is not None:
                self.set_run(m, run)
        self.active_notice = ""

    def can_vote(self) -> str:
        """'' when votes may be cast, else why not."""
        if not self.voter.strip():
            return "Enter your inspector name in the sidebar first."
        return ""

    # -- identity and roles (decided here, on the server) -------------------------------------------
    def _keep_login(self, event) -> None:
        """An authenticated session's inspector is its login: any other value is put back at once."""
        if self.login and event.new != self.login:
            log.warning("session of %r tried to vote as %r: ignored", self.login, event.new)
            self.inspector = self.login

    @property
    def authenticated(self) -> bool:
        """The server authenticated this session (basic auth or OAuth): the inspector is the login."""
        return bool(self.login)

    @property
    def voter(self) -> str:
        """The name votes are cast in: the login with authentication, else the name typed."""
        return self.login if self.login else self.inspector

    @property
    def experts_enabled(self) -> bool:
        """Expert overrides need authentication: a typed name proves nothing."""
        return self.authenticated

    @property
    def role(self) -> str:
        """``lead``, ``expert`` or ``inspector``.

        With authentication, from the workspace configuration bound to logins (``app.leads``,
        ``votes.experts``). Without, everyone is an inspector (no expert overrides), and the
        person at the machine is the lead when the server listens on the loopback only.
        """
        if self.authenticated:
            key = inspector_key(self.login)
            return "lead" if key in self.leads else "expert" if key in self.experts else "inspector"
        return "lead" if self.loopback else "inspector"

    @property
    def is_lead(self) -> bool:
        """May start a retrain, change the active run and export in blind mode."""
        return self.role == "lead"

    def lead_only(self, action: str) -> None:
        """Raise :class:`PermissionError` unless this session has the lead role.

        Parameters
        ----------
        action : str
            What was asked (for the message).
        """
        if not self.is_lead:
            if self.authenticated and not self.leads:
                raise PermissionError(
                    f"{action} needs the lead role, and nobody has it on this server: app.leads in "
                    f"{self.ws.root / self.ws.CONFIG} is empty. Add the lead's login there (app.leads = "
                    "[\"login\"]) and restart the server.")
            why = ("log in as a lead (app.leads in the workspace config)" if self.authenticated else
                   "this server listens beyond the loopback without authentication: lead actions need "
                   "`resx serve --basic-auth` (or OAuth) and a login in app.leads")
            raise PermissionError(f"{action} needs the lead role: {why}")

    @property
    def sees_all(self) -> bool:
        """Whether blind mode hides nothing from this session (experts, and the lead)."""
        return self.is_expert or (self.authenticated and self.is_lead)

    @property
    def is_expert(self) -> bool:
        """An authenticated login named in ``votes.experts`` (without authentication nobody is)."""
        return self.authenticated and inspector_key(self.login) in self.experts

    def is_me(self, names: Any) -> np.ndarray:
        """Which of ``names`` (inspector names as the store shows them) are this session's inspector.

        Compares identities (:func:`core.votes.validation.inspector_key`: NFC, trimmed,
        case-folded), so " Alice" typed here is the "alice" of the store.
        """
        me = inspector_key(self.voter)
        return np.fromiter((inspector_key(n) == me for n in names), dtype=bool, count=len(names))

    def vote(self, rows: Sequence[int], label: str, comment: str = "") -> int:
        """Cast ``label`` for the galaxies at catalog ``rows`` in the inspector's name."""
        why = self.can_vote()
        if why:
            raise PermissionError(why)
        if label not in VOTE_LABELS:
            raise ValueError(f"{label!r} is not a vote label ({', '.join(VOTE_LABELS)})")
        rows = np.asarray(rows, dtype=int)
        if rows.size == 0:
            return 0
        ids = [str(i) for i in self.ids[rows]]
        self._ensure_inspector()
        # without authentication the name is only typed: the vote never counts as an expert's
        n = self.store.cast(ids, self.voter, label, comment=comment, source="ui" if self.authenticated else "ui-unauth")
        self._update_votes(ids)
        return int(n) if n is not None else len(ids)

    def record_vote(self, rows: Sequence[int], label: str, scope: str = "") -> int:
        """Cast a vote from a view: like :meth:`vote`, but the outcome goes to :attr:`vote_outcome`.

        A refusal (no inspector name, a store that is down) is reported, not raised, so that the
        page stays up; the voting view shows every outcome.

        Parameters
        ----------
        rows : sequence of int
            Catalog rows of the galaxies.
        label : str
            One of :data:`core.labels.VOTE_LABELS`.
        scope : str
            What was labelled (e.g. ``"focused tile"``, ``"key"``), carried in the outcome.

        Returns
        -------
        int
            Number of galaxies labelled (0 when refused).
        """
        seq = int(self.vote_outcome.get("seq", 0)) + 1
        try:
            n = self.vote(rows, label)
        except PermissionError as exc:
            self.vote_outcome = {"seq": seq, "scope": scope, "label": label, "n": 0, "error": str(exc),
                                 "level": "warning"}
            return 0
        except Exception as exc:  # the store refused (unknown id, database down): say so, keep the page
            log.exception("vote failed")
            self.vote_outcome = {"seq": seq, "scope": scope, "label": label, "n": 0,
                                 "error": f"The vote was not recorded: {exc}", "level": "error"}
            return 0
        self.vote_outcome = {"seq": seq, "scope": scope, "label": label, "n": n, "inspector": self.voter,
                             "error": "", "level": "info"}
        where = scope
        if scope == "whole selection" and self.selection_source:
            where = f"the whole selection ({self.selection_source})"
        elif scope in ("ticked tiles", "focused tile"):
            where = f"the {scope}"
        self._actions.append({"label": label, "n": n, "scope": "" if scope == "key" else where,
                              "ids": [str(i) for i in self.ids[np.asarray(rows, dtype=int)[:1]]] if n == 1 else []})
        del self._actions[:-200]
        return n

    def vote_key(self, key: str, row: int) -> int:
        """A keyboard vote: ``key`` (:data:`KEYS`) labels the galaxy at catalog ``row``.

        Parameters
        ----------
        key : str
            The key typed; one that is not a voting key does nothing.
        row : int
            Catalog row of the tile the key was typed on.

        Returns
        -------
        int
            Number of galaxies labelled (0 or 1).
        """
        label = KEYS.get(key)
        if not label:
            return 0
        return self.record_vote([int(row)], label, scope="key")

    def focus_next(self) -> None:
        """Move the gallery's focus to the next tile of its page (it stays on the last one)."""
        rows = [int(r) for r in self.page_rows]
        if self.focused_row is None or self.focused_row not in rows:
            return
        self.focused_row = rows[min(rows.index(self.focused_row) + 1, len(rows) - 1)]

    def galaxy_votes(self, gid: str) -> pd.DataFrame:
        """Every current vote on one galaxy, with its comment and time, read through the store's index.

        Falls back to this session's copy of the current labels (no comments, no times) when
        the store cannot be read, so that the detail view still opens.
        """
        try:
            return self.store.votes_for(gid)
        except Exception as exc:  # noqa: BLE001 - the detail still shows the stamps and metrics
            log.warning("cannot read the votes of %s: %s", gid, exc)
            return self.votes[self.votes["id"] == gid] if len(self.votes) else self.votes

    def agreement(self) -> Any:
        """Agreement statistics of the vote store (:meth:`core.votes.store.VoteStore.agreement`)."""
        return self.store.agreement()

    def undo(self) -> Any:
        """Undo the inspector's last vote action; returns the number of votes undone."""
        self._ensure_inspector()
        out = self.store.undo_last(self.voter)
        if out and self._actions:
            self._undone = self._actions.pop()
        else:
            self._undone = None
        self.refresh_votes(force=True)  # the undone action's galaxies are not known here
        return out

    def undo_described(self) -> str:
        """Undo the inspector's last vote action and say what was undone.

        Returns
        -------
        str
            e.g. ``"Undone: 249 votes Core on the whole selection (lasso on the CNN map)."``, from
            this session's record of its actions (only the number when the action was cast
            before this session); ``"Nothing to undo."`` when there was none.
        """
        n = self.undo()
        if not n:
            return "Nothing to undo."
        done = self._undone
        if done and done["n"] == n:
            what = f"{n} vote{'s' if n != 1 else ''} {done['label']}"
            where = done["scope"]
            if done.get("ids") and len(done["ids"]) == 1:
                where = f"{done['ids'][0]} ({where})" if where else done["ids"][0]
            return f"Undone: {what}{' on ' + where if where else ''}."
        return f"Undone: {n} vote{'s' if n != 1 else ''} (your last action)."

    _known_inspectors: set = set()

    def _ensure_inspector(self) -> None:
        """Register the inspector on first use (experts from config ``votes.experts``); never demote."""
        key = (self.ws.votes_url, inspector_key(self.voter), self.is_expert)  # an expert login still promotes
        if key in self._known_inspectors:
            return
        try:
            known = self.store.inspectors()
            row = known[self.is_me(known["name"])] if "name" in known else known.iloc[:0]
            if len(row) == 0:
                self.store.add_inspector(self.voter, role="expert" if self.is_expert else "inspector")
            elif self.is_expert and str(row["role"].iloc[0]) != "expert":
                self.store.add_inspector(self.voter, role="expert")
        except Exception as exc:
            log.warning("cannot register inspector %r: %s", self.voter, exc)
        self._known_inspectors.add(key)

    def my_labels(self, rows: Sequence[int]) -> np.ndarray:
        """The inspector's own current label on each of ``rows`` ('' where they have not voted)."""
        rows = np.asarray(rows, dtype=int)
        out = np.full(rows.size, "", dtype=object)
        if not len(self.votes) or not self.voter or rows.size == 0:
            return out
        mine = self.votes[self.is_me(self.votes["inspector"].to_numpy())]
        if len(mine):
            by_id = pd.Series(mine["label"].astype(str).to_numpy(), index=mine["id"].to_numpy())
            by_id = by_id[~by_id.index.duplicated(keep="last")]
            got = by_id.reindex(self.ids[rows])
            out[:] = got.fillna("").to_numpy(dtype=object)
        return out

    def voted_by_me(self, rows: Sequence[int]) -> np.ndarray:
        """Boolean per row: the inspector has a current vote on it."""
        rows = np.asarray(rows, dtype=int)
        return np.isin(rows, self.my_voted_rows())

    def disputed(self, rows: Sequence[int]) -> np.ndarray:
        """Boolean per row: its votes disagree (two or more labels among its current votes)."""
        _, nvotes, disagree = self.consensus_columns()
        rows = np.asarray(rows, dtype=int)
        d = disagree[rows]
        return (nvotes[rows] >= 2) & np.isfinite(d) & (d > 0)

    def display_sigma(self, rows: Sequence[int]) -> np.ndarray:
        """Sky sigma of the stamps at ``rows``, in the stamps' units, for showing them in sigma.

        The catalog's ``stamp_sigma`` (prep measures it on the resampled stamp); ``sky_sigma``
        (native pixels) where a workspace has no ``stamp_sigma``; NaN where neither is known
        (the gallery then measures it on the stamp).
        """
        rows = np.asarray(rows, dtype=int)
        out = np.full(rows.size, np.nan)
        for column in ("sky_sigma", "stamp_sigma"):  # the later one wins where it is finite
            if column in self.catalog:
                v = pd.to_numeric(self.catalog[column], errors="coerce").to_numpy(dtype=float)[rows]
                ok = np.isfinite(v) & (v > 0)
                out[ok] = v[ok]
        return out

    def comment(self, row: int, text: str) -> str:
        """Attach a comment to the inspector's current vote on the galaxy at ``row``.

        The store keeps comments on votes: the inspector's current label is cast again with the
        comment (one action, undone like any vote). Without a vote yet, nothing is written.

        Returns
        -------
        str
            '' when the comment was saved, else why not.
        """
        why = self.can_vote()
        if why:
            return why
        text = str(text).strip()
        if not text:
            return "An empty comment is not saved."
        label = self.my_labels([int(row)])[0]
        if not label:
            return f"Vote on {self.ids[int(row)]} first (1–5, f, s); then c adds a comment to your vote."
        try:
            self.vote([int(row)], label, comment=text)
        except Exception as exc:  # noqa: BLE001 - the store refused (too long, down): say so
            log.warning("comment not saved: %s", exc)
            return f"The comment was not saved: {exc}"
        self._actions.append({"label": f"{label} with a comment", "n": 1, "scope": "", "ids": [str(self.ids[int(row)])]})
        return ""

    def my_voted_rows(self) -> np.ndarray:
        if not len(self.votes):
            return np.empty(0, dtype=int)
        mine = self.votes.loc[self.is_me(self.votes["inspector"].to_numpy()), "id"]
        return self.row_of.get_indexer(mine.unique())

    def consensus_columns(self, reveal: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(consensus label, number of votes, disagreement) per catalog row.

        Disagreement is 1 − (votes of the most voted label / votes); 0 with one or no vote.
        In blind mode nothing derived from others' votes is told about a galaxy the inspector
        has not voted on -- its label is ``"hidden"``, its vote count 0 and its disagreement NaN,
        whether or not anyone voted (so not even that leaks) -- unless the session sees all
        (experts, an authenticated lead) or ``reveal`` (the lead's export).
        """
        label = np.full(self.n, NO_LABEL, dtype=object)
        nvotes = np.zeros(self.n, dtype=int)
        disagree = np.full(self.n, np.nan)
        cons = self.consensus
        if len(cons):
            rows = self.row_of.get_indexer(cons.index)
            ok = rows >= 0
            rows = rows[ok]
            c = cons[ok]
            lab_col = "consensus" if "consensus" in c else ("label" if "label" in c else None)
            if lab_col:
                label[rows] = c[lab_col].astype(str).to_numpy()
            if "n_votes" in c:
                nvotes[rows] = c["n_votes"].to_numpy(dtype=int)
            counts = [lab for lab in VOTE_LABELS if lab in c and lab != SKIP]
            if counts and "n_votes" in c:
                m = c[counts].to_numpy(dtype=float).max(axis=1)
                nv = c["n_votes"].to_numpy(dtype=float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    disagree[rows] = np.where(nv > 0, 1.0 - m / nv, np.nan)
            label[nvotes == 0] = NO_LABEL
        if self.blind and not (reveal or self.sees_all):
            hidden = np.ones(self.n, dtype=bool)
            hidden[self.my_voted_rows()] = False
            label[hidden] = "hidden"
            nvotes[hidden] = 0
            disagree[hidden] = np.nan
        return label, nvotes, disagree

    # -- the map's table --------------------------------------------------------------------------
    def map_frame(self, model: str | None = None) -> pd.DataFrame:
        """One row per galaxy with an embedding in the model's run: x, y and every colour column.

        The index is the catalog row. Columns: ``x``, ``y`` (the chosen PCs), ``id``,
        ``catalog_class``, ``consensus``, ``n_votes``, ``disagreement``, ``predicted``,
        ``confidence``, ``gmm``, ``spf``, ``log_spf``, ``log_bumpiness``, ``log_rff``.
        Filters are applied. Shared by the sessions of the process that show the same view:
        read-only.
        """
        return self._frame_and_keep(model)[0]

    def _view_key(self, model: str | None) -> tuple:
        model = model or self.model
        run = self.run_of(model)
        emb = self.embedding(run)
        npc = emb["pcs"].shape[1]
        return run, min(self.pc_x, npc) - 1, min(self.pc_y, npc) - 1

    def _base_frame(self, run: str, px: int, py: int) -> pd.DataFrame:
        """The columns of the map table that depend on the run and axes only (shared, read-only)."""
        def build() -> pd.DataFrame:
            emb = self.embedding(run)
            rows = self.row_of.get_indexer(emb["ids"])
            ok = rows >= 0
            pcs = emb["pcs"][ok]
            rows = rows[ok]
            frame = pd.DataFrame({"x": pcs[:, px], "y": pcs[:, py]}, index=pd.Index(rows, name="row"))
            frame["id"] = self.ids[rows]
            frame["catalog_class"] = self.catalog["catalog_class"].to_numpy()[rows]
            pred = emb.get("predicted")
            if pred is not None:
                pred = np.asarray(pred)[ok]
                if np.issubdtype(pred.dtype, np.integer):
                    pred = np.asarray(CLASSES, dtype=object)[pred]
                else:
                    pred = pred.astype(str)
                frame["predicted"] = pred
            else:
                frame["predicted"] = NO_LABEL
            prob = emb.get("probabilities")
            frame["confidence"] = np.asarray(prob)[ok].max(axis=1) if prob is not None else np.nan
            gmm = emb.get("gmm_labels")
            if gmm is not None:  # one str object per cluster, not per galaxy
                codes = np.asarray(gmm)[ok].astype(int)
                names = np.array([str(c) for c in range(codes.max() + 1 if codes.size else 0)], dtype=object)
                frame["gmm"] = names[codes] if codes.size and codes.min() >= 0 else codes.astype(str)
            else:
                frame["gmm"] = NO_LABEL
            frame["spf"] = self.catalog["spf"].to_numpy(dtype=float)[rows] if "spf" in self.catalog else np.nan
            for k, v in self._metrics.items():
                frame[k] = v[rows]
            return frame

        return self.shared.memo(("app", "base", run, px, py), build)

    def _frame_and_keep(self, model: str | None) -> tuple[pd.DataFrame, np.ndarray | None]:
        """(the map table, the filters' mask over the base table or None when nothing is filtered)."""
        run, px, py = self._view_key(model)
        # A session with its own queue (Inspect next) has its own acquisition column.
        queue = (id(self), self.queue_version) if len(self._queue_scores) else ""
        key = ("app", "frame", run, px, py, tuple(self.class_filter), tuple(self.consensus_filter),
               self._votes_serial, (inspector_key(self.voter), self.sees_all) if self.blind else "", queue)
        if key in self._frames:
            return self._frames[key]

        def build() -> tuple[pd.DataFrame, np.ndarray | None]:
            base = self._base_frame(run, px, py)
            rows = base.index.to_numpy()
            label, nvotes, disagree = self.consensus_columns()
            frame = base.copy(deep=False)
            frame.insert(4, "consensus", label[rows])
            frame.insert(5, "n_votes", nvotes[rows])
            frame.insert(6, "disagreement", disagree[rows])
            frame.insert(list(frame.columns).index("gmm") + 1, "acquisition",
                         self._queue_scores.reindex(rows).to_numpy(dtype=float) if len(self._queue_scores)
                         else np.full(len(rows), np.nan))
            keep = np.ones(len(frame), dtype=bool)
            if self.class_filter:
                keep &= frame["catalog_class"].isin(self.class_filter).to_numpy()
            if self.consensus_filter:
                keep &= frame["consensus"].isin(self.consensus_filter).to_numpy()
            if keep.all():
                return frame, None
            return frame[keep], keep

        out = self.shared.memo(key, build)
        self._frames.clear()  # this session's last view only; the shared memo holds the others
        self._frames[key] = out
        return out

    # -- selection -------------------------------------------------------------------------------
    def _set_selection(self, rows: np.ndarray, source: str) -> np.ndarray:
        rows = np.asarray(rows, dtype=int)
        self.param.update(selected=rows, selection_source=source)
        return rows

    def select_polygon(self, xs: Sequence[float], ys: Sequence[float], model: str | None = None) -> np.ndarray:
        """Select the (filtered) galaxies inside a lasso polygon drawn on ``model``'s map."""
        run, px, py = self._view_key(model)
        base = self._base_frame(run, px, py)
        index = self.shared.memo(("app", "point-index", run, px, py),
                                 lambda: PointIndex(base["x"].to_numpy(), base["y"].to_numpy()))
        mask = index.in_polygon(xs, ys)  # exact; the cost grows with the points near the outline
        _, keep = self._frame_and_keep(model)
        if keep is not None:
            mask &= keep
        return self._set_selection(base.index.to_numpy()[mask], f"lasso on the {(model or self.model).upper()} map")

    def select_bounds(self, bounds: Sequence[float], model: str | None = None) -> np.ndarray:
        frame = self.map_frame(model)
        mask = points_in_bounds(frame["x"].to_numpy(), frame["y"].to_numpy(), bounds)
        return self._set_selection(frame.index.to_numpy()[mask], f"box on the {(model or self.model).upper()} map")

    def select_where(self, column: str, values: Sequence[str], model: str | None = None) -> np.ndarray:
        """Select the galaxies whose map-frame ``column`` (e.g. gmm, catalog_class) is in ``values``."""
        frame = self.map_frame(model)
        mask = frame[column].astype(str).isin([str(v) for v in values]).to_numpy()
        return self._set_selection(frame.index.to_numpy()[mask], f"{column} in {', '.join(map(str, values))}")

    def select_ids(self, ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Select galaxies by id (any order); returns (rows, ids not in the workspace).

        An id that is not in the workspace but splits on commas, semicolons or spaces into ids
        that all are (a pasted ``a, b, c`` line) stands for those ids.
        """
        ids = [str(i) for i in ids]
        known = self.row_of.get_indexer(ids) >= 0
        if not known.all():
            out: list[str] = []
            for gid, ok in zip(ids, known):
                parts = [] if ok else split_id_line(gid)
                if len(parts) > 1 and (self.row_of.get_indexer(parts) >= 0).all():
                    out.extend(parts)
                else:
                    out.append(gid)
            ids = out
        rows = self.row_of.get_indexer(ids)
        unknown = [i for i, r in zip(ids, rows) if r < 0]
        rows = rows[rows >= 0]
        _, first = np.unique(rows, return_index=True)
        rows = rows[np.sort(first)]
        return self._set_selection(rows, "id list"), unknown

    def clear_selection(self) -> None:
        self._set_selection(np.empty(0, dtype=int), "")

    def stamps(self, rows: Sequence[int], kinds: Sequence[str]) -> dict[str, np.ndarray]:
        """Stamps of the galaxies at catalog ``rows`` (any order), for each kind.

        Parameters
        ----------
        rows : sequence of int
            Catalog rows; the stamps come back in this order.
        kinds : sequence of str
            Stamp arrays of the workspace (``original``, ``model``, ``residual``, ``object_only``,
            ``goi_mask``).

        Returns
        -------
        dict
            Kind -> array of shape (len(rows), ny, nx); read from the store in increasing row
            order (chunk by chunk), then put back in the order of ``rows``.
        """
        rows = np.asarray(rows, dtype=int)
        if rows.size == 0:
            return {k: np.empty((0, 1, 1)) for k in kinds}
        order = np.argsort(rows)
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        store = self.ws.stamps()
        return {k: np.asarray(store.read(k, rows[order]))[inv] for k in kinds}

    def selection_table(self, rows: np.ndarray | None = None, reveal: bool = False) -> pd.DataFrame:
        """ids + votes + metrics of the selection (what 'export selection' writes).

        In blind mode others' votes and the consensus are hidden as in :meth:`consensus_columns`,
        unless ``reveal`` (only the lead may ask: :meth:`lead_only`).
        """
        if reveal:
            self.lead_only("the blind-mode export")
        rows = self.selected if rows is None else np.asarray(rows, dtype=int)
        cols = [c for c in ("id", "field", "ra", "dec", "z", "logmass", "hmag", "catalog_class", "fit_quality",
                            "spf", "bumpiness", "rff", "sky_sigma") if c in self.catalog]
        out = self.catalog.iloc[rows][cols].reset_index(drop=True)
        label, nvotes, disagree = self.consensus_columns(reveal=reveal)
        out["consensus"] = label[rows]
        out["n_votes"] = nvotes[rows]
        run = self.run_of(self.model)
        if run and not self.embedding_error(run):
            frame = self.map_frame()
            sub = frame.reindex(rows)
            out["predicted"] = sub["predicted"].to_numpy()
            out["confidence"] = sub["confidence"].to_numpy()
            out["gmm_cluster"] = sub["gmm"].to_numpy()
        if len(self.votes):
            v = self.votes[self.votes["id"].isin(set(out["id"]))]
            if self.blind and not (reveal or self.sees_all):
                mine = set(v.loc[self.is_me(v["inspector"].to_numpy()), "id"])
                v = v[v["id"].isin(mine)]
            pairs = v["inspector"].astype(str) + ":" + v["label"].astype(str)
            per = pairs.groupby(v["id"]).agg("; ".join)
            out["votes"] = out["id"].map(per).fillna("")
        else:
            out["votes"] = ""
        return out

    @property
    def selections_dir(self) -> Path:
        return self.ws.root / "selections"

    def saved_selections(self) -> list[str]:
        return sorted(p.stem for p in self.selections_dir.glob("*.txt")) if self.selections_dir.is_dir() else []

    def save_selection(self, name: str) -> Path:
        """Save the selected ids as ``selections/<name>.txt`` in the workspace (one id a line)."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()).strip("._")
        if not name:
            raise ValueError("give the selection a name (letters, digits, _ . -)")
        self.selections_dir.mkdir(exist_ok=True)
        path = self.selections_dir / f"{name}.txt"
        path.write_text("\n".join(self.ids[self.selected]) + "\n")
        return path

    def load_selection(self, name: str) -> tuple[np.ndarray, list[str]]:
        path = self.selections_dir / f"{name}.txt"
        return self.select_ids(parse_id_list(path.read_text()))

    # -- the Inspect-next queue -------------------------------------------------------------------
    def inspect_next(self, strategy: str | None = None, batch: int | None = None) -> pd.DataFrame:
        """Fill the selection (the gallery) with a batch of the Inspect-next queue.

        The queue is :func:`core.latent.queue.build_queue` on the workspace's active runs, in the
        order ``resx queue`` prints; batch ``b`` is the galaxies ``b * n + 1 .. (b + 1) * n``
        (``queue.n``). Sets :attr:`queue_rows`, :attr:`queue_info` and the map's acquisition
        scores; an error (no prepared galaxies, a store that is down) goes to ``queue_info``.

        Parameters
        ----------
        strategy : str, optional
            One of :data:`QUEUE_STRATEGIES` (default :attr:`queue_strategy`).
        batch : int, optional
            Which batch (default :attr:`queue_batch`).

        Returns
        -------
        pandas.DataFrame
            The batch (``rank``, ``id``, ``row``, ``score``, ``cluster``); empty on error.
        """
        from core.latent.queue import build_queue

        strategy = strategy or self.queue_strategy
        batch = self.queue_batch if batch is None else int(batch)
        n = int(self.qcfg.get("n", DEFAULT_CONFIG["queue"]["n"]))
        try:
            q = build_queue(self.ws, strategy, n, offset=batch * n, store=self.store)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the page stays up
            log.warning("queue failed: %s", exc)
            self.queue_info = {"error": str(exc)}
            return pd.DataFrame(columns=["rank", "id", "row", "score", "cluster"])
        rows = q.table["row"].to_numpy(dtype=int)
        self._queue_scores = q.scores
        self._frames.clear()
        self.param.update(queue_strategy=strategy, queue_batch=batch, queue_rows=rows, queue_info={
            "strategy": q.strategy, "source": q.source, "cold_start": q.cold_start,
            "labels_missing": q.labels_missing, "n_candidates": q.n_candidates, "n_retired": q.n_retired,
            "note": q.note, "batch": batch, "n": len(rows), "scores_pending": q.scores_pending})
        self._set_selection(rows, f"Inspect next ({q.strategy}, batch {batch + 1})")
        self.queue_version += 1
        return q.table

    def next_batch(self) -> pd.DataFrame:
        """The queue's next batch (votes since the last one have retired some galaxies: ranks are rebuilt)."""
        return self.inspect_next(batch=self.queue_batch + 1)

    def refresh_queue(self) -> None:
        """Rebuild the queue after a retrain (new scores) when it is in use; the first batch again."""
        if self.queue_info and "error" not in self.queue_info:
            self.inspect_next(batch=0)

    def inspector_skills(self):
        """Each inspector's Dawid–Skene skill and the estimate (:func:`core.votes.methods.store_consensus`)."""
        from core.votes.methods import store_consensus

        return store_consensus(self.store, "ds")

    # -- retrain ----------------------------------------------------------------------------------
    def start_retrain(self, model: str, epochs: int, finetune: bool, extra_args: Sequence[str] = ()) -> RetrainJob:
        """Start ``resx train ... --labels consensus --embed`` in a subprocess (the lead only)."""
        self.lead_only("starting a retrain")
        if self.job is not None and self.job.running:
            raise RuntimeError(f"run {self.job.run_id} is still training")
        init = self.run_of(model) if finetune else None
        if finetune and not init:
            raise ValueError(f"no {model.upper()} run to fine-tune from; train from scratch")
        self.job = RetrainJob(self.ws, model, epochs, init, extra_args=extra_args)
        self.job.start()
        return self.job

    def cancel_retrain(self) -> bool:
        """Ask the running retrain to stop; False when none is running."""
        if self.job is None or not self.job.running:
            return False
        self.job.cancel()
        return True

    def show_retrained_map(self, make_active: bool = False) -> str:
        """Show the running retrain's run as soon as its map is ready (:meth:`RetrainJob.map_ready`),
        while the trainer still computes the queue's acquisition scores; the queue, when in use, is
        rebuilt and says its scores are updating (:func:`core.latent.queue.build_queue`).

        Returns
        -------
        str
            '' when shown, else why not (the run's embedding cannot be read).
        """
        job = self.job
        self.refresh_runs()
        self._emb_cache.pop(job.run_id, None)
        err = self.embedding_error(job.run_id)
        if err:
            return err
        self.model = job.model
        if make_active:
            self.activate_run(job.model, job.run_id)
        else:
            self.set_run(job.model, job.run_id)
        job.map_shown = True
        self.refresh_queue()  # the new run's scores are pending: ranked by a stand-in, flagged
        return ""

    def finish_retrain(self, make_active: bool = False) -> tuple[str, str]:
        """After the process ended: show a finished run in this session (if its map was not shown
        already, :meth:`show_retrained_map`) and rebuild the queue on its new scores; else keep the
        shown run.

        The workspace's active run (``active.json``, what other sessions and ``resx embed`` open)
        changes only when ``make_active`` is true.
        """
        job = self.job
        status, message = job.outcome()
        job.release()  # the next retrain of the workspace may start
        self.refresh_runs()
        if status == "done":
            if not job.map_shown:
                err = self.show_retrained_map(make_active)
                if err:
                    return "failed", err
            elif make_active and self.ws.active_run(job.model) != job.run_id:
                self.activate_run(job.model, job.run_id)  # "make active" ticked after the map was shown
            self.refresh_queue()  # the new run's acquisition scores (resx train --embed wrote them)
        return status, message

    def predictions_changed(self, model: str | None = None) -> tuple[int, int, str] | None:
        """(changed, compared, previous run): predictions of the shown run vs. its init / previous run."""
        model = model or self.model
        run = self.run_of(model)
        if not run or model != "cnn":
            return None
        rows = self.runs_for(model)
        this = next((r for r in rows if r.id == run), None)
        prev = this.init if this and this.init else None
        if not prev:
            done = [r.id for r in rows if r.status == "done" and r.id != run]
            ids = [r.id for r in rows]
            older = [r for r in done if ids.index(r) < ids.index(run)] if run in ids else done
            prev = older[-1] if older else None
        if not prev:
            return None
        try:
            a, b = self.embedding(run), self.embedding(prev)
        except Exception:
            return None
        if a.get("predicted") is None or b.get("predicted") is None:
            return None
        pa = pd.Series(np.asarray(a["predicted"]), index=a["ids"])
        pb = pd.Series(np.asarray(b["predicted"]), index=b["ids"])
        common = pa.index.intersection(pb.index)
        changed = int((pa.loc[common].to_numpy() != pb.loc[common].to_numpy()).sum())
        return changed, len(common), prev
