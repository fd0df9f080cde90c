"""Every bps test gets its own run index (``QUANTA_BPS_HOME``), never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def bps_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty ``QUANTA_BPS_HOME`` for the test."""
    home = tmp_path_factory.mktemp("bps_home")
    monkeypatch.setenv("QUANTA_BPS_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--wait`` followers poll every 0.05 s instead of every 2 s."""
    monkeypatch.setattr("bps.progress.DEFAULT_POLL_SECONDS", 0.05)
