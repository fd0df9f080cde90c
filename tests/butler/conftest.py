"""Fixtures for the butler tests."""

from __future__ import annotations

import pytest
from registry_campaign import populate

from butler import Registry


@pytest.fixture
def populated(registry: Registry) -> Registry:
    """A registry holding the campaign's dimension records (no datasets)."""
    populate(registry)
    return registry
