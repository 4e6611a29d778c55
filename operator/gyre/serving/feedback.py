"""Ground-truth feedback on the model server: `POST /v2/models/MODEL/feedback` (docs/serving.md, "Feedback").

A body is one `{"id": ..., "label": ..., "ts": ...}` object or a JSON array of them (`ts`, unix seconds when the
label was observed, is optional). Each item is checked against the served model: ids are non-empty strings, a
classifier's labels have the type of its classes, a regressor's are finite numbers. Accepted labels are buffered
and written in the background as `{"id", "label", "ts"}` JSON lines to `feedback_batch_path` files (see
docs/architecture.md, "Ground-truth feedback"). Whether an id was ever answered is not known here (another pod may
have answered it): the performance check counts unknown ids when it joins labels to the prediction log.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gyre.serving.predlog import BatchWriter
from gyre.serving.schema import RequestError, load_json_body
from gyre.store.layout import feedback_batch_path

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_REPORTED",
    "FeedbackReport",
    "FeedbackWriter",
    "LabelChecker",
    "parse_feedback",
]

MAX_ID_LENGTH = 1024
"""Longest prediction id accepted (generated ids are 32 hex digits, plus `.{row}` within a batch)."""
MAX_REPORTED = 100
"""At most this many rejected items are explained one by one in an answer, and unknown classes listed."""
_FUTURE_SLACK_S = 300.0
"""A label's `ts` may be this far ahead of the server's clock (clock skew), no further."""
_FIELDS = frozenset({"id", "label", "ts"})

Row = dict[str, Any]


class _Invalid(Exception):
    """One item's reason for rejection."""


def _describe(value: object) -> str:
    text = orjson.dumps(value).decode() if isinstance(value, str | int | float | bool) else ""
    return f"{type(value).__name__} {text[:40]}".rstrip()


class LabelChecker:
    """Checks labels against the served model: the type of a classifier's classes, or finite numbers."""

    def __init__(self, task: str, classes: Sequence[str | int | float | bool] | None) -> None:
        self.classification = task == "classification"
        known = list(classes or [])
        types = {type(c) for c in known}
        if not self.classification:
            self.kind = "float"
        elif types == {str}:
            self.kind = "str"
        elif types == {bool}:
            self.kind = "bool"
        elif types == {int}:
            self.kind = "int"
        elif types and types <= {int, float}:
            self.kind = "float"
        else:  # no classes in the manifest, or of mixed types: any scalar, no membership check
            self.kind = "any"
        self._known = set(known) if self.kind != "any" else set()
        shown = ", ".join(orjson.dumps(c).decode() for c in known[:5]) + (", ..." if len(known) > 5 else "")
        self._expected = {
            "str": f"a string like the model's classes ({shown})",
            "bool": "true or false like the model's classes",
            "int": f"an integer like the model's classes ({shown})",
            "float": "a finite number"
            if not self.classification
            else f"a number like the model's classes ({shown})",
            "any": "a string or a finite number",
        }[self.kind]

    def check(self, label: object) -> tuple[str | int | float | bool, bool]:
        """The label as stored, and whether it is one of the model's classes (always True for regression and
        for models whose classes are unknown)."""
        value = self._typed(label)
        if value is None:
            raise _Invalid(f"label must be {self._expected}, got {_describe(label)}")
        return value, not self._known or value in self._known

    def _typed(self, label: object) -> str | int | float | bool | None:
        kind = self.kind
        if isinstance(label, str):
            return label if kind in ("str", "any") else None
        if isinstance(label, bool):  # before int: a bool is an int to Python, not to a model's classes
            return label if kind in ("bool", "any") else None
        if not isinstance(label, int | float) or kind in ("str", "bool") or not math.isfinite(label):
            return None
        if kind == "int":
            return int(label) if float(label).is_integer() else None
        return float(label) if kind == "float" else label


def _finite(value: object, what: str) -> float:
    if type(value) not in (int, float):  # bool is not a number here
        raise _Invalid(f"{what} must be a number, got {_describe(value)}")
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        raise _Invalid(f"{what} must be finite, got {value}")
    return number


@dataclass
class FeedbackReport:
    """What became of one request's items; `rows` are the accepted ones, as they will be written."""

    rows: list[Row] = field(default_factory=list)
    invalid: int = 0
    duplicate: int = 0
    unknown_class: int = 0
    unknown_classes: list[Any] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, item_id: object, reason: str, *, duplicate: bool = False) -> None:
        if duplicate:
            self.duplicate += 1
        else:
            self.invalid += 1
        if len(self.errors) < MAX_REPORTED:
            shown = item_id if type(item_id) is str and len(item_id) <= MAX_ID_LENGTH else None
            self.errors.append({"index": index, "id": shown, "reason": reason})

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The HTTP status and body: 200 when any label was accepted, else 422 with the first reason."""
        body: dict[str, Any] = {
            "accepted": len(self.rows),
            "rejected": self.invalid + self.duplicate,
            "invalid": self.invalid,
            "duplicate": self.duplicate,
            "unknown_class": self.unknown_class,
            "unknown_classes": self.unknown_classes,
            "errors": self.errors,
        }
        if self.rows:
            return 200, body
        first = self.errors[0]
        return 422, {"error": f"no label accepted; item {first['index']}: {first['reason']}", **body}


def parse_feedback(raw: bytes, checker: LabelChecker, now: float) -> FeedbackReport:
    """Check every item of a feedback body received at `now` (unix seconds).

    A body that is not one item or a non-empty array of them raises RequestError(400); items are judged one by
    one (invalid, duplicate of an earlier item's id, accepted) and the report says which and why.
    """
    body = load_json_body(raw, '{"id": ..., "label": ...} or an array of them')
    items = [body] if type(body) is dict else body
    if type(items) is not list:
        raise RequestError(400, 'the body must be {"id": ..., "label": ...} or an array of such objects')
    if not items:
        raise RequestError(400, "the array of labels is empty")
    report = FeedbackReport()
    first_at: dict[str, int] = {}
    unknown: set[Any] = set()
    for index, item in enumerate(items):
        item_id = item.get("id") if type(item) is dict else None
        try:
            row, known = _parse_item(item, checker, now)
        except _Invalid as exc:
            report.reject(index, item_id, str(exc))
            continue
        earlier = first_at.setdefault(row["id"], index)
        if earlier != index:
            report.reject(index, item_id, f"duplicate id: item {earlier} has it too", duplicate=True)
            continue
        if not known:
            report.unknown_class += 1
            label = row["label"]
            if label not in unknown and len(unknown) < MAX_REPORTED:
                unknown.add(label)
                report.unknown_classes.append(label)
        report.rows.append(row)
    return report


def _parse_item(item: object, checker: LabelChecker, now: float) -> tuple[Row, bool]:
    if type(item) is not dict:
        raise _Invalid(f'an item must be an object {{"id": ..., "label": ...}}, got {_describe(item)}')
    extra = item.keys() - _FIELDS
    if extra:
        raise _Invalid(f"unknown field {sorted(extra)[0]!r}; an item has id, label and optionally ts")
    item_id = item.get("id")
    if type(item_id) is not str or not item_id:
        raise _Invalid(f"id must be a non-empty string, got {_describe(item_id)}")
    if len(item_id) > MAX_ID_LENGTH:
        raise _Invalid(f"id is longer than {MAX_ID_LENGTH} characters")
    if "label" not in item:
        raise _Invalid("missing label")
    ts = item.get("ts")
    if ts is None:
        ts = now
    else:
        ts = _finite(ts, "ts (unix seconds)")
        if not 0 < ts <= now + _FUTURE_SLACK_S:
            raise _Invalid(f"ts {ts} is not a past time in unix seconds")
    label, known = checker.check(item["label"])
    return {"id": item_id, "label": label, "ts": ts}, known


class FeedbackWriter(BatchWriter[list[Row]]):
    """Accepted labels, written to `feedback_batch_path` files, one per flush."""

    kind = "feedback"

    def encode(self, chunks: list[list[Row]]) -> list[Row]:
        return [row for chunk in chunks for row in chunk]

    def path_at(self, unix_ms: int) -> str:
        return feedback_batch_path(self.namespace, self.deployment, unix_ms, self.pod)
