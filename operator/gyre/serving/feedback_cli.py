"""`gyre feedback send`: bulk ground-truth labels from a CSV or Parquet file to a model server's feedback endpoint
(docs/serving.md, "Feedback"), in chunks, printing what was accepted and rejected."""

from __future__ import annotations

import argparse
import gzip
import math
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from gyre.serving.feedback import LabelChecker

__all__ = ["FeedbackTotals", "read_labels", "register", "send_feedback"]

_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
_RETRIES = 5
"""Tries of a chunk the server answers 503 (its buffer is full), with growing pauses."""
_SHOWN = 10
"""Rejected rows explained one by one on stderr."""


class FeedbackInputError(Exception):
    """The labels file cannot be read or lacks the id and label columns (exit code 2)."""


class TransportError(Exception):
    """The server could not be reached or did not take a chunk (exit code 1)."""


def register(subparsers: Any) -> None:
    """Add `gyre feedback send` to the `gyre` command line."""
    feedback = subparsers.add_parser("feedback", help="Ground-truth labels for served predictions")
    feedback_sub = feedback.add_subparsers(dest="feedback_command", required=True, metavar="SUBCOMMAND")
    feedback.set_defaults(subcommands=feedback_sub)
    send = feedback_sub.add_parser(
        "send",
        help="Send a file of id,label rows to a model server's feedback endpoint",
        description="Read FILE (CSV or Parquet with columns id and label, optionally ts in unix seconds or ISO "
        "8601) and POST it in chunks to URL/v2/models/MODEL/feedback. CSV labels take the type of the model's "
        "classes (or numbers, for a regressor). An id repeated in the file is sent once, with its first label. "
        "Prints the accepted and rejected counts; exit code 0 when every chunk was answered (rejected labels "
        "included), 1 when the server could not be reached or refused a chunk, 2 on a bad file.",
    )
    send.add_argument("--url", required=True, help="the model server, e.g. http://iris.ml.svc:8080")
    send.add_argument(
        "--file", required=True, type=Path, metavar="FILE", help="labels: .csv, .csv.gz or .parquet"
    )
    send.add_argument("--model", help="model name in the route (default: the one model the server lists)")
    send.add_argument("--batch-size", type=int, default=1000, help="labels per request (1000)")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds per request (30)")
    send.set_defaults(func=run_send)


@dataclass
class FeedbackTotals:
    """What the server made of a whole file, summed over its chunks."""

    sent: int = 0
    accepted: int = 0
    invalid: int = 0
    duplicate: int = 0
    unknown_class: int = 0
    unknown_classes: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Up to ten rejected rows explained, by their row number in the file (from 0)."""

    @property
    def rejected(self) -> int:
        return self.invalid + self.duplicate

    def add(self, answer: dict[str, Any], rows: list[int]) -> None:
        for key in ("accepted", "invalid", "duplicate", "unknown_class"):
            setattr(self, key, getattr(self, key) + int(answer.get(key, 0)))
        for label in answer.get("unknown_classes", []):
            if label not in self.unknown_classes:
                self.unknown_classes.append(label)
        for error in answer.get("errors", []):
            if len(self.errors) < _SHOWN:
                self.errors.append(f"row {rows[error['index']]} (id {error['id']!r}): {error['reason']}")

    def summary(self) -> str:
        text = (
            f"sent {self.sent} labels: accepted {self.accepted}, rejected {self.rejected} "
            f"(invalid {self.invalid}, duplicate {self.duplicate})"
        )
        if self.unknown_class:
            shown = ", ".join(repr(c) for c in self.unknown_classes[:_SHOWN])
            text += f"; {self.unknown_class} accepted labels are not among the model's classes ({shown})"
        return text


def run_send(args: argparse.Namespace) -> int:
    """Run `gyre feedback send`."""
    if args.batch_size < 1:
        print("gyre feedback send: error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    base = args.url.rstrip("/")
    try:
        model = args.model or _only_model(base, args.timeout)
        metadata = _get_json(f"{base}/v2/models/{urllib.parse.quote(model)}", args.timeout)
        parameters = metadata.get("parameters") or {}
        checker = LabelChecker(str(parameters.get("task", "")), parameters.get("classes"))
        items, rows, repeated = read_labels(args.file, checker)
        totals = send_feedback(base, model, items, rows, batch_size=args.batch_size, timeout=args.timeout)
    except FeedbackInputError as exc:
        print(f"gyre feedback send: error: {exc}", file=sys.stderr)
        return 2
    except TransportError as exc:
        print(f"gyre feedback send: error: {exc}", file=sys.stderr)
        return 1
    totals.duplicate += repeated
    for line in totals.errors:
        print(f"rejected {line}", file=sys.stderr)
    print(totals.summary() + (f"; {repeated} repeated ids in the file were not sent" if repeated else ""))
    return 0


def read_labels(path: Path, checker: LabelChecker) -> tuple[list[dict[str, Any]], list[int], int]:
    """The items to send (`id`, `label`, `ts` when the file has it), their row numbers in the file, and how many
    rows repeated an earlier id (not sent: the first label of an id wins)."""
    import pandas as pd

    name = path.name.lower()
    if not path.is_file():
        raise FeedbackInputError(f"{path}: no such file")
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            # Text as read: each label takes the type of the model's classes below, not pandas' guess.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            raise FeedbackInputError(f"{path}: unsupported file type (expected {', '.join(_SUFFIXES)})")
    except FeedbackInputError:
        raise
    except Exception as exc:  # pandas raises many types for unreadable files; all mean bad input here
        raise FeedbackInputError(f"{path}: cannot read: {exc}") from exc
    missing = [c for c in ("id", "label") if c not in frame.columns]
    if missing:
        raise FeedbackInputError(f"{path}: no {' or '.join(missing)} column (columns: {list(frame.columns)})")
    text = name.endswith((".csv", ".csv.gz"))
    ids = frame["id"].astype(str).tolist()
    labels = frame["label"].tolist()
    stamps = frame["ts"].tolist() if "ts" in frame.columns else None
    items: list[dict[str, Any]] = []
    rows: list[int] = []
    seen: set[str] = set()
    for row, (item_id, label) in enumerate(zip(ids, labels, strict=True)):
        if item_id in seen:
            continue
        seen.add(item_id)
        item = {"id": item_id, "label": _typed(label, checker) if text else _plain(label)}
        if stamps is not None and (ts := _seconds(stamps[row])) is not None:
            item["ts"] = ts
        items.append(item)
        rows.append(row)
    return items, rows, len(ids) - len(items)


def _plain(value: Any) -> Any:
    """A Parquet cell as JSON: numpy scalars as Python values, NaN as null (the server says what is wrong)."""
    value = value.item() if hasattr(value, "item") else value
    return None if type(value) is float and math.isnan(value) else value


def _typed(text: str, checker: LabelChecker) -> Any:
    """A CSV cell as the label type the model takes; left as text when it does not parse (the server says why)."""
    if text == "":
        return None
    kind = "float" if not checker.classification else checker.kind
    try:
        if kind == "int":
            number = float(text)
            return int(number) if number.is_integer() else number
        if kind == "float":
            return float(text)
        if kind == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
    except ValueError:
        pass
    return text


def _seconds(value: Any) -> float | None:
    """A ts cell as unix seconds: a number, or a date and time (ISO 8601 text, or a Parquet timestamp)."""
    import pandas as pd

    if value is None or value == "" or pd.isna(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise FeedbackInputError(f"ts {value!r} is neither unix seconds nor a date and time") from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


def send_feedback(
    base: str,
    model: str,
    items: list[dict[str, Any]],
    rows: list[int],
    *,
    batch_size: int = 1000,
    timeout: float = 30.0,
) -> FeedbackTotals:
    """POST `items` in chunks of `batch_size` and sum the answers; raises TransportError when a chunk fails."""
    url = f"{base}/v2/models/{urllib.parse.quote(model)}/feedback"
    totals = FeedbackTotals()
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        answer = _post_chunk(url, chunk, timeout)
        totals.sent += len(chunk)
        totals.add(answer, rows[start : start + batch_size])
    return totals


def _post_chunk(url: str, chunk: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    body = gzip.compress(orjson.dumps(chunk), compresslevel=6)
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for attempt in range(_RETRIES):
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return dict(orjson.loads(response.read()))
        except urllib.error.HTTPError as exc:
            answer = _error_body(exc)
            if exc.code == 422 and "accepted" in answer:  # nothing in this chunk was accepted: counted, go on
                return answer
            if exc.code == 503 and attempt + 1 < _RETRIES:
                time.sleep(0.5 * 2**attempt)
                continue
            hint = "; send fewer labels per request (--batch-size)" if exc.code == 413 else ""
            raise TransportError(
                f"{url} answered {exc.code}: {answer.get('error', exc.reason)}{hint}"
            ) from None
        except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
            raise TransportError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    raise AssertionError("unreachable")


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any]:
    try:
        body = orjson.loads(exc.read())
    except (orjson.JSONDecodeError, OSError):
        return {}
    return body if type(body) is dict else {}


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise TransportError(
            f"{url} answered {exc.code}: {_error_body(exc).get('error', exc.reason)}"
        ) from None
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise TransportError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if type(body) is not dict:
        raise TransportError(f"{url}: expected a JSON object")
    return body


def _only_model(base: str, timeout: float) -> str:
    models = _get_json(f"{base}/v2/models", timeout).get("models")
    if type(models) is not list or len(models) != 1:
        raise TransportError(f"{base} serves {models!r}; name the model with --model")
    return str(models[0])
