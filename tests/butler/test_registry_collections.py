"""Collections: types, documentation, chains (with cycle detection) and removal."""

from __future__ import annotations

import pytest

from butler import (
    ChainMode,
    CollectionCycleError,
    CollectionType,
    CollectionTypeError,
    ConflictingDefinitionError,
    DatasetType,
    MissingCollectionError,
    OrphanedRecordError,
    Registry,
)


@pytest.fixture
def collections(registry: Registry) -> Registry:
    for name in ("a", "b", "c"):
        registry.register_run(name)
    registry.register_collection("tag", CollectionType.TAGGED)
    registry.register_collection("cal", CollectionType.CALIBRATION, doc="calibrations")
    return registry


def test_register_types_and_docs(collections: Registry) -> None:
    assert collections.register_run("a") is False
    with pytest.raises(ConflictingDefinitionError, match="already exists as RUN, not TAGGED"):
        collections.register_collection("a", CollectionType.TAGGED)
    assert collections.get_collection_type("cal") is CollectionType.CALIBRATION
    assert collections.get_collection_documentation("cal") == "calibrations"
    collections.set_collection_documentation("a", "raw data")
    assert collections.get_collection_documentation("a") == "raw data"
    with pytest.raises(MissingCollectionError, match="did you mean 'cal'"):
        collections.get_collection_type("cak")


def test_chains_of_chains_resolve_in_order(collections: Registry) -> None:
    collections.register_collection("inner", CollectionType.CHAINED)
    collections.set_collection_chain("inner", ["b", "a"])
    collections.register_collection("outer", CollectionType.CHAINED)
    collections.set_collection_chain("outer", ["c", "inner", "a", "tag"])
    assert collections.get_collection_chain("outer") == ("c", "inner", "a", "tag")
    assert collections.resolve_collections("outer") == ["c", "b", "a", "tag"]
    assert collections.get_collection_parent_chains("a") == ["inner", "outer"]
    collections.register_collection("flat", CollectionType.CHAINED)
    collections.set_collection_chain("flat", ["outer"], flatten=True)
    assert collections.get_collection_chain("flat") == ("c", "b", "a", "tag")


def test_chain_cycles_are_refused(collections: Registry) -> None:
    collections.register_collection("x", CollectionType.CHAINED)
    collections.register_collection("y", CollectionType.CHAINED)
    collections.set_collection_chain("x", ["y", "a"])
    with pytest.raises(CollectionCycleError, match="contain itself"):
        collections.set_collection_chain("y", ["b", "x"])
    with pytest.raises(CollectionCycleError):
        collections.set_collection_chain("x", ["x"])
    assert collections.get_collection_chain("y") == ()


def test_chain_update_modes(collections: Registry) -> None:
    collections.register_collection("chain", CollectionType.CHAINED)
    assert collections.update_collection_chain("chain", ["a"], ChainMode.REDEFINE) == ("a",)
    assert collections.update_collection_chain("chain", ["b", "a"], ChainMode.EXTEND) == ("a", "b")
    assert collections.update_collection_chain("chain", ["c"], ChainMode.PREPEND) == ("c", "a", "b")
    assert collections.update_collection_chain("chain", ["a"], ChainMode.REMOVE) == ("c", "b")
    assert collections.update_collection_chain("chain", [], ChainMode.POP) == ("b",)
    with pytest.raises(MissingCollectionError, match="no children"):
        collections.update_collection_chain("chain", ["a"], ChainMode.REMOVE)
    with pytest.raises(MissingCollectionError):
        collections.update_collection_chain("chain", ["nope"], ChainMode.EXTEND)
    with pytest.raises(CollectionTypeError, match="not CHAINED"):
        collections.set_collection_chain("a", ["b"])


def test_query_collections(collections: Registry) -> None:
    collections.register_collection("chain", CollectionType.CHAINED)
    collections.set_collection_chain("chain", ["b", "a"])
    assert collections.query_collections() == ["a", "b", "c", "cal", "chain", "tag"]
    assert collections.query_collections("c*") == ["c", "cal", "chain"]
    assert collections.query_collections(types=[CollectionType.RUN]) == ["a", "b", "c"]
    assert collections.query_collections("chain", flatten_chains=True) == ["chain", "b", "a"]
    assert collections.query_collections("chain", flatten_chains=True, include_chains=False) == ["b", "a"]


def test_remove_collections(collections: Registry) -> None:
    collections.insert_dimension_records("instrument", [{"name": "Cam"}])
    collections.register_dataset_type(DatasetType("thing", ["instrument"], "StructuredDataDict"))
    collections.insert_datasets("thing", [{"instrument": "Cam"}], "a")
    collections.register_collection("chain", CollectionType.CHAINED)
    collections.set_collection_chain("chain", ["b"])
    with pytest.raises(OrphanedRecordError, match="still holds 1 dataset"):
        collections.remove_collection("a")
    with pytest.raises(OrphanedRecordError, match="child of chained collection"):
        collections.remove_collection("b")
    collections.remove_collection("a", purge=True)
    assert "a" not in collections.query_collections()
    collections.remove_collection("chain")
    collections.remove_collection("b")
    assert collections.query_collections() == ["c", "cal", "tag"]
    # The name can be reused once removed.
    assert collections.register_run("a") is True
    assert collections.query_datasets("thing", "a") == []
