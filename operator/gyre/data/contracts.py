"""Data contracts: check a table against a Dataset's spec.expectations.

Pure (pandas in, messages out): the profiling Job runs it on every version it reads, and the controller records
the messages. Each failure is one line naming the expectation, what was expected and what was found, so a person
can act on the Warning Event alone. Values are described, not dumped: a few offending examples at most.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gyre.api.dataset import ColumnExpectation, DatasetExpectations
from gyre.data.fingerprint import logical_type

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["check_expectations"]

_EXAMPLES = 3


def _examples(values: Any) -> str:
    shown = [str(v)[:40] for v in list(values)[:_EXAMPLES]]
    return ", ".join(repr(v) for v in shown)


def _check_column(frame: pd.DataFrame, want: ColumnExpectation) -> list[str]:
    import pandas as pd
    from pandas.api import types

    series = frame[want.name]
    found = logical_type(series)
    name = want.name
    failures: list[str] = []
    if want.type is not None:
        ok = found in ("int", "float") if want.type == "number" else found == want.type
        if not ok:
            failures.append(f"column {name}: type {found}, expected {want.type}")
    missing = series.isna()
    if want.max_null_fraction is not None and len(series):
        fraction = float(missing.mean())
        if fraction > want.max_null_fraction:
            failures.append(
                f"column {name}: {fraction:.2%} missing values, at most {want.max_null_fraction:.2%} allowed"
            )
    present = series[~missing]
    if (want.min is not None or want.max is not None) and len(present):
        if types.is_numeric_dtype(series.dtype) and not types.is_bool_dtype(series.dtype):
            numbers = pd.to_numeric(present)
            if want.min is not None and numbers.min() < want.min:
                below = numbers[numbers < want.min]
                failures.append(
                    f"column {name}: {len(below)} values below the minimum {want.min:g} "
                    f"(lowest {numbers.min():g})"
                )
            if want.max is not None and numbers.max() > want.max:
                above = numbers[numbers > want.max]
                failures.append(
                    f"column {name}: {len(above)} values above the maximum {want.max:g} "
                    f"(highest {numbers.max():g})"
                )
        else:
            failures.append(f"column {name}: a range needs a numeric column, it is {found}")
    if want.allowed_values is not None and len(present):
        text = present.astype(str)
        unknown = text[~text.isin(set(want.allowed_values))]
        if len(unknown):
            distinct = unknown.unique()
            failures.append(
                f"column {name}: {len(unknown)} values outside the allowed ones "
                f"({len(distinct)} distinct, e.g. {_examples(distinct)})"
            )
    if want.unique:
        repeated = present[present.duplicated()]
        if len(repeated):
            failures.append(
                f"column {name}: {len(repeated)} repeated values, expected unique "
                f"(e.g. {_examples(repeated.unique())})"
            )
    return failures


def check_expectations(frame: pd.DataFrame, expectations: DatasetExpectations) -> list[str]:
    """Every way `frame` breaks `expectations`, one line each; empty when it satisfies them all."""
    failures: list[str] = []
    rows = int(frame.shape[0])
    if expectations.min_rows is not None and rows < expectations.min_rows:
        failures.append(f"{rows} rows, at least {expectations.min_rows} expected")
    if expectations.max_rows is not None and rows > expectations.max_rows:
        failures.append(f"{rows} rows, at most {expectations.max_rows} expected")
    for want in expectations.columns or []:
        if want.name not in frame.columns:
            failures.append(f"column {want.name} is missing")
            continue
        failures.extend(_check_column(frame, want))
    if expectations.unique_key:
        absent = [c for c in expectations.unique_key if c not in frame.columns]
        if absent:
            failures.append(f"unique key column(s) {', '.join(absent)} missing")
        else:
            duplicated = frame.duplicated(subset=list(expectations.unique_key))
            count = int(duplicated.sum())
            if count:
                key = ", ".join(expectations.unique_key)
                failures.append(f"unique key ({key}): {count} rows repeat a key of an earlier row")
    return failures
