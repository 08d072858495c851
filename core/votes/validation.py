"""What the vote store accepts: labels (with aliases), inspector names, galaxy ids, comments."""

from __future__ import annotations

import unicodedata
from typing import Any, Iterable

from core.labels import FIT_QUALITY, SKIP, VOTE_LABELS
from core.votes.errors import VoteStoreError

__all__ = ["MAX_COMMENT", "MAX_GALAXY_ID", "MAX_NAME", "ROLES", "SOURCES", "UNAUTHENTICATED", "check_galaxy_id",
           "check_galaxy_ids",
           "check_text", "display_name", "inspector_key", "normalize_label"]

ROLES: tuple[str, ...] = ("inspector", "expert")
#: Where a vote came from. ``ui-unauth``: the dashboard served without authentication, so the name
#: is only what someone typed -- such a vote counts like any other, but never as an expert's.
SOURCES: tuple[str, ...] = ("ui", "import", "simulated", "ui-unauth")
UNAUTHENTICATED = "ui-unauth"

#: Longest accepted inspector name, galaxy id and comment (characters).
MAX_NAME = 200
MAX_GALAXY_ID = 200
MAX_COMMENT = 10_000

_LABEL_ALIASES = {"unsure": SKIP, "fit_quality": FIT_QUALITY, "fit quality": FIT_QUALITY}
_LABEL_LOOKUP = {lab.lower(): lab for lab in VOTE_LABELS} | _LABEL_ALIASES


def check_text(value: Any, what: str, max_len: int, *, allow_empty: bool = False) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise VoteStoreError(f"{what} must be a string, not {type(value).__name__} {value!r}")
    value = str(value)  # numpy.str_ -> str
    if "\x00" in value:
        raise VoteStoreError(f"{what} {value[:40]!r} contains a NUL character")
    if not allow_empty and not value.strip():
        raise VoteStoreError(f"{what} must not be empty")
    if len(value) > max_len:
        raise VoteStoreError(f"{what} is {len(value)} characters long; at most {max_len} are allowed")
    return value


def inspector_key(name: Any) -> str:
    """The identity of an inspector name: Unicode NFC, surrounding white space trimmed, case-folded.

    ``" Alice "``, ``"alice"`` and ``"ALICE"`` are one inspector; so are a precomposed ``"é"`` and
    ``"e"`` + combining acute. Names are stored and shown as typed (:func:`display_name`); only
    lookups and comparisons use the key.

    Parameters
    ----------
    name : str
        An inspector name (or a login).

    Returns
    -------
    str
    """
    text = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).strip().casefold())


def display_name(name: str) -> str:
    """How a new inspector name is stored and shown: as typed, in NFC, without surrounding white space."""
    return unicodedata.normalize("NFC", str(name)).strip()


def normalize_label(label: Any) -> str:
    """The canonical vote label for ``label`` (case-insensitive; "unsure" means Skip).

    Raises
    ------
    VoteStoreError
        When the label is none of :data:`core.labels.VOTE_LABELS`.
    """
    if isinstance(label, str):
        canonical = _LABEL_LOOKUP.get(label.strip().lower())
        if canonical is not None:
            return canonical
    raise VoteStoreError(f"unknown label {label!r}; expected one of {', '.join(VOTE_LABELS)}")


def check_galaxy_id(value: Any) -> str:
    if not isinstance(value, (str, bytes)):
        value = str(value)
    return check_text(value, "galaxy id", MAX_GALAXY_ID)


def check_galaxy_ids(ids: Iterable[Any] | str) -> list[str]:
    """Validated galaxy ids, each once, in first-seen order (a single string is one id)."""
    return list(dict.fromkeys(check_galaxy_id(g) for g in ([ids] if isinstance(ids, (str, bytes)) else ids)))
