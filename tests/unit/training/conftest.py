"""Shared data for the training tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def mixed_frame() -> pd.DataFrame:
    """Numbers (with gaps), a categorical with a missing value, a bool flag, and two targets."""
    rng = np.random.default_rng(3)
    n = 160
    frame = pd.DataFrame(
        {
            "size (cm)": rng.normal(10, 3, size=n),
            "weight": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], size=n),
            "flag": rng.choice([True, False], size=n),
        }
    )
    frame.loc[::13, "size (cm)"] = np.nan
    frame.loc[::17, "color"] = None
    signal = frame["weight"] + (frame["color"] == "red") * 1.5 + frame["flag"] * 0.5
    frame["label"] = np.where(signal > 0.6, "high", "low")
    frame["amount"] = 3.0 * frame["weight"] + frame["flag"] * 2.0 + rng.normal(0, 0.1, size=n)
    return frame
