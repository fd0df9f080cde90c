"""The shared engine contract, run by the Parsl engine on the ``threads`` and ``local`` sites."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.parsl.service import ParslService
from plugins.parsl.settings import ParslSiteSettings
from tests.bps.wms_contract import WmsServiceContract


class TestParslThreadsContract(WmsServiceContract):
    """Parsl with a thread pool in the driver (the quickest site)."""

    @pytest.fixture
    def service(self, tmp_path: Path) -> ParslService:
        return ParslService(ParslSiteSettings.model_validate({"class": "threads", "maxWorkers": 2}))


@pytest.mark.slow
class TestParslLocalContract(WmsServiceContract):
    """Parsl's HighThroughputExecutor with a local worker pool (the default site)."""

    @pytest.fixture
    def service(self, tmp_path: Path) -> ParslService:
        return ParslService(ParslSiteSettings.model_validate({"class": "local", "maxWorkers": 2}))
