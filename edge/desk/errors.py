"""The desk's one error: something the clerk can fix, named by a stable code."""

from __future__ import annotations

from typing import Any


class DeskError(Exception):
    """Something the clerk can fix; ``reason`` is a stable code the UI translates."""

    def __init__(self, reason: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(reason if field is None else f"{reason} ({field})")
        self.reason = reason
        self.field = field
        self.details = details
