#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the test suite.
# Usage: source .ci/start-postgres.sh   (exports QUANTA_TEST_POSTGRES and PG_DATA_DIR)
# Installs Debian's postgresql when missing (needs root, as CI is).
set -euo pipefail

PG_PORT="${PG_PORT:-54329}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "ci: installing Debian's postgresql" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi
PG_BIN="$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")"

PG_DATA_DIR="$(mktemp -d /tmp/quanta-pg.XXXXXX)"
chown postgres:postgres "$PG_DATA_DIR"
runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA_DIR/data" -l "$PG_DATA_DIR/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres quanta_test

export PG_BIN PG_DATA_DIR
export QUANTA_TEST_POSTGRES="postgresql://postgres@127.0.0.1:${PG_PORT}/quanta_test"
echo "ci: PostgreSQL running, QUANTA_TEST_POSTGRES=$QUANTA_TEST_POSTGRES" >&2
