"""Residual Explorer's engine: from GALFIT fits to a latent map of residual substructure.

The subpackages follow the pipeline (see ``DESIGN.md`` and the README):

* :mod:`core.io` — GALFIT blocks, FITS images, catalogs, the stamp store;
* :mod:`core.fitting` — Sérsic profiles and the single-Sérsic fitter (``resx fit``);
* :mod:`core.simulation` — the mock survey and simulated inspectors (``resx simulate``);
* :mod:`core.segmentation` — SEP extraction and the galaxy of interest, for the fitter and prep;
* :mod:`core.prep` — object-only stamps and residual metrics (``resx prep``);
* :mod:`core.learn` — the CNN and the CvAE, their inputs and training runs (``resx train``, ``resx runs``);
* :mod:`core.latent` — latents, PCA, elbow, GMM, SVC (``resx embed``);
* :mod:`core.votes` — the vote store, consensus, agreement (``resx votes``);
* :mod:`core.workspace` — the workspace folder, its config, the cuts, ingest (``resx ingest``);
* :mod:`core.parallel` — Dask plumbing; :mod:`core.cli` — the ``resx`` command.

Every expected failure derives from :class:`ResxError`. Importing a subpackage is cheap: its
public names are imported from their modules on first use.
"""

from core.errors import ResxError

__all__ = ["ResxError", "__version__"]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("residual-explorer")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
