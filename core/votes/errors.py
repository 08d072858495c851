"""The vote store's errors."""

from __future__ import annotations

from core.errors import ResxError

__all__ = ["VoteImportError", "VoteStoreError"]


class VoteStoreError(ResxError, ValueError):
    """A vote that cannot be stored (unknown label, galaxy or inspector, bad text, bad store)."""


class VoteImportError(VoteStoreError):
    """An import file with invalid rows; :attr:`problems` lists them. Nothing was written."""

    def __init__(self, path: str, problems: list[str]):
        self.path, self.problems = path, problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{path}: {len(problems)} invalid row(s); nothing was imported:\n  {shown}{more}")
