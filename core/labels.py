"""The residual classes of the paper's Table 1, and the other labels inspectors may give."""

from __future__ import annotations

#: The five trainable residual classes, in the order of the model's softmax output.
CLASSES: tuple[str, ...] = ("Clean", "General", "Core", "Asymmetric", "Peculiar")

#: The fit-quality flag: a galaxy whose residual cannot be judged (image edge, bright star).
FIT_QUALITY = "FitQuality"

#: An inspector who cannot decide. Never enters training.
SKIP = "Skip"

#: Every label a vote may carry.
VOTE_LABELS: tuple[str, ...] = CLASSES + (FIT_QUALITY, SKIP)

#: Class fractions of the paper's Table 1 (10,046 CANDELS galaxies).
TABLE1_FRACTIONS: dict[str, float] = {
    "Clean": 0.380,
    "General": 0.060,
    "Core": 0.195,
    "Asymmetric": 0.303,
    "Peculiar": 0.051,
    FIT_QUALITY: 0.011,
}


def class_index(label: str) -> int:
    """Index of a trainable class in :data:`CLASSES` (``ValueError`` for anything else)."""
    try:
        return CLASSES.index(label)
    except ValueError:
        raise ValueError(f"{label!r} is not a trainable class; expected one of {', '.join(CLASSES)}") from None
