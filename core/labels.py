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


#: The definitions inspectors follow: the paper's Table 1, column 2 (verbatim), and the two other labels.
DEFINITIONS: dict[str, str] = {
    "Clean": "The residual has no apparent features or structures pertaining to the galaxy and is consistent with "
             "the background noise.",
    "General": "The residual hosts strong left-over light with either a symmetric disk or spiral-like structure, or "
               "clumpy under-fit substructure associated to underlying plausible disk or spiral galaxy morphology.",
    "Core": "The residual contains one or more bright point-like grouping of pixels near to the central region (by "
            "eye) of the galaxy, and no excess away from the galaxy's central region.",
    "Asymmetric": "The residual contains concentrated or diffuse, asymmetric excess light outside the central region "
                  "of the galaxy, with or without the presence of central excess light.",
    "Peculiar": "The residual contains strong asymmetric excess light with or without multiple central point excess "
                "that aligns with the overall disturbed morphology of the galaxy.",
    FIT_QUALITY: "Fit-quality issue: the galaxy's residual region of interest is very close to the image edges or "
                 "artefacts, or is dominated/contaminated by a nearby star's light.",
    SKIP: "You cannot decide: the vote is recorded but never used for training.",
}


def class_index(label: str) -> int:
    """Index of a trainable class in :data:`CLASSES` (``ValueError`` for anything else)."""
    try:
        return CLASSES.index(label)
    except ValueError:
        raise ValueError(f"{label!r} is not a trainable class; expected one of {', '.join(CLASSES)}") from None
