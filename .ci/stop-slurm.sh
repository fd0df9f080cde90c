#!/usr/bin/env bash
# Stop what .ci/start-slurm.sh started: cancel queued jobs, then stop slurmd, slurmctld and munged,
# each only by the PID recorded in $SLURM_CI_DIR/started/ and only while it is still that program.
set -uo pipefail
STARTED=${SLURM_CI_DIR:-/var/tmp/slurm-ci}/started

running() { [ -r "/proc/$1/stat" ] && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }

stop() {  # NAME BINARY
    local file=$STARTED/$1.pid pid
    [ -s "$file" ] || return 0
    pid=$(cat "$file")
    rm -f "$file"
    running "$pid" || return 0
    # Debian installs the daemons as alternatives (slurmd -> slurmd-wlm): compare resolved paths.
    [ "$(readlink -f "/proc/$pid/exe")" = "$(readlink -f "$2")" ] || return 0
    kill -TERM "$pid"
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid"
    echo "stopped $1 (pid $pid)"
}

if [ -s "$STARTED/slurmctld.pid" ] && running "$(cat "$STARTED/slurmctld.pid")"; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
fi
stop slurmd /usr/sbin/slurmd
stop slurmctld /usr/sbin/slurmctld
stop munged /usr/sbin/munged
