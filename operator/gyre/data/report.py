"""The profiling pod's result, written to its termination message (at most 4 KiB)."""

from __future__ import annotations

from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from gyre.api.dataset import ColumnKind
from gyre.store.termination import TERMINATION_MESSAGE_LIMIT

__all__ = ["ColumnInfo", "ProfileReport"]

_ERROR_CHARS = 1500
_FAILURES = 8
_FAILURE_CHARS = 200


class _Report(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ColumnInfo(_Report):
    """One column of the profiled data."""

    name: str
    kind: ColumnKind
    dtype: str


class ProfileReport(_Report):
    """Compact result of `gyre profile`; the full profile lives at `profile_uri`."""

    phase: Literal["Succeeded", "Failed"]
    fingerprint: str | None = None
    """`sha256:<hex>` of the table content (see gyre.data.fingerprint)."""
    rows: int | None = None
    columns: list[ColumnInfo] | None = None
    column_count: int | None = None
    """Total number of columns; differs from len(columns) only when the list was truncated to fit."""
    columns_truncated: bool = False
    target: str | None = None
    data_uri: str | None = None
    profile_uri: str | None = None
    reused: bool = False
    """True when the content-addressed copy already existed (same content seen before)."""
    watermark: str | None = None
    """The highest value of the sql source's watermark column in this version."""
    contract_checked: bool = False
    """Whether the version was checked against spec.expectations."""
    contract_failures: list[str] | None = None
    """How the version breaks spec.expectations (cut short to fit; contractFailureCount keeps the total)."""
    contract_failure_count: int | None = None
    error: str | None = None
    reason: str | None = None
    """CamelCase reason for a failure (SourceUnreadable, UnknownBuiltin, TargetMissing, ...)."""

    @property
    def contract_violated(self) -> bool:
        """Whether the version breaks spec.expectations."""
        return bool(self.contract_failures) or bool(self.contract_failure_count)

    def _dump(self) -> bytes:
        return orjson.dumps(self.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False))

    def to_termination_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON guaranteed to fit in `limit` bytes.

        Essentials (phase, fingerprint, rows, URIs, reason) are always kept; the error is shortened, then the column
        list is cut from the end (columnsTruncated tells the reader; columnCount keeps the total).
        """
        report = self.model_copy(deep=True)
        if report.columns is not None and report.column_count is None:
            report.column_count = len(report.columns)
        if report.contract_failures:
            # The contract's verdict must always reach the controller; its details are cut to a few short lines.
            report.contract_failure_count = len(report.contract_failures)
            report.contract_failures = [f[:_FAILURE_CHARS] for f in report.contract_failures[:_FAILURES]]
        if report.error and len(report.error) > _ERROR_CHARS:
            report.error = report.error[:_ERROR_CHARS] + "..."
        data = report._dump()
        if len(data) <= limit:
            return data.decode()
        if report.columns:
            # Binary search the number of columns that fits.
            full = list(report.columns)
            lo, hi = 0, len(full)
            report.columns_truncated = True
            while lo < hi:
                mid = (lo + hi + 1) // 2
                report.columns = full[:mid]
                if len(report._dump()) <= limit:
                    lo = mid
                else:
                    hi = mid - 1
            report.columns = full[:lo]
            data = report._dump()
            if len(data) <= limit:
                return data.decode()
        report.columns = None
        report.columns_truncated = self.columns is not None
        if report.error:
            report.error = report.error[:200] + "..."
        data = report._dump()
        if len(data) <= limit:
            return data.decode()
        # Pathological: URIs or names so long nothing fits; keep only what the controller must see.
        minimal: dict[str, object] = {
            "phase": report.phase,
            "fingerprint": report.fingerprint,
            "rows": report.rows,
            "truncated": True,
            "contractChecked": report.contract_checked,
            "contractFailureCount": report.contract_failure_count,
        }
        if report.reason:
            minimal["reason"] = report.reason[:100]
        return orjson.dumps(minimal).decode()

    @classmethod
    def from_termination_message(cls, message: str) -> ProfileReport:
        """Parse a termination message written by `to_termination_message`."""
        return cls.model_validate_json(message)
