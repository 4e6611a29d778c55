"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from browser import DevTools, launch


@pytest.fixture
def browser() -> Iterator[DevTools]:
    """A headless Chromium page (tests/browser.py)."""
    with launch() as session:
        yield session
