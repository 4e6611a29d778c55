"""The Dataset CRD's sql source and expectations on a real API server: admitted and defaulted, or refused with
the rule's message."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from kubetest import Custom, rejection

pytestmark = pytest.mark.integration

SQL: dict[str, Any] = {
    "host": "db.example.com",
    "database": "shop",
    "userSecretRef": {"name": "db", "key": "user"},
    "query": "SELECT * FROM orders ORDER BY id",
}


def test_a_sql_dataset_with_expectations_is_admitted_and_defaulted(custom: Custom) -> None:
    spec = {
        "source": {"sql": SQL | {"watermark": "id"}},
        "expectations": {"minRows": 1, "maxRows": 10, "columns": [{"name": "x", "min": 0, "max": 1}]},
    }
    ds = custom.create("datasets", "Dataset", "orders", spec)
    assert ds["spec"]["source"]["sql"]["port"] == 5432
    assert ds["spec"]["source"]["sql"]["sslmode"] == "prefer"
    assert ds["spec"]["expectations"]["columns"][0]["unique"] is False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"source": {"uri": "builtin://iris", "sql": SQL}}, "set exactly one of uri, sql and feedback"),
        ({"source": {"format": "csv"}}, "set exactly one of uri, sql and feedback"),
        ({"source": {"sql": SQL | {"watermark": "id; DROP TABLE x"}}}, "watermark"),
        ({"source": {"sql": SQL | {"host": "user:pw@db/x"}}}, "host"),
        ({"source": {"sql": {k: v for k, v in SQL.items() if k != "userSecretRef"}}}, "userSecretRef"),
        (
            {"source": {"uri": "builtin://iris"}, "expectations": {"minRows": 5, "maxRows": 1}},
            "minRows must not exceed maxRows",
        ),
        (
            {
                "source": {"uri": "builtin://iris"},
                "expectations": {"columns": [{"name": "x", "min": 2, "max": 1}]},
            },
            "min must not exceed max",
        ),
    ],
)
def test_invalid_sql_sources_and_expectations_are_refused(
    custom: Custom, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as info:
        custom.create("datasets", "Dataset", "bad", spec)
    assert message in rejection(info.value)
