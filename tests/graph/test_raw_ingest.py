"""Raw ingest: transfer modes, the sidecar index, bad and duplicate files, fail-fast."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from databases import DatabaseLocation

from butler.butler import Butler
from butler.image import Image
from butler.repository import create_repository
from graph import raw_ingest
from graph.demo.instrument import DemoCam
from graph.demo.simulate import simulate
from graph.errors import RawIngestError
from graph.raw_ingest import INDEX_NAME, ingest_raws

EXPOSURES = [2025123000001, 2025123000002, 2025123100001]


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 visits x 2 detectors over 2 nights (pristine: tests copy it before changing anything)."""
    out = tmp_path_factory.mktemp("survey")
    simulate(out, visits=3, detectors=2, seed=11, calibrations=False)
    return out / "raw"


@pytest.fixture
def raws(survey: Path, tmp_path: Path) -> Path:
    """A private copy of the survey's raw directory."""
    return Path(shutil.copytree(survey, tmp_path / "raw"))


def make_butler(root: Path, database: DatabaseLocation | None = None) -> Butler:
    if database is None:
        create_repository(root)
    else:
        create_repository(root, db=database.url, namespace=database.namespace)
    butler = Butler(root)
    DemoCam().register(butler.registry)
    return butler


@pytest.fixture
def butler(tmp_path: Path) -> Butler:
    return make_butler(tmp_path / "repo")


def raw_refs(butler: Butler) -> list[Any]:
    if not butler.registry.has_collection("DemoCam/raw/all"):
        return []
    return butler.registry.query_datasets("raw", "DemoCam/raw/all", data_id={"instrument": "DemoCam"})


def test_ingest_copies_files_and_creates_records(
    database: DatabaseLocation, raws: Path, tmp_path: Path
) -> None:
    butler = make_butler(tmp_path / "repo", database)
    report = ingest_raws(butler, [raws])
    assert len(report.ingested) == 6 and report.skipped == []
    assert report.runs == ["DemoCam/raw/all"]
    assert (report.headers_read, report.headers_from_index, report.new_exposures) == (6, 0, 3)
    registry = butler.registry
    exposures = registry.query_dimension_records("exposure")
    assert [e.id for e in exposures] == EXPOSURES
    assert [e.physical_filter for e in exposures] == ["g_demo", "r_demo", "i_demo"]
    assert [e.day_obs for e in exposures] == [20251230, 20251230, 20251231]
    assert exposures[0].observation_type == "science" and exposures[0].exposure_time == 30.0
    assert [d.id for d in registry.query_dimension_records("day_obs")] == [20251230, 20251231]
    raw = butler.get(
        "raw", instrument="DemoCam", exposure=2025123100001, detector=1, collections="DemoCam/raw/all"
    )
    assert isinstance(raw, Image) and raw.metadata["EXPID"] == 2025123100001
    uri = butler.get_uri(
        "raw", instrument="DemoCam", exposure=2025123100001, detector=1, collections="DemoCam/raw/all"
    )
    assert uri.ospath.startswith(str(tmp_path / "repo"))
    np.testing.assert_array_equal(
        raw.image, fits.getdata(raws / "20251231/2025123100001/raw_2025123100001_1.fits")
    )
    butler.close()


@pytest.mark.parametrize("transfer", ["symlink", "direct"])
def test_ingest_links_or_uses_files_in_place(transfer: str, butler: Butler, raws: Path) -> None:
    source = raws / "20251230/2025123000002/raw_2025123000002_0.fits"
    report = ingest_raws(butler, [source], transfer=transfer)
    (ingested,) = report.ingested
    uri = butler.get_uri(ingested.ref)
    if transfer == "direct":
        assert uri.ospath == str(source)
    else:
        assert Path(uri.ospath).is_symlink() and Path(uri.ospath).resolve() == source.resolve()
    assert butler.get(ingested.ref).metadata["DETECTOR"] == 0


def test_move_forgets_moved_files_in_the_index(butler: Butler, raws: Path) -> None:
    directory = raws / "20251230" / "2025123000001"
    report = ingest_raws(butler, [directory], transfer="move")
    assert len(report.ingested) == 2
    assert not list(directory.glob("*.fits"))
    assert not (directory / INDEX_NAME).exists()
    assert butler.get(report.ingested[0].ref).metadata["EXPID"] == 2025123000001


def test_sidecar_index_skips_header_parsing(
    raws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_butler(tmp_path / "first")
    ingest_raws(first, [raws])
    index = json.loads((raws / "20251230/2025123000002" / INDEX_NAME).read_text())
    assert sorted(index["files"]) == ["raw_2025123000002_0.fits", "raw_2025123000002_1.fits"]
    assert index["files"]["raw_2025123000002_1.fits"]["observation"]["exposure"] == 2025123000002

    def no_headers(path: Path) -> dict[str, Any]:
        raise AssertionError(f"header of {path} read although the index has it")

    monkeypatch.setattr(raw_ingest, "read_header", no_headers)
    second = make_butler(tmp_path / "second")
    report = ingest_raws(second, [raws])
    assert (len(report.ingested), report.headers_read, report.headers_from_index) == (6, 0, 6)
    assert [e.id for e in second.registry.query_dimension_records("exposure")] == EXPOSURES

    # A changed file (new mtime) is read again; the others still come from the index.
    monkeypatch.undo()
    changed = raws / "20251231/2025123100001/raw_2025123100001_0.fits"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = make_butler(tmp_path / "third")
    report = ingest_raws(third, [raws])
    assert (len(report.ingested), report.headers_read, report.headers_from_index) == (6, 1, 5)
    # Without the index, every header is read and no index is written.
    shutil.rmtree(tmp_path / "third")
    for index_file in raws.rglob(INDEX_NAME):
        index_file.unlink()
    report = ingest_raws(make_butler(tmp_path / "third"), [raws], use_index=False)
    assert report.headers_read == 6 and not list(raws.rglob(INDEX_NAME))


def test_a_corrupt_index_is_ignored(butler: Butler, raws: Path) -> None:
    (raws / "20251230/2025123000001" / INDEX_NAME).write_text("{not json")
    report = ingest_raws(butler, [raws])
    assert len(report.ingested) == 6 and report.headers_read == 6
    assert json.loads((raws / "20251230/2025123000001" / INDEX_NAME).read_text())["version"] == 1


def write_fits(path: Path, header: dict[str, Any]) -> Path:
    hdu = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32))
    hdu.header.update(header)
    hdu.writeto(path)
    return path


def test_bad_files_are_reported_and_skipped(butler: Butler, raws: Path, survey: Path) -> None:
    bad = raws / "bad"
    bad.mkdir()
    (bad / "text.fits").write_text("this is not FITS\n")
    (bad / "empty.fits").write_bytes(b"")
    write_fits(bad / "anonymous.fits", {"OBJECT": "nothing"})
    write_fits(bad / "foreign.fits", {"INSTRUME": "FooCam"})
    good_header = dict(fits.getheader(survey / "20251230/2025123000001/raw_2025123000001_0.fits"))
    for key in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND"):
        del good_header[key]
    write_fits(
        bad / "nofilter.fits", {k: v for k, v in good_header.items() if k != "FILTER"} | {"DETECTOR": 3}
    )
    (bad / "notes.txt").write_text("not a .fits file: never looked at\n")
    report = ingest_raws(butler, [raws, raws / "missing.fits"])
    assert len(report.ingested) == 6
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert {s.kind for s in report.skipped} == {"bad"}
    assert reasons.keys() == {
        "text.fits",
        "empty.fits",
        "anonymous.fits",
        "foreign.fits",
        "nofilter.fits",
        "missing.fits",
    }
    assert "not a readable FITS file" in reasons["text.fits"]
    assert "not a readable FITS file" in reasons["empty.fits"]
    assert reasons["anonymous.fits"] == "header has no INSTRUME keyword naming the instrument."
    assert "Unknown instrument 'FooCam'" in reasons["foreign.fits"]
    assert reasons["nofilter.fits"] == "header has no 'FILTER' keyword (DemoCam raws need it)."
    assert reasons["missing.fits"] == "no such file or directory"
    # Only the good files went into the index.
    assert not (bad / INDEX_NAME).exists()


def test_duplicates_are_skipped(butler: Butler, raws: Path) -> None:
    first = ingest_raws(butler, [raws / "20251230"])
    assert len(first.ingested) == 4
    copy = raws / "copies"
    copy.mkdir()
    shutil.copy(raws / "20251231/2025123100001/raw_2025123100001_1.fits", copy / "again.fits")
    report = ingest_raws(butler, [raws, raws / "20251230/2025123000001/raw_2025123000001_0.fits"])
    assert len(report.ingested) == 2
    assert {Path(s.path).name for s in report.already_ingested} == {
        "raw_2025123000001_0.fits",
        "raw_2025123000001_1.fits",
        "raw_2025123000002_0.fits",
        "raw_2025123000002_1.fits",
    }
    (duplicate,) = report.duplicates
    assert duplicate.path.endswith("raw_2025123100001_1.fits") or duplicate.path.endswith("again.fits")
    assert "same instrument, exposure and detector ('DemoCam', 2025123100001, 1)" in duplicate.reason
    assert len(raw_refs(butler)) == 6


def test_files_disagreeing_about_their_exposure(butler: Butler, raws: Path) -> None:
    path = raws / "20251230/2025123000001/raw_2025123000001_1.fits"
    with fits.open(path, mode="update") as hdus:
        hdus[0].header["FILTER"] = "i_demo"
    report = ingest_raws(butler, [raws / "20251230/2025123000001"])
    assert [Path(r.path).name for r in report.ingested] == ["raw_2025123000001_0.fits"]
    (skipped,) = report.bad
    assert "physical_filter: 'g_demo' != 'i_demo'" in skipped.reason
    # Ingested alone later, it conflicts with the exposure record in the registry.
    report = ingest_raws(butler, [path])
    (skipped,) = report.bad
    assert "exposure record" in skipped.reason and "physical_filter" in skipped.reason


def test_fail_fast_ingests_nothing(butler: Butler, raws: Path) -> None:
    (raws / "20251231" / "broken.fits").write_text("garbage")
    with pytest.raises(
        RawIngestError, match=r"broken\.fits: not a readable FITS file .*nothing was ingested"
    ):
        ingest_raws(butler, [raws], fail_fast=True)
    assert raw_refs(butler) == []
    assert butler.registry.query_dimension_records("exposure") == []
    (raws / "20251231" / "broken.fits").unlink()
    ingest_raws(butler, [raws / "20251230"])
    with pytest.raises(RawIngestError, match="already ingested into DemoCam/raw/all"):
        ingest_raws(butler, [raws], fail_fast=True)
    assert len(raw_refs(butler)) == 4


def test_unregistered_instrument(raws: Path, tmp_path: Path) -> None:
    create_repository(tmp_path / "repo")
    with Butler(tmp_path / "repo") as butler:
        report = ingest_raws(butler, [raws])
        assert report.ingested == [] and len(report.bad) == 6
        assert "run 'butler register-instrument REPO DemoCam' first" in report.bad[0].reason


def test_output_run_and_unknown_transfer(butler: Butler, raws: Path) -> None:
    report = ingest_raws(butler, [raws / "20251231"], run="DemoCam/raw/night2")
    assert report.runs == ["DemoCam/raw/night2"]
    assert len(butler.registry.query_datasets("raw", "DemoCam/raw/night2")) == 2
    with pytest.raises(RawIngestError, match="Unknown transfer mode 'teleport'"):
        ingest_raws(butler, [raws], transfer="teleport")
