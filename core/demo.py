"""`resx demo`: from nothing to a ready workspace — simulate, ingest, prep, votes, train, embed.

Stages (each printed with its time, each skipped when already done, so an interrupted demo
resumes and a complete one is left as it is unless ``force``):

1. ``simulate`` — :func:`core.simulation.survey.simulate_survey` of ``n`` galaxies
   (:data:`DEFAULT_N` = 1,000 by default for the time goal, never fewer than 1,000) into ``WORKSPACE/simulation/`` (blocks, catalog, votes.csv), so the
   workspace is self-contained and can be copied;
2. ``ingest`` — :func:`core.workspace.ingestion.ingest` with the sample cuts;
3. ``prep`` — :func:`core.prep.pipeline.prep_workspace` (object-only stamps, metrics, split);
4. ``votes`` — the three simulated inspectors' votes into the vote store (source "simulated");
5. ``train cnn`` / ``train cvae`` — the demo schedules :data:`DEMO_SCHEDULE` (short: the
   paper's full schedule is 100 epochs of 25,000 images; `tests/benchmarks/science_check.py`
   runs it);
6. ``embed cnn`` / ``embed cvae`` — latents, PCA, elbow, GMM, SVC.

The demo schedules were sized for the 180 s goal on a 2-core CPU: the CNN sees
``epochs x per_class x 5`` augmented images. ``demo.json`` in the workspace records the stage
times and the runs.

Known limits of the short schedules: the CNN at the paper's 1e-4 is under-fitted in its 240
steps, hence the demo's 3e-3; the CvAE's stamps are noise-dominated, so its test reconstruction
MSE stays near the pixel variance. The numbers are measured, not quoted here: ``resx demo``
prints the test accuracy, recall and MSE (``demo.json`` records them), and
``tests/benchmarks/bench_reproducibility.py`` measures how far they and ρ(PC1, log SPF) move
between two runs, thread counts, oneDNN on/off and TensorFlow's deterministic ops (the
cross-machine tolerance).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from core.errors import ResxError

log = logging.getLogger(__name__)


class DemoError(ResxError, ValueError):
    """The demo cannot be built with these parameters."""

MIN_GALAXIES = 1000
SIMULATION = "simulation"
DEMO_JSON = "demo.json"

#: Galaxies the demo simulates by default. The issue asks for 2,000 unless the 180 s goal
#: demands fewer: simulating + fitting 1,000 galaxies alone took ~75 s on the shared 2-core
#: machine, so 2,000 cannot fit; `resx demo --n 2000` builds the larger survey.
DEFAULT_N = 1000

#: Short training schedules of the demo (train section overrides per model): the paper's
#: architecture, Adam, batches of 32 and the halving every third of the steps, but fewer images
#: and a higher initial learning rate (with the paper's 1e-4 the CNN's 240 steps leave it
#: under-fitted; a higher rate does not over-fit here: the unaugmented training images score
#: about what the test images do). ``learning_rate`` goes to the run's config
#: (``train.learning_rate``); the rest are :func:`core.learn.training.train` arguments.
#: ``early_stopping`` (``train.early_stopping``) is off: a patience of 10 epochs cannot end a
#: 6-epoch schedule, and the validation split would take 10 % of the few training galaxies.
DEMO_SCHEDULE: dict[str, dict[str, Any]] = {
    "cnn": {"epochs": 6, "per_class": 250, "learning_rate": 3e-3, "early_stopping": False},
    "cvae": {"epochs": 3, "per_class": 150, "learning_rate": 3e-3, "early_stopping": False},
}


def _complete(root: Path) -> bool:
    """A demo workspace whose every stage finished (active CNN and CvAE runs, embedded)."""
    from core.workspace.workspace import Workspace, WorkspaceError

    marker = root / DEMO_JSON
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
        ws = Workspace.open(root)
    except (json.JSONDecodeError, OSError, WorkspaceError):
        return False
    if not info.get("complete"):
        return False
    for model in ("cnn", "cvae"):
        run = ws.active_run(model)
        if not run or not (ws.runs_dir / run / "embedding.npz").exists():
            return False
    return True


def build_demo(
    root: str | Path | None = None,
    n: int = DEFAULT_N,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    schedule: dict[str, dict[str, Any]] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build (or complete) the demo workspace at ``root``.

    Parameters
    ----------
    root : path, optional
        Workspace folder (default :func:`core.workspace.workspace.default_workspace`).
    n : int
        Galaxies to simulate (at least :data:`MIN_GALAXIES`).
    seed : int
        Seed of the simulation and of training.
    force : bool
        Rebuild every stage even if the workspace is complete.
    progress : bool
        Progress bars.
    schedule : dict, optional
        Training overrides per model (default :data:`DEMO_SCHEDULE`).
    echo : callable, optional
        Where stage messages go (default: the ``core.demo`` logger at INFO; the CLI passes
        ``print``).

    Returns
    -------
    dict
        ``{"workspace", "stages": {name: seconds}, "runs": {model: run id}, "accuracy",
        "recon_mse", "complete"}`` (also written to ``demo.json``).
    """
    from core.workspace.workspace import Workspace, default_workspace

    echo = echo or log.info
    root = Path(root) if root is not None else default_workspace()
    if n < MIN_GALAXIES:
        raise DemoError(f"the demo needs at least {MIN_GALAXIES} galaxies, not {n}")
    if not force and _complete(root):
        info = json.loads((root / DEMO_JSON).read_text())
        info["skipped"] = True
        echo(f"{root} is already a complete demo workspace (use --force to rebuild)")
        return info
    schedule = {m: {**DEMO_SCHEDULE[m], **(schedule or {}).get(m, {})} for m in DEMO_SCHEDULE}
    root.mkdir(parents=True, exist_ok=True)
    marker = root / DEMO_JSON
    info: dict[str, Any] = json.loads(marker.read_text()) if marker.exists() and not force else {}
    if info.get("n") not in (None, n) or info.get("seed") not in (None, seed):
        force = True  # another survey: start over
        info = {}
    info.update({"workspace": str(root), "n": n, "seed": seed, "complete": False})
    info.setdefault("stages", {})
    info.setdefault("runs", {})
    done = set(info.get("done", [])) if not force else set()

    def save():
        info["done"] = sorted(done)
        marker.write_text(json.dumps(info, indent=2))

    def stage(name: str, fn):
        if name in done:
            echo(f"  {name:<11} already done")
            return None
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        info["stages"][name] = round(dt, 1)
        done.add(name)
        save()
        echo(f"  {name:<11} {dt:6.1f} s")
        return out

    sim = root / SIMULATION
    t_all = time.perf_counter()
    echo(f"building the demo workspace in {root} ({n} simulated galaxies)")

    def simulate():
        from core.simulation.survey import simulate_survey

        simulate_survey(n, seed, sim, progress=progress)

    def ingest():
        from core.workspace.ingestion import ingest as _ingest

        _ingest(sim, root, force=True, progress=progress)

    def prep():
        from core.prep.pipeline import prep_workspace

        prep_workspace(Workspace.open(root), progress=progress)

    def votes():
        from core.votes.files import read_vote_file
        from core.votes.store import open_store

        ws = Workspace.open(root)
        table = read_vote_file(sim / "votes.csv")
        known = set(str(i) for i in ws.read_catalog()["id"])
        table = table[table["id"].astype(str).isin(known)]  # votes on galaxies the cuts removed
        with open_store(ws) as store:
            store.import_votes(table, source="simulated", name=str(sim / "votes.csv"))

    def train(model: str):
        from core.learn.training import train as _train

        def go():
            ws = Workspace.open(root)
            kw = dict(schedule[model])
            lr = kw.pop("learning_rate", None)
            overrides = {"models": kw.pop("models")} if "models" in kw else {}
            if lr is not None:
                overrides["train"] = {"learning_rate": float(lr)}
            early = kw.pop("early_stopping", None)
            if early is not None:
                overrides.setdefault("train", {})["early_stopping"] = bool(early)
            run = _train(ws, model, "catalog", seed=seed, progress=progress, run_id=None,
                         config=overrides or None, **kw)
            info["runs"][model] = run.id
            if model == "cnn":
                info["accuracy"] = run.accuracy
                ev = json.loads((run.path / "evaluation.json").read_text())
                info["recall"] = {c: v["recall"] for c, v in ev["per_class"].items()}
            else:
                info["recon_mse"] = run.recon_mse
                info["recon_mse_ratio"] = run.recon_mse_ratio
                if run.warning:
                    info["cvae_warning"] = run.warning
        return go

    def embed(model: str):
        from core.latent.embed import embed_run

        def go():
            ws = Workspace.open(root)
            emb = embed_run(ws, info["runs"][model])
            info.setdefault("elbow_k", {})[model] = emb.elbow_k
            info.setdefault("explained_variance", {})[model] = [round(float(v), 4) for v in emb.explained_variance]
        return go

    stage("simulate", simulate)
    stage("ingest", ingest)
    stage("prep", prep)
    stage("votes", votes)
    for model in ("cnn", "cvae"):
        stage(f"train {model}", train(model))
    for model in ("cnn", "cvae"):
        stage(f"embed {model}", embed(model))
    info["total_s"] = round(time.perf_counter() - t_all, 1)
    info["complete"] = True
    save()
    return info
