"""The instrument ``butler`` subcommands, typed as a new user would: simulate, create, register, calibrate, ingest, define visits."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from butler.butler import Butler
from butler.cli import main
from graph.demo import simulate


def butler_cli(*args: str | Path, code: int = 0) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    assert simulate.main([str(out), "--visits", "4", "--detectors", "2", "--seed", "7", "--no-calibs"]) == 0
    return out


def test_walkthrough(survey: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    butler_cli("create", repo)
    out = butler_cli("register-instrument", repo, "DemoCam").output
    assert (
        out
        == "Registered instrument DemoCam: 4 detector(s), 3 physical filter(s) (g_demo, r_demo, i_demo), 11 new record(s).\n"
    )
    assert butler_cli("register-instrument", repo, "DemoCam").output == (
        "Instrument DemoCam is already registered; nothing changed.\n"
    )
    out = butler_cli("write-curated-calibrations", repo, "DemoCam").output
    assert out == (
        "Wrote 28 curated calibration(s) of DemoCam (bias, flat) into DemoCam/calib/curated/20200101T000000Z, "
        "DemoCam/calib/curated/20260101T000000Z and certified them in DemoCam/calib.\n"
        "DemoCam/defaults = DemoCam/raw/all, DemoCam/calib, refcats, skymaps\n"
    )
    out = butler_cli("ingest-raws", repo, survey / "raw", "--no-progress").output
    assert out == (
        "Ingested 8 raw file(s) into DemoCam/raw/all (4 new exposure(s); 8 header(s) read, 0 from _index.json).\n"
    )
    out = butler_cli("ingest-raws", repo, survey / "raw").output
    assert (
        out
        == "Ingested no raw files (0 header(s) read, 8 from _index.json).\nSkipped 8 file(s) already ingested.\n"
    )
    out = butler_cli("define-visits", repo, "DemoCam").output
    assert (
        out == "Defined 4 visit(s) of DemoCam: 2025123000001, 2025123000002, 2025123100001, 2025123100002.\n"
    )
    assert "No new visits" in butler_cli("define-visits", repo, "DemoCam").output
    out = butler_cli("ingest-refcat", repo, survey / "refcat" / "demo_refcat.parquet").output
    assert out == (
        "Ingested demo_refcat.parquet as demo_refcat into refcats (id, ra, dec, g_mag, r_mag, i_mag; bands g, r, i).\n"
    )
    assert (
        "already holds demo_refcat"
        in butler_cli("ingest-refcat", repo, survey / "refcat" / "demo_refcat.parquet").output
    )
    with Butler(repo, collections="DemoCam/defaults") as butler:
        table = butler.get("demo_refcat")
        assert table.num_rows == simulate.CATALOG_SIZE
        flat = butler.find_dataset("flat", instrument="DemoCam", exposure=2025123100002, detector=1)
        assert flat is not None and flat.run == "DemoCam/calib/curated/20260101T000000Z"
        raw = butler.get("raw", instrument="DemoCam", exposure=2025123100002, detector=1)
        assert raw.metadata["FILTER"] == "g_demo"
    listing = butler_cli("query-datasets", repo, "raw", "--collections", "DemoCam/defaults").output
    assert listing.count("DemoCam/raw/all") == 8


def test_help_lists_installed_instruments() -> None:
    out = butler_cli("register-instrument", "--help").output
    assert "installed instrument (DemoCam)" in out
    assert "ingest-raws" in butler_cli("--help").output


def test_unknown_instrument_is_a_usage_error(tmp_path: Path) -> None:
    butler_cli("create", tmp_path / "repo")
    result = butler_cli("register-instrument", tmp_path / "repo", "DemoCm", code=2)
    assert (
        "Error: Invalid value for 'INSTRUMENT': Unknown instrument 'DemoCm'. Did you mean 'DemoCam'?"
        in result.output
    )


def test_graph_errors_become_messages_with_exit_codes(survey: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    butler_cli("create", repo)
    result = butler_cli("define-visits", repo, "DemoCam", code=1)
    assert result.output.startswith("Error: Instrument DemoCam is not registered")
    assert "Traceback" not in result.output
    out = butler_cli("ingest-raws", repo, survey / "raw" / "20251230", "--no-index").output
    assert "Skipped 4 file(s) with problems:" in out and "register-instrument" in out


def test_fail_fast_exits_non_zero_and_ingests_nothing(survey: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    butler_cli("create", repo)
    butler_cli("register-instrument", repo, "DemoCam")
    bad = tmp_path / "bad.fits"
    bad.write_text("not FITS")
    result = butler_cli("ingest-raws", repo, survey / "raw", bad, "--fail-fast", "--transfer", "copy", code=1)
    assert result.output.startswith(f"Error: {bad}: not a readable FITS file")
    assert "nothing was ingested" in result.output
    assert "No datasets found" in butler_cli("query-datasets", repo, "--find-all").output
    out = butler_cli("ingest-raws", repo, survey / "raw", bad, "--transfer", "symlink").output
    assert out.startswith("Ingested 8 raw file(s) into DemoCam/raw/all")
    assert f"Skipped 1 file(s) with problems:\n  {bad}: not a readable FITS file" in out


def test_ingest_refcat_checks_columns(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    butler_cli("create", repo)
    notes = tmp_path / "notes.parquet"
    notes.write_text("plain text")
    result = butler_cli("ingest-refcat", repo, notes, code=2)
    assert "is not a readable Parquet file" in result.output
    stars = simulate.make_star_catalog(1).to_arrow().select(["id", "ra"])
    pq.write_table(stars, tmp_path / "partial.parquet")
    result = butler_cli("ingest-refcat", repo, tmp_path / "partial.parquet", code=2)
    assert "needs ra, dec and at least one <band>_mag column" in result.output
