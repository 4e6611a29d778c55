"""Errors of the data layer, each with a CamelCase reason for conditions and reports."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(Exception):
    """Bad or unreadable data; `reason` is a CamelCase word suitable for a condition."""

    def __init__(self, message: str, reason: str = "InvalidData") -> None:
        super().__init__(message)
        self.reason = reason
