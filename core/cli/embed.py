"""``resx embed``: latents, PCA, k-means elbow, GMM and SVC of a run (:func:`core.latent.embed.embed_run`)."""

from __future__ import annotations

import argparse

from core.cli.common import add_command

HELP = "Latents, PCA, k-means elbow, GMM and SVC boundaries for a run."


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "embed", HELP, run)
    p.add_argument("--run", default=None, help="run id (default: the active run of --model)")
    p.add_argument("--model", choices=["cnn", "cvae"], default="cnn")
    p.add_argument("--scheduler", default=None, help="a running dask.distributed scheduler for the latent inference: its address "
                   "(tcp://host:8786) or scheduler file; its workers must see the workspace at the same path")


def run(args: argparse.Namespace) -> int:
    from core.latent.embed import embed_run
    from core.workspace.workspace import Workspace, WorkspaceError

    ws = Workspace.open(args.workspace)
    run_id = args.run or ws.active_run(args.model)
    if not run_id:
        raise WorkspaceError(f"no active {args.model} run in {ws.root}; give --run RUN "
                             f"(see `resx runs {ws.root}`)")
    emb = embed_run(ws, run_id, scheduler=args.scheduler)
    ev = ", ".join(f"{v:.1%}" for v in emb.explained_variance)
    print(f"run {run_id} ({emb.model}): {len(emb.ids)} galaxies embedded")
    print(f"  explained variance of PC1..PC{len(emb.explained_variance)}: {ev}")
    print(f"  k-means elbow: k = {emb.elbow_k}; GMM with {emb.elbow_k} components on PC1-PC2")
    print(f"  SVC ({emb.svc_kernel}) fitted to {emb.svc_target or 'nothing'}"
          + (f"; PCs aligned to run {emb.aligned_to}" if emb.aligned_to else ""))
    print(f"  inference {emb.meta['inference_s']:.1f} s, analysis {emb.meta['analysis_s']:.1f} s")
    return 0
