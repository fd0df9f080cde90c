#!/usr/bin/env bash
# Build a small DemoCam registry repository with the butler command and query it.
# Usage: run.sh REPO   (REPO must not exist yet)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$1"
records="$(mktemp -d)"
trap 'rm -rf "$records"' EXIT

python "$here/make_records.py" "$records"
butler create "$repo"
for file in "$records"/*.yaml; do
    element="$(basename "$file" .yaml)"
    butler insert-dimension-records "$repo" "${element#*_}" "$file"
done
butler register-dataset-type "$repo" raw Exposure instrument exposure detector
python "$here/insert_raws.py" "$repo"
butler collection-chain "$repo" DemoCam/defaults DemoCam/raw/all --doc "What the demo processes."

show() {  # echo a command (quoting arguments with spaces), then run it
    local line="$" arg
    for arg in "$@"; do [[ "$arg" == *" "* ]] && line+=" \"$arg\"" || line+=" $arg"; done
    printf '\n%s\n' "$line"
    "$@"
}
show butler query-collections "$repo" --chains tree
show butler query-dimension-records "$repo" exposure --where "band = 'g'"
show butler query-data-ids "$repo" visit detector --where "skymap = 'demo_sky' AND tract = 0 AND patch = 3 AND detector.purpose = 'SCIENCE'" --limit 8
show butler query-datasets "$repo" raw --collections DemoCam/defaults --where "exposure.day_obs = 20260502 AND detector IN (0..8:4)"
