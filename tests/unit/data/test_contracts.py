"""check_expectations: every kind of expectation, met and broken, with the message a person acts on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from gyre.api.dataset import DatasetExpectations
from gyre.data.contracts import check_expectations

FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "amount": [0.5, 10.0, 99.5, np.nan],
        "region": ["north", "south", "east", None],
        "returned": [True, False, False, True],
        "when": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]),
    }
)


def check(raw: dict[str, Any], frame: pd.DataFrame = FRAME) -> list[str]:
    return check_expectations(frame, DatasetExpectations.model_validate(raw))


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"minRows": 4, "maxRows": 4},
        {"uniqueKey": ["id"]},
        {"uniqueKey": ["region", "returned"]},
        {
            "columns": [
                {"name": "id", "type": "int", "unique": True, "min": 1, "max": 4, "maxNullFraction": 0}
            ]
        },
        {"columns": [{"name": "amount", "type": "number", "min": 0, "max": 100, "maxNullFraction": 0.25}]},
        {"columns": [{"name": "amount", "type": "float"}, {"name": "returned", "type": "bool"}]},
        {"columns": [{"name": "when", "type": "datetime"}, {"name": "region", "type": "string"}]},
        {"columns": [{"name": "region", "allowedValues": ["north", "south", "east", "west"]}]},
        {"columns": [{"name": "id", "allowedValues": ["1", "2", "3", "4"]}]},
    ],
)
def test_a_table_that_meets_its_expectations_has_no_failures(raw: dict[str, Any]) -> None:
    assert check(raw) == []


@pytest.mark.parametrize(
    ("raw", "failure"),
    [
        ({"minRows": 5}, "4 rows, at least 5 expected"),
        ({"maxRows": 3}, "4 rows, at most 3 expected"),
        ({"columns": [{"name": "price"}]}, "column price is missing"),
        ({"columns": [{"name": "region", "type": "number"}]}, "column region: type string, expected number"),
        ({"columns": [{"name": "amount", "type": "int"}]}, "column amount: type float, expected int"),
        (
            {"columns": [{"name": "amount", "maxNullFraction": 0.1}]},
            "column amount: 25.00% missing values, at most 10.00% allowed",
        ),
        (
            {"columns": [{"name": "amount", "min": 1}]},
            "column amount: 1 values below the minimum 1 (lowest 0.5)",
        ),
        (
            {"columns": [{"name": "amount", "max": 50}]},
            "column amount: 1 values above the maximum 50 (highest 99.5)",
        ),
        (
            {"columns": [{"name": "region", "min": 0}]},
            "column region: a range needs a numeric column, it is string",
        ),
        (
            {"columns": [{"name": "region", "allowedValues": ["north", "south"]}]},
            "column region: 1 values outside the allowed ones (1 distinct, e.g. 'east')",
        ),
        (
            {"columns": [{"name": "returned", "unique": True}]},
            "column returned: 2 repeated values, expected unique",
        ),
        ({"uniqueKey": ["returned"]}, "unique key (returned): 2 rows repeat a key of an earlier row"),
        ({"uniqueKey": ["id", "shop"]}, "unique key column(s) shop missing"),
    ],
)
def test_each_broken_expectation_is_one_line_naming_it(raw: dict[str, Any], failure: str) -> None:
    failures = check(raw)
    assert len(failures) == 1
    assert failures[0].startswith(failure)


def test_every_broken_expectation_is_reported_not_only_the_first() -> None:
    raw = {
        "minRows": 10,
        "columns": [{"name": "amount", "min": 1, "max": 50}, {"name": "gone"}],
        "uniqueKey": ["returned"],
    }
    assert len(check(raw)) == 5


def test_missing_values_are_left_to_max_null_fraction_not_to_ranges_or_categories() -> None:
    frame = pd.DataFrame({"x": [1.0, None, None], "c": ["a", None, None]})
    raw = {"columns": [{"name": "x", "min": 0, "max": 2}, {"name": "c", "allowedValues": ["a"]}]}
    assert check(raw, frame) == []
    assert check({"columns": [{"name": "x", "maxNullFraction": 0.5}]}, frame) != []


def test_examples_of_offending_values_are_few_and_short() -> None:
    frame = pd.DataFrame({"c": [f"value-{i}-" + "x" * 100 for i in range(50)]})
    (failure,) = check({"columns": [{"name": "c", "allowedValues": ["ok"]}]}, frame)
    assert "50 values outside the allowed ones (50 distinct" in failure
    assert failure.count("value-") == 3 and len(failure) < 300


def test_bounds_outside_their_range_are_refused_by_the_api() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        DatasetExpectations.model_validate({"minRows": -1})
    with pytest.raises(ValidationError):
        DatasetExpectations.model_validate({"columns": [{"name": "x", "maxNullFraction": 1.5}]})
