"""The latent space (§5): latents of a run, PCA, k-means elbow, GMM, SVC, and the stored embedding.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".analysis": ["KMeansElbow", "LatentAnalysis", "PCAlignment", "elbow_point", "predict_grid", "svc_predict"],
    ".inference": ["extract_latents"],
    ".embed": ["embed_run"],
    ".embedding": ["Embedding", "EmbeddingError", "load_embedding"],
})
