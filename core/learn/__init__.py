"""The paper's networks (§4), their inputs (scaling, split, augmentation) and training runs.

Public names (imported from their modules on first use):

* ``models``: ``CVAE``, ``build_cnn``, ``build_cvae``, ``build_model``, ``latent_model``
* ``scaling``: ``StampScaler``, ``scale_stamps``
* ``augment``: ``augment_dataset``, ``split_sample``
* ``schedule``: ``StepHalving``, ``make_schedule``
* ``data``: ``TrainingData``, ``TrainingError``, ``load_training_data``, ``training_labels``
* ``evaluate``: ``evaluate_cnn``, ``evaluate_cvae``
* ``training``: ``train``
* ``runs``: ``RunError``, ``RunInfo``, ``activate``, ``list_runs``, ``read_run``
"""

from core._exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "CVAE": ".models",
    "build_cnn": ".models",
    "build_cvae": ".models",
    "build_model": ".models",
    "latent_model": ".models",
    "StampScaler": ".scaling",
    "scale_stamps": ".scaling",
    "augment_dataset": ".augment",
    "split_sample": ".augment",
    "StepHalving": ".schedule",
    "make_schedule": ".schedule",
    "TrainingData": ".data",
    "TrainingError": ".data",
    "load_training_data": ".data",
    "training_labels": ".data",
    "evaluate_cnn": ".evaluate",
    "evaluate_cvae": ".evaluate",
    "train": ".training",
    "RunError": ".runs",
    "RunInfo": ".runs",
    "activate": ".runs",
    "list_runs": ".runs",
    "read_run": ".runs",
})
