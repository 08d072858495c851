"""The latent space (§5): latents of a run, PCA, k-means elbow, GMM, SVC, and the stored embedding.

Public names (imported from their modules on first use):

* ``analysis``: ``KMeansElbow``, ``LatentAnalysis``, ``PCAlignment``, ``elbow_point``, ``predict_grid``, ``svc_predict``
* ``inference``: ``extract_latents``
* ``embed``: ``embed_run``
* ``embedding``: ``Embedding``, ``EmbeddingError``, ``load_embedding``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "KMeansElbow": ".analysis",
    "LatentAnalysis": ".analysis",
    "PCAlignment": ".analysis",
    "elbow_point": ".analysis",
    "predict_grid": ".analysis",
    "svc_predict": ".analysis",
    "extract_latents": ".inference",
    "embed_run": ".embed",
    "Embedding": ".embedding",
    "EmbeddingError": ".embedding",
    "load_embedding": ".embedding",
})
