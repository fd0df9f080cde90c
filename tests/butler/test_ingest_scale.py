"""Ingest expands the data IDs of many files with a few queries per dimension element, giving what per-file expansion gives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from databases import DatabaseLocation
from registry_campaign import DETECTORS, box, populate

from butler import DataCoordinate, DatasetRef, DatasetType
from butler.butler import Butler
from butler.errors import DataIdValueError
from butler.ingest import FileDataset
from butler.repository import create_repository

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "StructuredDataDict")
CALEXP = DatasetType("calexp_summary", ["instrument", "visit", "detector"], "StructuredDataDict")
DETECTOR_INFO = DatasetType("detector_info", ["instrument", "detector"], "StructuredDataDict")
EXPOSURES = range(1, 7)
VISITS = (1, 2, 3)
"""Visits 1 and 2 have visit_detector_region records; visit 3 (added here) has none."""


@pytest.fixture
def butler(database: DatabaseLocation, tmp_path: Path) -> Iterator[Butler]:
    create_repository(tmp_path / "repo", db=database.url, namespace=database.namespace)
    butler = Butler(tmp_path / "repo", run="ingested")
    populate(butler.registry)
    butler.registry.insert_dimension_records(
        "visit",
        [
            {
                "instrument": "DemoCam",
                "id": 3,
                "physical_filter": "g_01",
                "day_obs": 20260502,
                "name": "v3",
                "region": box(10.1, 10.9, -0.9, -0.1),
            }
        ],
    )
    for dataset_type in (RAW, CALEXP, DETECTOR_INFO):
        butler.registry.register_dataset_type(dataset_type)
    yield butler
    butler.close()


def files(directory: Path, dataset_type: DatasetType, data_ids: list[dict[str, Any]]) -> list[FileDataset]:
    """One small YAML file per data ID, with an unexpanded ref (required values only)."""
    directory.mkdir(parents=True, exist_ok=True)
    datasets = []
    for values in data_ids:
        path = directory / ("_".join([dataset_type.name, *(str(v) for v in values.values())]) + ".yaml")
        path.write_text(yaml.safe_dump(values))
        data_id = DataCoordinate.standardize(instrument="DemoCam", **values)
        datasets.append(FileDataset(str(path), [DatasetRef.new(dataset_type, data_id, "ingested")]))
    return datasets


class StatementCounter:
    """Counts the SQL statements every engine executes while active."""

    def __init__(self) -> None:
        self.count = 0

    def _count(self, *args: Any) -> None:
        self.count += 1

    def __enter__(self) -> StatementCounter:
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc_info: object) -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._count)


@pytest.mark.parametrize(
    ("dataset_type", "data_ids"),
    [
        (RAW, [{"exposure": e, "detector": d} for e in EXPOSURES for d in DETECTORS]),
        (CALEXP, [{"visit": v, "detector": d} for v in VISITS for d in DETECTORS]),
        (DETECTOR_INFO, [{"detector": d} for d in DETECTORS]),
    ],
    ids=["exposure", "visit-with-optional-region", "detector"],
)
def test_ingested_data_ids_equal_expand_data_id(
    butler: Butler, tmp_path: Path, dataset_type: DatasetType, data_ids: list[dict[str, Any]]
) -> None:
    refs = butler.ingest(*files(tmp_path / "in", dataset_type, data_ids), transfer="direct")
    assert len(refs) == len(data_ids)
    names = dataset_type.dimensions.names
    for ref in refs:
        expected = butler.registry.expand_data_id(ref.data_id.required, dimensions=names)
        assert ref.data_id.mapping == expected.mapping
        assert list(ref.data_id.records) == list(expected.records)  # same elements, same order
        for element, record in expected.records.items():
            assert ref.data_id.records[element] == record
            assert ref.data_id.records[element]._values == record._values
    if dataset_type is CALEXP:
        with_region = {r.data_id["visit"] for r in refs if "visit_detector_region" in r.data_id.records}
        assert with_region == {1, 2}


def test_ingest_queries_do_not_grow_with_the_number_of_files(butler: Butler, tmp_path: Path) -> None:
    few = files(tmp_path / "few", RAW, [{"exposure": 1, "detector": d} for d in DETECTORS])
    many = files(
        tmp_path / "many", RAW, [{"exposure": e, "detector": d} for e in EXPOSURES[1:] for d in DETECTORS]
    )
    with StatementCounter() as small:
        butler.ingest(*few, transfer="direct")
    with StatementCounter() as large:
        butler.ingest(*many, transfer="direct")
    assert len(many) == 5 * len(few)
    assert large.count <= small.count + 2, (small.count, large.count)


def test_a_missing_record_raises_what_expand_data_id_raises(butler: Butler, tmp_path: Path) -> None:
    good = files(tmp_path / "in", RAW, [{"exposure": e, "detector": 0} for e in EXPOSURES])
    (bad,) = files(tmp_path / "in", RAW, [{"exposure": 99, "detector": 1}])
    with pytest.raises(DataIdValueError) as expected:
        butler.registry.expand_data_id(bad.refs[0].data_id.required, dimensions=RAW.dimensions.names)
    with pytest.raises(DataIdValueError) as raised:
        butler.ingest(*good[:3], bad, *good[3:], transfer="direct")
    assert str(raised.value) == str(expected.value)
    assert butler.registry.query_datasets("raw", "ingested", find_first=False) == []
