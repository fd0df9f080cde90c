#!/usr/bin/env bash
# Simulate a small DemoCam survey, build a repository from it as a new user would, check the
# demo pipeline, submit it with bps (Parsl on this machine, isr+calibrate clustered per visit and
# detector), and show the run's report and the coadds.
# Usage: run.sh WORK_DIR   (WORK_DIR/repo must not exist yet; raw files go to WORK_DIR/survey,
# the run's submit directory to WORK_DIR/submit)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
examples="$(cd "$here/../../../submit_templates/examples" && pwd)"
mkdir -p "$1"
work="$(cd "$1" && pwd)"
export QUANTA_BPS_HOME="${QUANTA_BPS_HOME:-$work/bps_home}"  # the demo's runs stay out of ~/.quanta
repo="$work/repo"
survey="$work/survey"

show() {  # echo a command (quoting arguments with spaces), then run it
    local line="$" arg
    for arg in "$@"; do [[ "$arg" == *" "* ]] && line+=" \"$arg\"" || line+=" $arg"; done
    printf '\n%s\n' "$line"
    "$@"
}

show python -m graph.demo.simulate "$survey" --visits 6 --detectors 4 --seed 1
show butler create "$repo"
show butler register-instrument "$repo" DemoCam
show butler write-curated-calibrations "$repo" DemoCam
show butler ingest-raws "$repo" "$survey/raw"
show butler define-visits "$repo" DemoCam
show butler ingest-refcat "$repo" "$survey/refcat/demo_refcat.parquet"
show butler register-skymap "$repo" --name demo-rings --config "$examples/demo_skymap.yaml"

show butler query-collections "$repo" --chains tree
show butler query-dimension-records "$repo" visit
# Calibration lookup by observation time: the two nights straddle the flat change on 2026-01-01.
show butler query-datasets "$repo" flat --collections DemoCam/defaults --where "exposure IN (2025123000001, 2025123100001) AND detector = 0"
# Spatial join through the regions of define-visits and register-skymap.
show butler query-data-ids "$repo" visit detector --where "skymap = 'demo-rings' AND tract = 9813 AND patch = 1042"
show pipetask build -p "$examples/demo_pipeline.yaml" --show graph --pipeline-svg "$work/pipeline.svg"
show bps submit --wait "$examples/demo_submit.yaml" -b "$repo" -p "$examples/demo_pipeline.yaml" \
    --submit-path "$work/submit"
show bps report
show butler query-datasets "$repo" deepCoadd --collections u/demo/coadds
