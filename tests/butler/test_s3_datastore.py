"""The file datastore on an S3-compatible server (moto's standalone server, started by the test)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest
from registry_campaign import populate
from storage_samples import SAMPLES, same

from butler import DatasetType
from butler.butler import Butler
from butler.datastore import DatasetFileMissingError
from butler.repository import create_repository
from butler.verify import verify_datastore

BUCKET = "quanta-test"
DATA_ID = {"instrument": "DemoCam", "visit": 1, "detector": 2}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for this module's tests."""
    port = _free_port()
    moto = Path(sys.executable).parent / "moto_server"
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_repo(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    prefix = f"s3://{BUCKET}/{tmp_path.name}/"
    repo = tmp_path / "repo"
    create_repository(repo, datastore_root=prefix)
    config = (repo / "butler.yaml").read_text().replace("root: null", f"root: {tmp_path / 'cache'}")
    (repo / "butler.yaml").write_text(config)
    yield repo


def test_put_get_through_s3_with_local_cache(s3_repo: Path, tmp_path: Path) -> None:
    with Butler(s3_repo, run="run") as butler:
        populate(butler.registry)
        butler.registry.register_dataset_type(
            DatasetType("arr", ["instrument", "visit", "detector"], "NumpyArray")
        )
        array = np.arange(100.0).reshape(10, 10)
        ref = butler.put(array, "arr", DATA_ID)
        uri = butler.get_uri(ref)
        assert uri.scheme == "s3" and uri.exists()
        assert np.array_equal(butler.get(ref), array)
        assert np.array_equal(butler.get(ref, parameters={"slice": (slice(0, 2),)}), array[:2])
        assert len(os.listdir(tmp_path / "cache")) == 1  # read twice, downloaded once
        assert verify_datastore(butler.registry, butler.datastore).ok
        butler.prune_datasets([ref])
        assert not uri.exists()


def test_missing_object_is_named(s3_repo: Path) -> None:
    with Butler(s3_repo, run="run") as butler:
        populate(butler.registry)
        butler.registry.register_dataset_type(
            DatasetType("d", ["instrument", "visit", "detector"], "StructuredDataDict")
        )
        ref = butler.put({"a": 1}, "d", DATA_ID)
        butler.get_uri(ref).remove()
        with pytest.raises(DatasetFileMissingError, match="s3://"):
            butler.get(ref)


def test_every_storage_class_round_trips_on_s3(s3_repo: Path) -> None:
    with Butler(s3_repo, run="run") as butler:
        populate(butler.registry)
        for storage_class, sample in SAMPLES.items():
            butler.registry.register_dataset_type(
                DatasetType(f"ds_{storage_class}", ["instrument", "visit", "detector"], storage_class)
            )
            ref = butler.put(sample, f"ds_{storage_class}", DATA_ID)
            assert butler.get_uri(ref).scheme == "s3"
            assert same(sample, butler.get(ref)), storage_class
        assert butler.verify().ok
