"""Registry queries: data IDs, dimension records and datasets under WHERE expressions and collection searches."""

from __future__ import annotations

import pytest

from butler import (
    CollectionType,
    DatasetType,
    DimensionNameError,
    ExpressionError,
    ExpressionSyntaxError,
    InvalidQueryError,
    Registry,
    Timespan,
    UnknownIdentifierError,
)

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "Exposure")
CALEXP = DatasetType("calexp", ["instrument", "visit", "detector"], "Exposure")


def keys(data_ids: list, *names: str) -> set[tuple]:  # type: ignore[type-arg]
    return {tuple(d[n] for n in names) for d in data_ids}


@pytest.mark.parametrize(
    ("where", "bind", "expected"),
    [
        ("band = 'g'", {}, {3, 6}),
        ("exposure IN (1..5:2)", {}, {1, 3, 5}),
        ("exposure NOT IN (1, 2) AND exposure.day_obs = 20260501", {}, {3}),
        ("exposure.observation_type = 'flat' OR exposure.zenith_angle > 45", {}, {5, 6}),
        ("exposure.timespan OVERLAPS T'2026-05-02T21:00:10'", {}, {4}),
        ("exposure.timespan OVERLAPS (T'2026-05-01T00:00:00', T'2026-05-01T21:30:00')", {}, {1, 3}),
        (
            "exposure.timespan.begin >= :t",
            {"t": Timespan.from_datetimes("2026-05-02T21:00:00", None).begin},
            {4, 5},
        ),
        ("physical_filter = :f AND NOT (exposure = 4)", {"f": "r_01"}, {1}),
        ("exposure IN (:many)", {"many": [2, 4]}, {2, 4}),
        ("day_obs.timespan OVERLAPS exposure.timespan AND day_obs = 20260502", {}, {4, 5, 6}),
    ],
)
def test_query_data_ids_where(populated: Registry, where: str, bind: dict, expected: set[int]) -> None:  # type: ignore[type-arg]
    found = populated.query_data_ids(["exposure"], where=where, bind=bind)
    assert {d["exposure"] for d in found} == expected


def test_data_ids_carry_implied_values_and_join_related_dimensions(populated: Registry) -> None:
    found = populated.query_data_ids(
        ["exposure", "detector"], where="detector.purpose = 'SCIENCE' AND band = 'i'"
    )
    assert keys(found, "exposure", "detector") == {(e, d) for e in (2, 5) for d in range(3)}
    assert {d["physical_filter"] for d in found} == {"i_01"}
    # visit and exposure are related through visit_definition, not a cross product.
    pairs = populated.query_data_ids(["visit", "exposure"], data_id={"instrument": "DemoCam"})
    assert keys(pairs, "visit", "exposure") == {(1, 1), (2, 2)}


def test_query_dimension_records(populated: Registry) -> None:
    records = populated.query_dimension_records("detector", where="detector.purpose != 'SCIENCE'")
    assert [(r.id, r.full_name) for r in records] == [(3, "S03")]
    assert [r.id for r in populated.query_dimension_records("exposure", where="band = 'g'")] == [3, 6]
    patches = populated.query_dimension_records("patch", where="visit = 1 AND instrument = 'DemoCam'")
    assert [p.id for p in patches] == [0]


def test_expression_errors(populated: Registry) -> None:
    with pytest.raises(ExpressionSyntaxError, match="column 15: unexpected end") as info:
        populated.query_data_ids(["exposure"], where="band = 'g' AND")
    assert info.value.expected
    with pytest.raises(UnknownIdentifierError, match="did you mean 'detector'"):
        populated.query_data_ids(["exposure"], where="detectr = 1")
    with pytest.raises(UnknownIdentifierError, match="exposure.exposure_time"):
        populated.query_data_ids(["exposure"], where="exposure.exposure_tim > 1")
    with pytest.raises(ExpressionError, match="integer"):
        populated.query_data_ids(["exposure"], where="detector = 'one'")
    with pytest.raises(UnknownIdentifierError, match="bind"):
        populated.query_data_ids(["exposure"], where="exposure = :e")
    with pytest.raises(DimensionNameError, match="did you mean 'exposure'"):
        populated.query_data_ids(["exposur"])


@pytest.fixture
def layered(populated: Registry) -> Registry:
    """raw in three runs chained newest first: 'chain' = [c, b, a]."""
    populated.register_dataset_type(RAW)
    every = [{"instrument": "DemoCam", "exposure": e, "detector": d} for e in range(1, 7) for d in range(4)]
    for run, data_ids in (("a", every), ("b", every[:12]), ("c", every[:4])):
        populated.register_run(run)
        populated.insert_datasets(RAW, data_ids, run)
    populated.register_collection("chain", CollectionType.CHAINED)
    populated.set_collection_chain("chain", ["c", "b", "a"])
    return populated


def test_find_first_through_a_chain(layered: Registry) -> None:
    refs = layered.query_datasets("raw", "chain")
    assert len(refs) == 24
    runs = {(r.data_id["exposure"], r.data_id["detector"]): r.run for r in refs}
    assert runs[(1, 0)] == "c" and runs[(2, 0)] == "b" and runs[(6, 3)] == "a"
    assert len(layered.query_datasets("raw", "chain", find_first=False)) == 24 + 12 + 4
    assert len(layered.query_datasets("raw", ["a", "c"])) == 24
    assert {r.run for r in layered.query_datasets("raw", ["a", "c"])} == {"a"}


def test_dataset_queries_join_dimension_tables(layered: Registry) -> None:
    refs = layered.query_datasets("raw", "chain", where="band = 'g' AND detector.purpose = 'SCIENCE'")
    assert keys([r.data_id for r in refs], "exposure", "detector") == {
        (e, d) for e in (3, 6) for d in range(3)
    }
    refs = layered.query_datasets("raw", "chain", data_id={"instrument": "DemoCam", "exposure": 1})
    assert {r.run for r in refs} == {"c"}


def test_data_ids_constrained_by_datasets(layered: Registry) -> None:
    found = layered.query_data_ids(["exposure"], datasets="raw", collections="c")
    assert {d["exposure"] for d in found} == {1}
    found = layered.query_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections="b", where="band = 'r'"
    )
    assert keys(found, "exposure") == {(1,)}
    with pytest.raises(InvalidQueryError, match="needs collections"):
        layered.query_data_ids(["exposure"], datasets="raw")


def test_spatial_dataset_query(layered: Registry) -> None:
    layered.register_dataset_type(CALEXP)
    layered.register_run("calexp")
    layered.insert_datasets(
        CALEXP,
        [{"instrument": "DemoCam", "visit": v, "detector": d} for v in (1, 2) for d in range(4)],
        "calexp",
    )
    refs = layered.query_datasets("calexp", "calexp", where="skymap = 'demo' AND tract = 0 AND patch = 3")
    assert keys([r.data_id for r in refs], "visit", "detector") == {(2, d) for d in range(4)}
