"""Write the dimension records of a small DemoCam campaign as YAML files, one per element.

Two nights of 3 g/r/i exposures each over a 2x2-patch tract; each exposure is its own visit,
and the camera has a 3x3 grid of detectors 0.2 degrees across (detector 4 is a wavefront sensor).
Usage: python make_records.py OUTPUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

INSTRUMENT = "DemoCam"
BANDS = "gri"
NIGHTS = {20260501: "2026-05-01", 20260502: "2026-05-02"}
DETECTOR_SIZE = 0.2  # degrees
TRACT_BOX = (150.0, 151.0, 2.0, 3.0)  # ra_min, ra_max, dec_min, dec_max


def box(ra_min: float, ra_max: float, dec_min: float, dec_max: float) -> dict[str, list[float]]:
    return {"box": [round(ra_min, 4), round(ra_max, 4), round(dec_min, 4), round(dec_max, 4)]}


def records() -> dict[str, list[dict[str, object]]]:
    inst = {"instrument": INSTRUMENT}
    out: dict[str, list[dict[str, object]]] = {
        "instrument": [{"name": INSTRUMENT, "class_name": "graph.demo.DemoCam", "detector_max": 9}],
        "band": [{"name": b} for b in BANDS],
        "physical_filter": [inst | {"name": f"{b}_01", "band": b} for b in BANDS],
        "detector": [
            inst
            | {"id": d, "full_name": f"R0{d // 3}S0{d % 3}", "purpose": "WAVEFRONT" if d == 4 else "SCIENCE"}
            for d in range(9)
        ],
        "day_obs": [
            inst | {"id": day, "timespan": {"begin": f"{date}T12:00:00", "end": f"{date}T23:59:59"}}
            for day, date in NIGHTS.items()
        ],
        "exposure": [],
        "visit": [],
        "visit_definition": [],
        "visit_detector_region": [],
        "skymap": [{"name": "demo_sky", "tract_max": 1, "patch_nx_max": 2, "patch_ny_max": 2}],
        "tract": [{"skymap": "demo_sky", "id": 0, "region": box(*TRACT_BOX)}],
        "patch": [],
    }
    ra0, ra1, dec0, dec1 = TRACT_BOX
    half_ra, half_dec = (ra1 - ra0) / 2, (dec1 - dec0) / 2
    for row in range(2):
        for col in range(2):
            out["patch"].append(
                {
                    "skymap": "demo_sky",
                    "tract": 0,
                    "id": 2 * row + col,
                    "cell_x": col,
                    "cell_y": row,
                    "region": box(
                        ra0 + col * half_ra,
                        ra0 + (col + 1) * half_ra,
                        dec0 + row * half_dec,
                        dec0 + (row + 1) * half_dec,
                    ),
                }
            )
    exposure = 0
    for night_index, (day, date) in enumerate(NIGHTS.items()):
        for index, band in enumerate(BANDS):
            exposure += 1
            # Dither the pointing so visits land in different patches.
            ra = ra0 + 0.3 + 0.2 * index + 0.1 * night_index
            dec = dec0 + 0.35 + 0.3 * night_index
            begin = f"{date}T2{index}:00:00"
            end = f"{date}T2{index}:00:30"
            common = inst | {"id": exposure, "physical_filter": f"{band}_01", "day_obs": day}
            out["exposure"].append(
                common
                | {
                    "obs_id": f"DC_{day}_{exposure:04d}",
                    "exposure_time": 30.0,
                    "observation_type": "science",
                    "science_program": "demo-survey",
                    "zenith_angle": 20.0 + 5 * index,
                    "timespan": {"begin": begin, "end": end},
                }
            )
            out["visit"].append(
                common
                | {
                    "name": f"v{exposure}",
                    "exposure_time": 30.0,
                    "science_program": "demo-survey",
                    "zenith_angle": 20.0 + 5 * index,
                    "timespan": {"begin": begin, "end": end},
                    "region": box(ra - 0.3, ra + 0.3, dec - 0.3, dec + 0.3),
                }
            )
            out["visit_definition"].append(inst | {"exposure": exposure, "visit": exposure})
            for detector in range(9):
                dra = (detector % 3 - 1.5) * DETECTOR_SIZE
                ddec = (detector // 3 - 1.5) * DETECTOR_SIZE
                out["visit_detector_region"].append(
                    inst
                    | {
                        "visit": exposure,
                        "detector": detector,
                        "region": box(
                            ra + dra, ra + dra + DETECTOR_SIZE, dec + ddec, dec + ddec + DETECTOR_SIZE
                        ),
                    }
                )
    return out


def main() -> None:
    output = Path(sys.argv[1])
    output.mkdir(parents=True, exist_ok=True)
    for index, (element, rows) in enumerate(records().items()):
        path = output / f"{index:02d}_{element}.yaml"
        path.write_text(yaml.safe_dump({"records": rows}, sort_keys=False))


if __name__ == "__main__":
    main()
