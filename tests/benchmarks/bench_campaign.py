"""A simulated inspection campaign: fewer votes for the same science? (not a test).

Measures, on a simulated survey (``resx simulate`` + ingest + prep: real single-Sérsic residuals)
voted by simulated inspectors with **known per-class confusion matrices**
(:data:`core.simulation.inspectors.CAMPAIGN_INSPECTORS`: two careful, one careless, one biased
toward Core):

1. **Votes to a target accuracy per acquisition strategy.** The prepared galaxies' catalog split
   holds out the test set (accuracy against the simulator's true classes, never seen by the
   campaign). The rest is the pool. Per campaign seed, every pool galaxy's votes are drawn once
   (3 of the 4 inspectors, at random), so every strategy sees the same vote for the same galaxy.
   The CNN (the paper's architecture: ``core.learn.models.build_cnn``) starts from a random seed
   set of ``--seed-set`` galaxies and their **consensus** labels (never the true classes), then
   each of ``--rounds`` rounds picks ``--batch`` galaxies by the strategy (``random``, ``bald``
   with ``--passes`` MC-dropout passes, ``entropy``, ``margin``; the queue's GMM-cluster
   diversity ``--diversity`` on the latent PCs, not for random), casts their 3 votes, and
   fine-tunes the CNN on every consensus label so far. Held-out accuracy is recorded against
   the votes cast. The **target** is ``--target`` (0.9) x the accuracy of a CNN trained the same
   way on the consensus labels of the *whole* pool; votes to target are interpolated between
   rounds (NaN: not reached within the budget).
2. **Consensus accuracy per method** on the whole pool's votes, against the true classes:
   2/3 majority (an undecided galaxy counts as wrong), Dawid–Skene, and the classifier-aware
   method with out-of-fold CNN probabilities (two CNNs, each trained on the consensus of one half
   of the pool and predicting the other half), overall and on galaxies the careless inspector
   voted on.

Writes ``OUT/campaign.json`` (every curve and number), ``OUT/campaign.png`` (accuracy vs votes
per strategy, mean and min–max over seeds) and prints the tables. Run:

    .venv/bin/python tests/benchmarks/bench_campaign.py            # the default size (below)
    .venv/bin/python tests/benchmarks/bench_campaign.py --quick    # a smoke run, a few minutes

Default size (the arguments' defaults): a survey of 2,000 simulated galaxies (1,764 usable after
the cuts and prep: 1,410 in the pool, 354 held out; built once and cached in ``--cache``, 268 s
on the shared machine), 32 x 32 stamps (``--cutout``; the paper's 50 costs ~2.4x more per
image), 3 seeds, a seed set of 50 galaxies, 6 rounds of 50 (the campaign ends with 350 of the
1,410 pool galaxies voted, 1,050 votes), each (re)training 4 epochs of 120 augmented images per
class at Adam 3e-3 (fine-tuning at 1e-3; the paper's 1e-4 needs far more steps); BALD's 20 MC
passes go to the 400 candidates of highest entropy (``--bald-pool``, as ``queue.pool_size`` does
in the product). Per seed: 4 strategies x 7 trainings + 7 for the all-labels reference + 2
out-of-fold models = 37 trainings of 2,400 images, plus 3 x 6 pool scorings.

Measured time. A smaller configuration (``--n 1000 --rounds 6 --batch 40 --seed-set 40 --epochs 3
--per-class 100``, BALD over every candidate: 37 trainings of 1,500 images per seed) took 1,029 s
for 3 seeds at nice 19 on the shared 2-core machine (load ~12). The default trains ~1.6x as many
images per seed (and scores a pool twice as large), so ~30 min for 3 seeds at that load, less on
idle cores; seeds can also run
as parallel processes (``--seeds 0``, ``--seeds 1``, ...) merged by ``--report``. (At load ~22 one
training of 2,400 images took ~90 s and a default-size seed did not finish within the session.)
``--quick`` (1,000 galaxies, 1 seed, 3 rounds of 30, 2 epochs of 60 per class, 5 MC passes) is a
smoke run: 369 s on the shared machine, survey build (151 s) included.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

import numpy as np  # noqa: E402

STRATEGIES = ("random", "bald", "entropy", "margin")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------
# The survey (built once, cached)
# ----------------------------------------------------------------------------------------
def build_survey(cache: Path, n: int, seed: int, cutout: int):
    """A prepared workspace of ``n`` simulated galaxies at ``cutout`` px; returns (ids, images, truth, split)."""
    from core.labels import CLASSES
    from core.learn.scaling import scale_stamps
    from core.workspace.workspace import Workspace

    root = cache / f"survey-n{n}-s{seed}-c{cutout}"
    done = root / "campaign_ready.json"
    if not done.exists():
        from core.prep.pipeline import prep_workspace
        from core.simulation.survey import simulate_survey
        from core.workspace.ingestion import ingest

        t0 = time.perf_counter()
        log(f"building the survey in {root} ({n} galaxies, {cutout} px stamps)")
        simulate_survey(n, seed, root / "simulation", progress=False)
        ingest(root / "simulation", root, force=True, progress=False, config={"prep": {"cutout": cutout}})
        prep_workspace(Workspace.open(root), progress=False)
        done.write_text(json.dumps({"seconds": round(time.perf_counter() - t0, 1)}))
        log(f"survey built in {time.perf_counter() - t0:.0f} s")
    ws = Workspace.open(root)
    cat = ws.read_catalog()
    status = np.asarray(cat["prep_status"]).astype(str)
    truth = np.asarray(cat["catalog_class"]).astype(str)
    fq = np.asarray(cat["fit_quality"]).astype(bool) if "fit_quality" in cat.colnames else np.zeros(len(cat), bool)
    split = np.asarray(cat["split"]).astype(str)
    use = np.isin(status, ("ok", "flagged")) & ~fq & np.isin(truth, CLASSES) & np.isin(split, ("train", "test"))
    rows = np.flatnonzero(use)
    stamps = ws.stamps().read("object_only", rows=rows)
    images = scale_stamps(np.nan_to_num(stamps, nan=0.0), method="maxabs", per="stamp").astype(np.float32)
    return np.asarray(cat["id"]).astype(str)[rows], images[..., None], truth[rows], split[rows]


# ----------------------------------------------------------------------------------------
# The CNN
# ----------------------------------------------------------------------------------------
class Learner:
    """The paper's CNN, trained from scratch or fine-tuned on consensus labels."""

    def __init__(self, size: int, epochs: int, per_class: int, lr: float, seed: int, ft_lr: float | None = None):
        self.size, self.epochs, self.per_class, self.lr, self.seed = size, epochs, per_class, lr, seed
        self.ft_lr = lr if ft_lr is None else ft_lr
        self.model = None
        self.calls = 0

    def fit(self, x: np.ndarray, y: np.ndarray, *, fresh: bool) -> None:
        import keras

        from core.learn.augment import augment_dataset
        from core.learn.models import build_cnn

        self.calls += 1
        lr = self.lr
        if fresh or self.model is None:
            keras.utils.set_random_seed(self.seed)
            self.model = build_cnn(input_size=self.size)
        else:
            lr = self.ft_lr  # fine-tuning: a lower rate keeps what was learned
        self.model.compile(optimizer=keras.optimizers.Adam(lr), loss="categorical_crossentropy")
        ds = augment_dataset(x, y, per_class=self.per_class, batch_size=32, seed=self.seed * 1000 + self.calls)
        self.model.fit(ds.repeat(), epochs=self.epochs, shuffle=False,
                       steps_per_epoch=int(np.ceil(self.per_class * len(set(y.tolist())) / 32)), verbose=0)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, batch_size=256, verbose=0), dtype=np.float64)

    def latents(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import keras

        from core.learn.models import LATENT_LAYER

        infer = keras.Model(self.model.inputs, [self.model.get_layer(LATENT_LAYER).output, self.model.outputs[0]])
        lat, prob = infer.predict(x, batch_size=256, verbose=0)
        return np.asarray(lat), np.asarray(prob, dtype=np.float64)


def accuracy(learner: Learner, x: np.ndarray, truth: np.ndarray) -> float:
    from core.labels import CLASSES

    pred = np.asarray(CLASSES)[learner.probabilities(x).argmax(axis=1)]
    return float((pred == truth).mean())


# ----------------------------------------------------------------------------------------
# Consensus of the votes cast so far
# ----------------------------------------------------------------------------------------
def consensus_labels(votes, ids: np.ndarray, method: str, probs=None):
    """Consensus label per id ('' where none: undecided or FitQuality)."""
    from core.labels import CLASSES
    from core.votes.methods import compute_consensus

    res = compute_consensus(votes, ids=ids, method=method, model_probabilities=probs)
    lab = res.table["label"].astype(str).to_numpy()
    return np.where(np.isin(lab, CLASSES), lab, ""), res


def campaign(strategy: str, *, pool_x, pool_ids, votes_by_galaxy, seed_idx, test_x, test_truth, args, seed,
             size, pool_truth=None) -> list[dict]:
    """One strategy's campaign: the curve of (votes cast, test accuracy).

    With ``pool_truth`` each point also records the training labels' quality — the share of the
    consensus labels trained on that equal the simulator's true class (``label_accuracy``), of the
    picked galaxies left undecided (``undecided``) — and the true classes of the galaxies picked so
    far (``picked_classes``): what a strategy's picks cost in label noise, and whom it picks.
    """
    import pandas as pd
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    from core.latent.acquisition import bald, diverse_order, margin_score, mc_dropout_probabilities, predictive_entropy

    rng = np.random.default_rng(np.random.SeedSequence([seed, STRATEGIES.index(strategy), 11]))
    labelled = list(seed_idx)
    learner = Learner(size, args.epochs, args.per_class, args.lr, seed, args.ft_lr)
    curve = []
    for rnd in range(args.rounds + 1):
        votes = pd.concat([votes_by_galaxy[i] for i in labelled], ignore_index=True)
        ids = pool_ids[labelled]
        lab, _ = consensus_labels(votes, ids, args.train_method)
        ok = lab != ""
        learner.fit(pool_x[labelled][ok], lab[ok], fresh=rnd == 0)
        acc = accuracy(learner, test_x, test_truth)
        point = {"round": rnd, "galaxies": len(labelled), "votes": int(len(votes)), "trained_on": int(ok.sum()),
                 "accuracy": acc}
        if pool_truth is not None:
            truth = pool_truth[labelled]
            point["label_accuracy"] = float((lab[ok] == truth[ok]).mean()) if ok.any() else float("nan")
            point["undecided"] = float((~ok).mean())
            point["picked_classes"] = {str(c): int(n) for c, n in zip(*np.unique(truth, return_counts=True))}
        curve.append(point)
        log(f"  seed {seed} {strategy:<8} round {rnd}: {len(votes)} votes, {ok.sum()} labels, test acc {acc:.3f}")
        if rnd == args.rounds:
            break
        cand = np.setdiff1d(np.arange(len(pool_ids)), labelled)
        if strategy == "random":
            pick = rng.choice(cand, size=min(args.batch, len(cand)), replace=False)
        else:
            lat, prob = learner.latents(pool_x[cand])
            if strategy == "bald":
                # as the queue does (queue.pool_size): MC passes only for the candidates of highest
                # entropy (one deterministic pass); the others rank after them
                scores = np.full(len(cand), np.nan)
                top = np.argsort(-predictive_entropy(prob), kind="stable")[:args.bald_pool]
                scores[top] = bald(mc_dropout_probabilities(learner.model, pool_x[cand[top]], args.passes,
                                                            seed=seed * 100 + rnd))
            elif strategy == "entropy":
                scores = predictive_entropy(prob)
            else:
                scores = margin_score(prob)
            pcs = PCA(2, random_state=0).fit_transform(lat)
            clusters = GaussianMixture(args.clusters, random_state=0).fit_predict(pcs)
            pick = cand[diverse_order(scores, clusters, args.batch, args.diversity)]
        labelled.extend(int(i) for i in pick)
    return curve


def votes_to_target(curve: list[dict], target: float) -> float:
    """Votes at which the accuracy first reaches ``target`` (linear between rounds); NaN if never."""
    v = np.array([c["votes"] for c in curve], float)
    a = np.array([c["accuracy"] for c in curve], float)
    hit = np.flatnonzero(a >= target)
    if not hit.size:
        return float("nan")
    i = int(hit[0])
    if i == 0:
        return float(v[0])
    return float(v[i - 1] + (target - a[i - 1]) / (a[i] - a[i - 1]) * (v[i] - v[i - 1]))


def method_accuracy(pool_ids, pool_truth, votes_all, pool_x, args, seed, size) -> dict:
    """Consensus accuracy of majority / DS / classifier-aware on the whole pool's votes."""
    from core.labels import CLASSES

    out: dict[str, dict] = {}
    careless = set(votes_all.loc[votes_all["inspector"] == "careless", "id"])
    on_careless = np.isin(pool_ids, list(careless))
    # out-of-fold probabilities for the classifier-aware method: two halves, each predicted by a
    # CNN trained on the other half's majority consensus
    rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
    fold = rng.permutation(len(pool_ids)) % 2
    probs = np.full((len(pool_ids), len(CLASSES)), np.nan)
    for f in (0, 1):
        train = fold != f
        lab, _ = consensus_labels(votes_all[votes_all["id"].isin(pool_ids[train])], pool_ids[train], "majority")
        ok = lab != ""
        learner = Learner(size, args.epochs, args.per_class, args.lr, seed + 17 * (f + 1))
        learner.fit(pool_x[train][ok], lab[ok], fresh=True)
        probs[fold == f] = learner.probabilities(pool_x[fold == f])
    decided_by_majority = None
    for method in ("majority", "ds", "classifier"):
        _, res = consensus_labels(votes_all, pool_ids, method, probs if method == "classifier" else None)
        lab = res.table["label"].astype(str).to_numpy()
        right = lab == pool_truth
        if decided_by_majority is None:
            decided_by_majority = lab != "undecided"
        out[method] = {"accuracy": float(right.mean()), "careless_accuracy": float(right[on_careless].mean()),
                       "decided": float((lab != "undecided").mean()), "n": int(len(lab)),
                       "n_careless": int(on_careless.sum()),
                       # the galaxies the 2/3 rule decides: accuracy where every method gives a label
                       "accuracy_where_majority_decides": float(right[decided_by_majority].mean())}
        if method == "ds":
            out[method]["skill"] = {k: float(v) for k, v in res.skills().set_index("inspector")["skill"].items()}
        if method == "classifier":
            out[method]["weights"] = res.weights
    out["model_out_of_fold_accuracy"] = float((np.asarray(CLASSES)[probs.argmax(axis=1)] == pool_truth).mean())
    return out


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy in results["strategies"]:
        curves = [results["seeds"][str(s)]["curves"][strategy] for s in results["seed_list"]]
        v = np.array([c["votes"] for c in curves[0]])
        a = np.array([[c["accuracy"] for c in cur] for cur in curves])
        line, = ax.plot(v, a.mean(axis=0), marker="o", ms=3, label=strategy)
        ax.fill_between(v, a.min(axis=0), a.max(axis=0), color=line.get_color(), alpha=0.15)
    target = np.mean([results["seeds"][str(s)]["target"] for s in results["seed_list"]])
    ax.axhline(target, color="k", ls="--", lw=1, label=f"target ({results['args']['target']:.0%} of all labels)")
    ax.set_xlabel("votes cast")
    ax.set_ylabel("held-out test accuracy (true classes)")
    ax.set_title(f"Simulated campaign: {len(results['seed_list'])} seeds, mean and min-max")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke size: 300 galaxies, 1 seed... (see below)")
    ap.add_argument("--n", type=int, default=2000, help="simulated galaxies")
    ap.add_argument("--survey-seed", type=int, default=0)
    ap.add_argument("--cutout", type=int, default=32, help="stamp side, px")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    ap.add_argument("--seed-set", type=int, default=50)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--per-class", type=int, default=120)
    ap.add_argument("--lr", type=float, default=3e-3, help="Adam rate from scratch (the demo's)")
    ap.add_argument("--ft-lr", type=float, default=1e-3, help="Adam rate when fine-tuning after a round")
    ap.add_argument("--passes", type=int, default=20, help="BALD: MC dropout passes T")
    ap.add_argument("--bald-pool", type=int, default=400,
                    help="BALD: MC passes for this many candidates of highest entropy (queue.pool_size)")
    ap.add_argument("--diversity", type=float, default=0.5)
    ap.add_argument("--clusters", type=int, default=6, help="GMM clusters on the latent PC1-PC2 (diversity)")
    ap.add_argument("--target", type=float, default=0.9, help="share of the all-labels accuracy")
    ap.add_argument("--train-method", choices=["majority", "ds"], default="majority",
                    help="consensus method of the training labels")
    ap.add_argument("--build-only", action="store_true", help="build (cache) the survey and stop")
    ap.add_argument("--report", type=Path, nargs="+", default=None, metavar="JSON",
                    help="merge the campaign.json of runs with the same arguments but other --seeds (run in "
                    "parallel) into OUT/campaign.json and .png, print the tables, and stop")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "resx-bench-campaign")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "artifacts" / "bench_campaign")
    args = ap.parse_args()
    if args.report:
        return merge_reports(args.report, args.out)
    if args.quick:
        args.n, args.seeds, args.rounds, args.batch, args.seed_set = 1000, [0], 3, 30, 40  # ~6 min
        args.epochs, args.per_class, args.passes = 2, 60, 5
    import pandas as pd
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices of predict in a loop
    from core.simulation.inspectors import CAMPAIGN_INSPECTORS, campaign_confusions, simulate_campaign_votes

    t_all = time.perf_counter()
    args.cache.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    ids, x, truth, split = build_survey(args.cache, args.n, args.survey_seed, args.cutout)
    if args.build_only:
        log(f"survey of {len(ids)} usable galaxies ready in {args.cache}")
        return 0
    pool, test = split == "train", split == "test"
    pool_ids, pool_x, pool_truth = ids[pool], x[pool], truth[pool]
    test_x, test_truth = x[test], truth[test]
    log(f"pool {len(pool_ids)} galaxies, test {len(test_x)}; classes in the pool: "
        + ", ".join(f"{c} {n}" for c, n in zip(*np.unique(pool_truth, return_counts=True))))
    confusions = campaign_confusions()
    results: dict = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "inspectors": {k: list(v) for k, v in CAMPAIGN_INSPECTORS.items()},
                     "pool": int(len(pool_ids)), "test": int(len(test_x)), "strategies": args.strategies,
                     "seed_list": args.seeds, "seeds": {}}
    for seed in args.seeds:
        t_seed = time.perf_counter()
        votes = pd.DataFrame(simulate_campaign_votes(pool_ids, pool_truth, confusions, per_galaxy=3, seed=seed))
        by_galaxy = [g for _, g in votes.groupby("id", sort=False)]
        order = {gid: i for i, gid in enumerate(pool_ids)}
        by_galaxy = sorted(by_galaxy, key=lambda g: order[g["id"].iloc[0]])
        rng = np.random.default_rng(np.random.SeedSequence([seed, 5]))
        seed_idx = rng.choice(len(pool_ids), size=args.seed_set, replace=False)
        # the reference: every pool galaxy voted, the CNN trained on all the consensus labels
        lab, _ = consensus_labels(votes, pool_ids, args.train_method)
        ref = Learner(args.cutout, args.epochs, args.per_class, args.lr, seed, args.ft_lr)
        ref.fit(pool_x[lab != ""], lab[lab != ""], fresh=True)
        # the same number of (re)trainings as a campaign's last model saw: fine-tune as often
        for _ in range(args.rounds):
            ref.fit(pool_x[lab != ""], lab[lab != ""], fresh=False)
        acc_all = accuracy(ref, test_x, test_truth)
        target = args.target * acc_all
        log(f"seed {seed}: all {len(votes)} votes -> test accuracy {acc_all:.3f}; target {target:.3f}")
        entry: dict = {"all_labels_accuracy": acc_all, "all_votes": int(len(votes)), "target": target, "curves": {}}
        for strategy in args.strategies:
            entry["curves"][strategy] = campaign(strategy, pool_x=pool_x, pool_ids=pool_ids,
                                                 votes_by_galaxy=by_galaxy, seed_idx=seed_idx, test_x=test_x,
                                                 test_truth=test_truth, args=args, seed=seed, size=args.cutout,
                                                 pool_truth=pool_truth)
        entry["votes_to_target"] = {s: votes_to_target(c, target) for s, c in entry["curves"].items()}
        entry["methods"] = method_accuracy(pool_ids, pool_truth, votes, pool_x, args, seed, args.cutout)
        entry["seconds"] = round(time.perf_counter() - t_seed, 1)
        results["seeds"][str(seed)] = entry
        (args.out / "campaign.json").write_text(json.dumps(results, indent=2))
        log(f"seed {seed} done in {entry['seconds']:.0f} s: votes to target {entry['votes_to_target']}")
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    (args.out / "campaign.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "campaign.png")
    print_tables(results)
    (args.out / "campaign.json").write_text(json.dumps(results, indent=2))  # with the summary
    log(f"done in {results['seconds']:.0f} s; {args.out / 'campaign.json'}, {args.out / 'campaign.png'}")
    return 0


def merge_reports(paths: list[Path], out: Path) -> int:
    """One report from per-seed runs of the same configuration."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    keep = ("seeds", "seed_list", "seconds")
    base = {k: v for k, v in parts[0]["args"].items() if k not in keep + ("out",)}
    for p, part in zip(paths, parts):
        other = {k: v for k, v in part["args"].items() if k not in keep + ("out",)}
        if other != base:
            raise SystemExit(f"{p}: another configuration ({set(other.items()) ^ set(base.items())})")
    merged = dict(parts[0])
    merged["seeds"], merged["seed_list"] = {}, []
    for part in parts:
        for s_, entry in part["seeds"].items():
            merged["seeds"][s_] = entry
            merged["seed_list"].append(int(s_))
    merged["seed_list"] = sorted(set(merged["seed_list"]))
    merged["seconds_per_run"] = [part.get("seconds") for part in parts]
    out.mkdir(parents=True, exist_ok=True)
    (out / "campaign.json").write_text(json.dumps(merged, indent=2))
    plot(merged, out / "campaign.png")
    print_tables(merged)
    (out / "campaign.json").write_text(json.dumps(merged, indent=2))  # with the summary
    log(f"merged {len(parts)} runs ({merged['seed_list']}) into {out / 'campaign.json'}, {out / 'campaign.png'}")
    return 0


SENSITIVITY_SHARES = (0.90, 0.95, 1.00)


def summarise(results: dict) -> dict:
    """What the curves say beyond one target, from the same curves (no new training).

    * ``saturated_seeds``: seeds whose seed set alone (round 0, before any strategy chose a
      galaxy) already reaches the target; votes-to-target cannot tell the strategies apart there;
    * ``votes_to_share``: votes to ``share`` x the all-labels accuracy per strategy and seed for
      each share of :data:`SENSITIVITY_SHARES` (NaN: not reached), and the saving of each strategy
      vs random (1 - mean votes / random's mean votes, over the seeds where both reached it);
    * ``mean_accuracy_after_seed_set``: mean held-out accuracy over rounds 1..R (the area under the
      learning curve, per round), per strategy: mean and std over seeds, and its difference to
      random per seed (paired: the same seed set and votes).
    """
    seeds = [str(s) for s in results["seed_list"]]
    out: dict = {"saturated_seeds": [s for s in seeds
                                     if results["seeds"][s]["curves"]["random"][0]["accuracy"]
                                     >= results["seeds"][s]["target"]] if "random" in results["strategies"] else []}
    shares: dict = {}
    for share in SENSITIVITY_SHARES:
        per = {st: [votes_to_target(results["seeds"][s]["curves"][st],
                                    share * results["seeds"][s]["all_labels_accuracy"]) for s in seeds]
               for st in results["strategies"]}
        saving = {}
        for st, v in per.items():
            r = np.array(per.get("random", [np.nan] * len(seeds)))
            both = np.isfinite(r) & np.isfinite(np.array(v))
            saving[st] = float(1 - np.mean(np.array(v)[both]) / np.mean(r[both])) if both.any() else float("nan")
        shares[f"{share:.2f}"] = {"votes": per, "saving_vs_random": saving}
    out["votes_to_share"] = shares
    aulc = {st: [float(np.mean([c["accuracy"] for c in results["seeds"][s]["curves"][st][1:]])) for s in seeds]
            for st in results["strategies"]}
    last = {st: [results["seeds"][s]["curves"][st][-1] for s in seeds] for st in results["strategies"]}
    if all("label_accuracy" in c for cs in last.values() for c in cs):
        out["labels_at_last_round"] = {
            st: {"label_accuracy": float(np.mean([c["label_accuracy"] for c in cs])),
                 "undecided": float(np.mean([c["undecided"] for c in cs])),
                 "picked_classes": {k: float(np.mean([c["picked_classes"].get(k, 0) for c in cs]))
                                    for k in sorted({k for c in cs for k in c["picked_classes"]})}}
            for st, cs in last.items()}
    out["mean_accuracy_after_seed_set"] = {
        st: {"per_seed": v, "mean": float(np.mean(v)), "std": float(np.std(v)),
             "minus_random_per_seed": [a - b for a, b in zip(v, aulc["random"])] if "random" in aulc else None}
        for st, v in aulc.items()}
    return out


def print_tables(results: dict) -> None:
    seeds = [str(s) for s in results["seed_list"]]
    print("\nVotes to reach the target accuracy (mean +- std over seeds; NaN = not reached):")
    print(f"{'strategy':<10} {'votes':>16} {'vs random':>10}   per seed")
    rnd = np.array([results["seeds"][s]["votes_to_target"].get("random", np.nan) for s in seeds])
    for strategy in results["strategies"]:
        v = np.array([results["seeds"][s]["votes_to_target"][strategy] for s in seeds])
        rel = 1 - np.nanmean(v) / np.nanmean(rnd) if np.isfinite(v).any() and np.isfinite(rnd).any() else np.nan
        print(f"{strategy:<10} {np.nanmean(v) if np.isfinite(v).any() else np.nan:>8.0f} +- "  # over the seeds that reached it
              f"{np.nanstd(v) if np.isfinite(v).any() else np.nan:<5.0f} {rel:>+9.0%}   "
              + ", ".join(f"{x:.0f}" for x in v))
    acc_all = [results["seeds"][s]["all_labels_accuracy"] for s in seeds]
    print(f"all-labels accuracy {np.mean(acc_all):.3f} +- {np.std(acc_all):.3f}; target = "
          f"{results['args']['target']:.0%} of it")
    print("\nFinal test accuracy per strategy (mean +- std):")
    for strategy in results["strategies"]:
        a = [results["seeds"][s]["curves"][strategy][-1]["accuracy"] for s in seeds]
        print(f"  {strategy:<10} {np.mean(a):.3f} +- {np.std(a):.3f}")
    print("\nConsensus accuracy against the true classes (whole pool, 3 votes each; mean +- std):")
    print("(undecided counts as wrong; the last column: only the galaxies the 2/3 rule decides)")
    print(f"{'method':<11} {'all':>15} {'careless voted':>17} {'decided':>9} {'where 2/3 decides':>19}")
    for method in ("majority", "ds", "classifier"):
        m = [results["seeds"][s]["methods"][method] for s in seeds]
        a, c, d = (np.array([x[k] for x in m]) for k in ("accuracy", "careless_accuracy", "decided"))
        w = np.array([x.get("accuracy_where_majority_decides", np.nan) for x in m])
        print(f"{method:<11} {a.mean():.3f} +- {a.std():.3f}   {c.mean():.3f} +- {c.std():.3f}   {d.mean():.3f}"
              f"   {w.mean():.3f} +- {w.std():.3f}")
    sk = [results["seeds"][s]["methods"]["ds"]["skill"] for s in seeds]
    print("DS skill estimates: " + ", ".join(f"{k} {np.mean([x[k] for x in sk]):.2f}" for k in sk[0]))
    summary = summarise(results)
    results["summary"] = summary
    if summary["saturated_seeds"]:
        print(f"\nWARNING: in seed(s) {', '.join(summary['saturated_seeds'])} the seed set alone reaches the target "
              "(round 0, before any strategy picked a galaxy): votes-to-target cannot separate the strategies there.")
    print("\nSaving in votes vs random at other targets (share of the all-labels accuracy; seeds where both reach it):")
    print(f"{'strategy':<10} " + " ".join(f"{k:>8}" for k in summary["votes_to_share"]))
    for st in results["strategies"]:
        cells = [summary["votes_to_share"][k]["saving_vs_random"][st] for k in summary["votes_to_share"]]
        print(f"{st:<10} " + " ".join(f"{c:>+8.0%}" if np.isfinite(c) else f"{'n/a':>8}" for c in cells))
    if "labels_at_last_round" in summary:
        print("\nTraining labels at the last round (mean over seeds): consensus = true class, undecided, picked classes")
        for st, m in summary["labels_at_last_round"].items():
            picked = ", ".join(f"{k} {v:.0f}" for k, v in m["picked_classes"].items())
            print(f"  {st:<10} {m['label_accuracy']:.3f}   {m['undecided']:.3f}   {picked}")
    print("\nMean held-out accuracy over rounds 1..R (area under the learning curve; paired difference to random):")
    for st, m in summary["mean_accuracy_after_seed_set"].items():
        diff = m["minus_random_per_seed"]
        print(f"  {st:<10} {m['mean']:.3f} +- {m['std']:.3f}"
              + (f"   vs random {np.mean(diff):+.3f} (per seed {', '.join(f'{d:+.3f}' for d in diff)})" if diff else ""))


if __name__ == "__main__":
    sys.exit(main())
