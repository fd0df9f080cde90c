"""The DemoCam survey simulator: raw FITS files, the reference catalog they were drawn from, and the curated calibrations, ready to ingest.

Run ``python -m graph.demo.simulate OUT_DIR --visits 6 --detectors 4 --seed 1`` to write::

    OUT_DIR/raw/<day_obs>/<exposure>/raw_<exposure>_<detector>.fits   raw images (ADU)
    OUT_DIR/refcat/demo_refcat.parquet                                 the reference catalog
    OUT_DIR/calib/{bias,flat}/*.fits + OUT_DIR/calib/calibs.yaml       curated calibrations

Everything is a deterministic function of the seed (and the camera model in `graph.demo.camera`):
the same arguments always give the same pixels.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from astropy.time import Time

from butler.formatters.fits import FitsImageFormatter
from butler.image import Image

from . import camera
from .instrument import DemoCam

__all__ = [
    "CENTER_DEC",
    "CENTER_RA",
    "CatalogStars",
    "Pointing",
    "SimulationResult",
    "main",
    "make_star_catalog",
    "plan_survey",
    "simulate",
    "simulate_raw",
]

CENTER_RA = 150.0
"""Survey field centre, right ascension in degrees."""

CENTER_DEC = 2.2
"""Survey field centre, declination in degrees."""

CATALOG_HALF_WIDTH_DEG = 0.1
"""Stars are drawn in a square of this half-width (on the sky) around the field centre, degrees."""

CATALOG_SIZE = 1200
"""Number of stars in the synthetic catalog (about 30 per detector)."""

DITHER_ARCMIN = 2.0
"""Pointings are offset from the field centre by up to this much in RA and Dec, arcmin."""

SCIENCE_PROGRAM = "demo-survey"
"""PROGRAM of every simulated exposure."""

REFCAT_MAG_NOISE = 0.01
"""Gaussian noise added to the reference catalog's magnitudes (the images use the true ones), mag."""

_FIRST_EXPOSURE_UTC = timedelta(days=1, hours=1, minutes=30)
"""Time of a night's first exposure after 00:00 UTC of its day_obs date (local evening in Chile)."""

_CADENCE = timedelta(seconds=60)
"""Time between exposure starts within a night."""


@dataclass(frozen=True, slots=True)
class Pointing:
    """One simulated exposure."""

    exposure: int
    """Exposure id (day_obs * 100000 + sequence number)."""
    day_obs: int
    """Observing night, YYYYMMDD."""
    physical_filter: str
    """DemoCam filter."""
    ra: float
    """Boresight right ascension, degrees."""
    dec: float
    """Boresight declination, degrees."""
    sky_angle: float
    """Position angle of the focal-plane y axis, degrees east of north."""
    begin: datetime
    """Shutter open, aware UTC."""
    exposure_time: float
    """Seconds."""
    zenith_angle: float
    """Degrees."""
    psf_sigma: float
    """Gaussian PSF sigma, pixels."""

    @property
    def band(self) -> str:
        """The band of the filter."""
        return camera.PHYSICAL_FILTERS[self.physical_filter]

    @property
    def obs_id(self) -> str:
        """The instrument's name for the exposure."""
        return f"DC_O_{self.day_obs}_{self.exposure % 100000:06d}"


@dataclass(frozen=True, slots=True)
class CatalogStars:
    """The synthetic stars: the truth behind the images (``ra``, ``dec`` in degrees, AB magnitudes per band)."""

    id: np.ndarray
    """Star ids, 1..N."""
    ra: np.ndarray
    """Right ascension, degrees."""
    dec: np.ndarray
    """Declination, degrees."""
    mags: dict[str, np.ndarray]
    """Band -> true AB magnitude."""

    def to_arrow(self, mag_noise: float = 0.0, seed: int = 0) -> pa.Table:
        """The catalog as a table (``id``, ``ra``, ``dec``, ``<band>_mag``), magnitudes optionally perturbed."""
        rng = np.random.default_rng([seed, 7])
        columns: dict[str, np.ndarray] = {"id": self.id, "ra": self.ra, "dec": self.dec}
        for band, mags in self.mags.items():
            columns[f"{band}_mag"] = mags + (rng.normal(0.0, mag_noise, mags.size) if mag_noise else 0.0)
        return pa.Table.from_arrays([_arrow_column(c) for c in columns.values()], names=list(columns))


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What `simulate` wrote."""

    pointings: list[Pointing]
    """The exposures, in time order."""
    raws: list[Path] = field(default_factory=list)
    """Raw files written."""
    refcat: Path | None = None
    """The reference catalog (Parquet)."""
    calib_manifest: Path | None = None
    """calibs.yaml listing the curated calibration files and their validity."""
    n_calibrations: int = 0
    """Curated calibration files written."""

    def summary(self, out_dir: Path) -> str:
        """One line for the terminal."""
        nights = len({p.day_obs for p in self.pointings})
        bands = ",".join(dict.fromkeys(p.band for p in self.pointings))
        detectors = len(self.raws) // max(len(self.pointings), 1)
        return (
            f"Simulated {len(self.pointings)} visit(s) x {detectors} detector(s) ({len(self.raws)} raw files) "
            f"over {nights} night(s) in {bands or 'no bands'} into {out_dir}: raw/, "
            f"refcat/demo_refcat.parquet"
            + (f", calib/calibs.yaml ({self.n_calibrations} calibrations)." if self.calib_manifest else ".")
        )


def _arrow_column(values: np.ndarray) -> pa.Array:
    """A numpy int64/float64 array as an Arrow array (``pa.array`` would import pandas, slowly)."""
    integer = values.dtype.kind == "i"
    data = np.ascontiguousarray(values, dtype=np.int64 if integer else np.float64)
    return pa.Array.from_buffers(
        pa.int64() if integer else pa.float64(), data.size, [None, pa.py_buffer(data)]
    )


# -- the survey ------------------------------------------------------------------------------------


def plan_survey(
    visits: int,
    *,
    seed: int,
    nights: int = 2,
    bands: Sequence[str] = camera.BANDS,
    start_day_obs: int = 20251230,
) -> list[Pointing]:
    """The exposures of the simulated survey, in time order.

    Visits are spread evenly over ``nights`` consecutive nights starting at ``start_day_obs``, cycle
    through ``bands``, and dither by up to `DITHER_ARCMIN` around (`CENTER_RA`, `CENTER_DEC`). The
    default start (the night of 2025-12-30) makes a two-night survey straddle the flat-field epoch
    change of 2026-01-01, so calibration lookup picks different flats for the two nights.
    """
    if visits < 1 or nights < 1:
        raise ValueError(f"Need at least one visit and one night; got visits={visits}, nights={nights}.")
    filters = {band: name for name, band in camera.PHYSICAL_FILTERS.items()}
    unknown = [b for b in bands if b not in filters]
    if unknown or not bands:
        raise ValueError(f"DemoCam bands are {', '.join(camera.BANDS)}; got {', '.join(bands) or 'none'}.")
    start = date(start_day_obs // 10000, start_day_obs // 100 % 100, start_day_obs % 100)
    per_night = math.ceil(visits / nights)
    rng = np.random.default_rng([seed, 1])
    pointings = []
    for index in range(visits):
        night, seq = divmod(index, per_night)
        day = start + timedelta(days=night)
        day_obs = day.year * 10000 + day.month * 100 + day.day
        offset_ra, offset_dec = rng.uniform(-DITHER_ARCMIN, DITHER_ARCMIN, 2) / 60.0
        sky_angle = float(rng.uniform(-5.0, 5.0))
        zenith_angle = float(rng.uniform(20.0, 50.0))
        seeing = float(rng.uniform(0.9, 1.2))
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        pointings.append(
            Pointing(
                exposure=day_obs * 100000 + seq + 1,
                day_obs=day_obs,
                physical_filter=filters[bands[index % len(bands)]],
                ra=round(CENTER_RA + offset_ra / math.cos(math.radians(CENTER_DEC)), 9),
                dec=round(CENTER_DEC + offset_dec, 9),
                sky_angle=round(sky_angle, 6),
                begin=midnight + _FIRST_EXPOSURE_UTC + seq * _CADENCE,
                exposure_time=camera.EXPOSURE_TIME_S,
                zenith_angle=round(zenith_angle, 6),
                psf_sigma=round(camera.PSF_SIGMA_PX * seeing, 6),
            )
        )
    return pointings


def make_star_catalog(seed: int, size: int = CATALOG_SIZE) -> CatalogStars:
    """Stars uniformly spread over the survey field, more of them faint (r from 17 to 23)."""
    rng = np.random.default_rng([seed, 0])
    half_ra = CATALOG_HALF_WIDTH_DEG / math.cos(math.radians(CENTER_DEC))
    ra = CENTER_RA + rng.uniform(-half_ra, half_ra, size)
    dec = CENTER_DEC + rng.uniform(-CATALOG_HALF_WIDTH_DEG, CATALOG_HALF_WIDTH_DEG, size)
    # Number counts rising by 10**0.3 per magnitude: invert the cumulative distribution.
    low, high, slope = 17.0, 23.0, 0.3 * math.log(10.0)
    u = rng.uniform(0.0, 1.0, size)
    r_mag = np.log(np.exp(slope * low) + u * (np.exp(slope * high) - np.exp(slope * low))) / slope
    g_r = rng.uniform(0.2, 1.2, size)
    r_i = 0.3 * g_r + rng.normal(0.0, 0.05, size)
    mags = {"g": r_mag + g_r, "r": r_mag, "i": r_mag - r_i}
    return CatalogStars(np.arange(1, size + 1, dtype=np.int64), ra, dec, mags)


def raw_metadata(pointing: Pointing, detector_id: int) -> dict[str, Any]:
    """The primary-header cards of one raw file (the keywords `DemoCam.translate_header` reads, WCS, gain, ...)."""
    begin = Time(pointing.begin, scale="utc")
    end = Time(pointing.begin + timedelta(seconds=pointing.exposure_time), scale="utc")
    geom = camera.detector(detector_id)
    return {
        "INSTRUME": camera.INSTRUMENT_NAME,
        "EXPID": pointing.exposure,
        "OBSID": pointing.obs_id,
        "DETECTOR": detector_id,
        "DETNAME": geom.name,
        "FILTER": pointing.physical_filter,
        "RA": pointing.ra,
        "DEC": pointing.dec,
        "ROTPA": pointing.sky_angle,
        "DATE-BEG": begin.tai.isot,
        "DATE-END": end.tai.isot,
        # With the MJD twins present, astropy's WCS finds nothing to "fix" (no FITSFixedWarning).
        "MJD-BEG": float(begin.tai.mjd),
        "MJD-END": float(end.tai.mjd),
        "TIMESYS": "TAI",
        "EXPTIME": pointing.exposure_time,
        "OBSTYPE": "science",
        "PROGRAM": SCIENCE_PROGRAM,
        "ZENANGLE": pointing.zenith_angle,
        "DAYOBS": pointing.day_obs,
        "BUNIT": "adu",
        "GAIN": camera.gain(detector_id),
        "RDNOISE": camera.read_noise(detector_id),
        "PSFSIGMA": pointing.psf_sigma,
        **camera.detector_wcs_cards(pointing.ra, pointing.dec, pointing.sky_angle, detector_id),
    }


def simulate_raw(
    pointing: Pointing,
    detector_id: int,
    stars: CatalogStars,
    *,
    seed: int,
    bias: np.ndarray | None = None,
    flat: np.ndarray | None = None,
) -> Image:
    """One raw image in ADU: bias + (flat * (sky + stars) with Poisson noise + read noise) / gain.

    Stars are Gaussian PSFs placed through the detector's WCS; the variance plane is zero (a raw
    has no variance estimate yet) and so is the mask. ``bias`` and ``flat`` default to the camera
    model's (pass them to reuse them across exposures).
    """
    rng = np.random.default_rng([seed, 2, pointing.exposure, detector_id])
    if bias is None:
        bias = camera.bias_model(detector_id)
    if flat is None:
        flat = camera.flat_model(detector_id, pointing.physical_filter, camera.flat_epoch(pointing.begin))
    electrons = np.full(camera.DETECTOR_SHAPE, camera.sky_level(pointing.band, pointing.exposure_time))
    wcs = camera.detector_wcs(pointing.ra, pointing.dec, pointing.sky_angle, detector_id)
    x, y = wcs.wcs_world2pix(stars.ra, stars.dec, 0)
    fluxes = camera.instrumental_flux(stars.mags[pointing.band], pointing.band, pointing.exposure_time)
    _add_stars(electrons, x, y, fluxes, pointing.psf_sigma)
    electrons *= flat
    counts = rng.poisson(electrons).astype(np.float64)
    counts += rng.normal(0.0, camera.read_noise(detector_id), camera.DETECTOR_SHAPE)
    adu = (counts / camera.gain(detector_id) + bias).astype(np.float32)
    return Image(
        image=adu,
        mask=np.zeros(camera.DETECTOR_SHAPE, dtype=np.int32),
        variance=np.zeros(camera.DETECTOR_SHAPE, dtype=np.float32),
        metadata=raw_metadata(pointing, detector_id),
    )


def _add_stars(electrons: np.ndarray, x: np.ndarray, y: np.ndarray, fluxes: np.ndarray, sigma: float) -> None:
    """Add Gaussian PSFs (total ``fluxes``) centred at 0-based pixel positions ``x``, ``y``."""
    height, width = electrons.shape
    half = math.ceil(5 * sigma)
    inside = (x > -half) & (x < width + half) & (y > -half) & (y < height + half)
    norm = 1.0 / (2.0 * math.pi * sigma**2)
    for xc, yc, flux in zip(x[inside], y[inside], fluxes[inside], strict=True):
        x0, x1 = max(int(xc) - half, 0), min(int(xc) + half + 1, width)
        y0, y1 = max(int(yc) - half, 0), min(int(yc) + half + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = np.arange(x0, x1) - xc
        dy = np.arange(y0, y1) - yc
        profile_x = np.exp(-0.5 * (dx / sigma) ** 2)
        profile_y = np.exp(-0.5 * (dy / sigma) ** 2)
        electrons[y0:y1, x0:x1] += flux * norm * np.outer(profile_y, profile_x)


# -- writing ---------------------------------------------------------------------------------------


def simulate(
    out_dir: str | Path,
    *,
    visits: int = 6,
    detectors: int = len(camera.DETECTORS),
    seed: int = 1,
    nights: int = 2,
    bands: Sequence[str] = camera.BANDS,
    start_day_obs: int = 20251230,
    calibrations: bool = True,
) -> SimulationResult:
    """Write raws, the reference catalog and the curated calibrations into ``out_dir`` (see the module docstring).

    ``detectors`` simulates detectors 0..detectors-1 of each exposure; ``calibrations=False`` skips
    the calibration files (the repository gets them from ``write-curated-calibrations`` anyway).
    Existing files are overwritten.
    """
    if not 1 <= detectors <= len(camera.DETECTORS):
        raise ValueError(f"DemoCam has {len(camera.DETECTORS)} detectors; got detectors={detectors}.")
    out = Path(out_dir)
    pointings = plan_survey(visits, seed=seed, nights=nights, bands=bands, start_day_obs=start_day_obs)
    stars = make_star_catalog(seed)
    formatter = FitsImageFormatter()
    raws = []
    biases = {d: camera.bias_model(d) for d in range(detectors)}
    flats: dict[tuple[int, str, int], np.ndarray] = {}
    for pointing in pointings:
        directory = out / "raw" / str(pointing.day_obs) / str(pointing.exposure)
        directory.mkdir(parents=True, exist_ok=True)
        epoch = camera.flat_epoch(pointing.begin)
        for det in range(detectors):
            key = (det, pointing.physical_filter, epoch)
            if key not in flats:
                flats[key] = camera.flat_model(det, pointing.physical_filter, epoch)
            image = simulate_raw(pointing, det, stars, seed=seed, bias=biases[det], flat=flats[key])
            path = directory / f"raw_{pointing.exposure}_{det}.fits"
            _write(formatter, image, path)
            raws.append(path)
    refcat = out / "refcat" / "demo_refcat.parquet"
    refcat.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(stars.to_arrow(REFCAT_MAG_NOISE, seed), refcat)
    manifest, n_calibs = write_calibrations(out / "calib") if calibrations else (None, 0)
    return SimulationResult(pointings, raws, refcat, manifest, n_calibs)


def write_calibrations(directory: Path) -> tuple[Path, int]:
    """Write DemoCam's curated calibrations as FITS files plus a ``calibs.yaml`` manifest; returns (manifest, count)."""
    formatter = FitsImageFormatter()
    entries = []
    for calib in DemoCam().curated_calibrations():
        data_id = dict(calib.data_id)
        stem = "_".join(
            [calib.dataset_type]
            + [str(data_id[k]) for k in ("physical_filter", "detector") if k in data_id]
            + [f"{calib.valid_from:%Y%m%d}"]
        )
        path = directory / calib.dataset_type / f"{stem}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(formatter, calib.image, path)
        entries.append(
            {
                "dataset_type": calib.dataset_type,
                "data_id": data_id,
                "valid_from": calib.valid_from.isoformat(),
                "valid_to": None if calib.valid_to is None else calib.valid_to.isoformat(),
                "path": str(path.relative_to(directory)),
            }
        )
    manifest = directory / "calibs.yaml"
    header = (
        "# DemoCam curated calibrations (what 'butler write-curated-calibrations REPO DemoCam' stores).\n"
        "# valid_to null means valid forever; times are UTC.\n"
    )
    manifest.write_text(header + yaml.safe_dump({"calibrations": entries}, sort_keys=False))
    return manifest, len(entries)


def _write(formatter: FitsImageFormatter, image: Image, path: Path) -> None:
    path.unlink(missing_ok=True)
    formatter.write(image, path)


# -- command line ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m graph.demo.simulate",
        description="Simulate a small DemoCam survey: raw FITS files, a reference catalog, curated calibrations.",
    )
    parser.add_argument("out_dir", type=Path, help="Directory to write into (created if absent).")
    parser.add_argument("--visits", type=int, default=6, help="Number of visits (default: 6).")
    parser.add_argument("--detectors", type=int, default=4, help="Detectors per visit, 1..4 (default: 4).")
    parser.add_argument("--seed", type=int, default=1, help="Random seed (default: 1).")
    parser.add_argument("--nights", type=int, default=2, help="Number of nights (default: 2).")
    parser.add_argument(
        "--bands", default="g,r,i", help="Comma-separated bands to cycle through (default: g,r,i)."
    )
    parser.add_argument(
        "--start-day-obs",
        type=int,
        default=20251230,
        help="day_obs (YYYYMMDD) of the first night (default: 20251230; two nights straddle the flat change).",
    )
    parser.add_argument(
        "--no-calibs", action="store_true", help="Do not write the curated calibrations under calib/."
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    bands = [b.strip() for b in args.bands.split(",") if b.strip()]
    try:
        result = simulate(
            args.out_dir,
            visits=args.visits,
            detectors=args.detectors,
            seed=args.seed,
            nights=args.nights,
            bands=bands,
            start_day_obs=args.start_day_obs,
            calibrations=not args.no_calibs,
        )
    except (ValueError, OSError) as err:
        parser.error(str(err))
    print(result.summary(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
