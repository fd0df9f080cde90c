"""Register one `raw` dataset per exposure and detector in RUN DemoCam/raw/all (files arrive with the datastore).

Usage: python insert_raws.py REPO
"""

from __future__ import annotations

import sys

from butler import DatasetIdGenerationMode
from butler.repository import open_registry

with open_registry(sys.argv[1]) as registry:
    registry.register_run("DemoCam/raw/all", doc="Raw exposures of the demo survey.")
    data_ids = registry.query_data_ids(["exposure", "detector"], data_id={"instrument": "DemoCam"})
    refs = registry.insert_datasets(
        "raw", data_ids, "DemoCam/raw/all", DatasetIdGenerationMode.DATAID_TYPE_RUN
    )
    print(f"Registered {len(refs)} raw datasets in DemoCam/raw/all.")
