"""Generated builtin tables: mixed-type data for trying `spec.features` without a registry or the network.

scikit-learn's bundled tables hold numbers only. `builtin://generated_churn` is a made-up subscription business:
numbers (some missing, one heavy-tailed), categories (one with rare values), a signup date as ISO 8601 text, a short
free-text support note and a binary `target` (the customer left). The target follows a fixed formula of those
columns plus noise, so a model has something real to find in each kind of column.

Deterministic: numpy's legacy `RandomState`, whose streams numpy keeps unchanged across releases, with a fixed seed,
so every Gyre reads the same rows and the Dataset's fingerprint does not move between versions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CHURN_ROWS", "CHURN_SEED", "GENERATED_DATASETS", "generated_churn"]

CHURN_ROWS = 5000
CHURN_SEED = 20261202

_PLANS = ("basic", "standard", "premium", "family")
_PAYMENTS = ("card", "bank", "invoice", "voucher")
# Twelve regions, the last four rare (well under 1% each): what oneHot's minFrequency groups.
_REGIONS = (
    "north",
    "south",
    "east",
    "west",
    "central",
    "coast",
    "lakes",
    "hills",
    "islands",
    "delta",
    "tundra",
    "oasis",
)
_REGION_WEIGHTS = (0.2, 0.18, 0.15, 0.13, 0.1, 0.08, 0.07, 0.05, 0.015, 0.01, 0.01, 0.005)
_NOTES_CALM = ("thanks for the help", "question about my plan", "how do i add a user", "great service", "")
_NOTES_UNHAPPY = ("internet slow again", "billing error on invoice", "want to cancel", "outage for two days")
_NOTES_TAIL = ("", "", " please call back", " since monday", " third time this month")


def generated_churn(rows: int = CHURN_ROWS, seed: int = CHURN_SEED) -> pd.DataFrame:
    """The `generated_churn` table (see the module docstring); `target` is 1 for a customer who left."""
    import pandas as pd

    rng = np.random.RandomState(seed)
    tenure = rng.randint(1, 73, size=rows)
    plan = rng.choice(len(_PLANS), size=rows, p=[0.4, 0.3, 0.2, 0.1])
    charges = np.round(np.array([20.0, 45.0, 80.0, 95.0])[plan] * rng.lognormal(0.0, 0.15, size=rows), 2)
    data_gb = np.round(
        rng.lognormal(2.0, 1.2, size=rows), 1
    )  # heavy-tailed: a log transform helps linear models
    calls = rng.poisson(1.2, size=rows)
    payment = rng.choice(len(_PAYMENTS), size=rows, p=[0.45, 0.3, 0.2, 0.05])
    region = rng.choice(len(_REGIONS), size=rows, p=_REGION_WEIGHTS)
    signup = np.datetime64("2019-01-01") + rng.randint(0, 6 * 365, size=rows).astype("timedelta64[D]")
    month = (signup.astype("datetime64[M]").astype(int) % 12) + 1
    unhappy_note = rng.random_sample(rows) < 0.15 + 0.1 * np.minimum(calls, 4)
    notes = np.where(
        unhappy_note,
        np.array(_NOTES_UNHAPPY, dtype=object)[rng.randint(0, len(_NOTES_UNHAPPY), size=rows)],
        np.array(_NOTES_CALM, dtype=object)[rng.randint(0, len(_NOTES_CALM), size=rows)],
    )
    tails = np.array(_NOTES_TAIL, dtype=object)[rng.randint(0, len(_NOTES_TAIL), size=rows)]
    notes = np.array([(note + tail).strip() for note, tail in zip(notes, tails, strict=True)], dtype=object)
    logit = (
        1.2
        - 0.05 * tenure
        + 0.015 * (charges - 50)
        + 0.35 * calls
        + np.array([0.4, 0.0, -0.3, -0.6])[plan]
        + np.array([0.0, -0.2, 0.5, 0.8])[payment]
        + 0.5 * np.isin(month, (1, 2)).astype(float)  # winter signups were promotions that lapse
        + 1.0 * np.array(["cancel" in n or "outage" in n for n in notes])
        + rng.logistic(0.0, 0.6, size=rows)
    )
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "data_gb": data_gb,
            "support_calls": calls,
            "plan": np.array(_PLANS, dtype=object)[plan],
            "payment": np.array(_PAYMENTS, dtype=object)[payment],
            "region": np.array(_REGIONS, dtype=object)[region],
            "signup_date": np.datetime_as_string(signup, unit="D").astype(object),
            "last_ticket": notes,
            "target": (logit > 0).astype(np.int64),
        }
    )
    # Missing values where real tables have them: charges not yet billed, notes never written.
    frame.loc[rng.random_sample(rows) < 0.03, "monthly_charges"] = np.nan
    return frame


GENERATED_DATASETS: dict[str, Callable[[], pd.DataFrame]] = {"generated_churn": generated_churn}
"""builtin:// names of generated tables (gyre.data.sources), beside scikit-learn's bundled ones."""
