"""The paper's networks (§4), their inputs (scaling, split, augmentation) and training runs.

``__all__`` lists the public names; each is imported from its module on first use.
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".models": ["CVAE", "build_cnn", "build_cvae", "build_model", "latent_model"],
    ".scaling": ["StampScaler", "scale_stamps"],
    ".augment": ["augment_dataset", "split_sample"],
    ".schedule": ["StepHalving", "make_schedule"],
    ".data": ["TrainingData", "TrainingError", "load_training_data", "training_labels"],
    ".evaluate": ["evaluate_cnn", "evaluate_cvae"],
    ".training": ["train"],
    ".runs": ["RunError", "RunInfo", "activate", "list_runs", "read_run"],
})
