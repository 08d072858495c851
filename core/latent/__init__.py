"""The latent space (§5): latents of a run, PCA, k-means elbow, GMM, SVC, the stored embedding, and the
acquisition scores and Inspect-next queue built on it.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".analysis": ["KMeansElbow", "LatentAnalysis", "PCAlignment", "elbow_point", "predict_grid", "svc_predict"],
    ".inference": ["extract_latents"],
    ".embed": ["embed_run"],
    ".embedding": ["Embedding", "EmbeddingError", "load_embedding"],
    ".acquisition": ["STRATEGIES", "bald", "diverse_order", "margin_score", "mc_dropout_probabilities",
                     "predictive_entropy", "vote_entropy"],
    ".queue": ["Queue", "QueueError", "build_queue", "compute_acquisition", "retired_mask"],
})
