"""A small observing campaign for registry tests: records and sky layout.

Sky layout (degrees): skymap "demo" has tract 0 covering RA 10..12, Dec -1..1, split into four
1x1 patches (id = 2*row + column). Visit 1 points inside patch 0 only; visit 2 straddles the
centre, so its detector 0 touches all four patches and detector 3 only patch 3.
"""

from __future__ import annotations

from typing import Any

from butler import Registry

DETECTORS = range(4)
VISIT_CENTRES = {1: (10.5, -0.5), 2: (11.05, 0.05)}
DETECTOR_OFFSETS = {0: (-0.4, -0.4), 1: (0.0, -0.4), 2: (-0.4, 0.0), 3: (0.0, 0.0)}
DETECTOR_SIZE = 0.4


def box(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> dict[str, list[float]]:
    """A region in the registry's accepted form."""
    return {"box": [ra_min, ra_max, dec_min, dec_max]}


def detector_box(visit: int, detector: int) -> dict[str, list[float]]:
    """The footprint of one detector in one visit."""
    ra, dec = VISIT_CENTRES[visit]
    dra, ddec = DETECTOR_OFFSETS[detector]
    return box(ra + dra, ra + dra + DETECTOR_SIZE, dec + ddec, dec + ddec + DETECTOR_SIZE)


def populate(registry: Registry) -> None:
    """Insert the campaign's dimension records."""
    inst: dict[str, Any] = {"instrument": "DemoCam"}
    registry.insert_dimension_records("instrument", [{"name": "DemoCam", "detector_max": 4}])
    registry.insert_dimension_records("band", [{"name": b} for b in "gri"])
    registry.insert_dimension_records(
        "physical_filter", [inst | {"name": f"{b}_01", "band": b} for b in "gri"]
    )
    registry.insert_dimension_records(
        "detector",
        [
            inst | {"id": d, "full_name": f"S{d:02d}", "purpose": "WAVEFRONT" if d == 3 else "SCIENCE"}
            for d in DETECTORS
        ],
    )
    registry.insert_dimension_records(
        "day_obs",
        [
            inst
            | {"id": 20260501, "timespan": {"begin": "2026-05-01T12:00:00", "end": "2026-05-02T12:00:00"}},
            inst
            | {"id": 20260502, "timespan": {"begin": "2026-05-02T12:00:00", "end": "2026-05-03T12:00:00"}},
        ],
    )
    exposures = []
    for exposure in range(1, 7):
        day = 20260501 if exposure <= 3 else 20260502
        hour = 20 + exposure % 3
        date = "2026-05-01" if day == 20260501 else "2026-05-02"
        exposures.append(
            inst
            | {
                "id": exposure,
                "physical_filter": "gri"[exposure % 3] + "_01",
                "day_obs": day,
                "obs_id": f"DC_{exposure:04d}",
                "exposure_time": 30.0,
                "observation_type": "science" if exposure != 6 else "flat",
                "science_program": "demo",
                "zenith_angle": 10.0 * exposure,
                "timespan": {"begin": f"{date}T{hour}:00:00", "end": f"{date}T{hour}:00:30"},
            }
        )
    registry.insert_dimension_records("exposure", exposures)
    registry.insert_dimension_records(
        "visit",
        [
            inst
            | {
                "id": v,
                "physical_filter": "gri"[v % 3] + "_01",
                "day_obs": 20260501,
                "name": f"v{v}",
                "region": box(c[0] - 0.4, c[0] + 0.4, c[1] - 0.4, c[1] + 0.4),
            }
            for v, c in VISIT_CENTRES.items()
        ],
    )
    registry.insert_dimension_records(
        "visit_definition", [inst | {"exposure": v, "visit": v} for v in VISIT_CENTRES]
    )
    registry.insert_dimension_records(
        "skymap", [{"name": "demo", "tract_max": 1, "patch_nx_max": 2, "patch_ny_max": 2}]
    )
    registry.insert_dimension_records("tract", [{"skymap": "demo", "id": 0, "region": box(10, 12, -1, 1)}])
    registry.insert_dimension_records(
        "patch",
        [
            {
                "skymap": "demo",
                "tract": 0,
                "id": 2 * row + col,
                "cell_x": col,
                "cell_y": row,
                "region": box(10 + col, 11 + col, -1 + row, row),
            }
            for row in range(2)
            for col in range(2)
        ],
    )
    registry.insert_dimension_records(
        "visit_detector_region",
        [
            inst | {"visit": v, "detector": d, "region": detector_box(v, d)}
            for v in VISIT_CENTRES
            for d in DETECTORS
        ],
    )
