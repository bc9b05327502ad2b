#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests; prints the URL to use.
# Usage: eval "$(bash .ci/postgres.sh)"   -> exports MLFUNNEL_TEST_POSTGRES_URL
set -euo pipefail
PORT="${MLFUNNEL_PG_PORT:-54329}"
DATA="${MLFUNNEL_PG_DATA:-/tmp/mlfunnel-pg}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
  else
    echo "postgresql is not installed and this is not root" >&2; exit 1
  fi
  BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
RUNAS=()
if [ "$(id -u)" = 0 ]; then RUNAS=(su postgres -s /bin/sh -c); fi
run() { if [ ${#RUNAS[@]} -gt 0 ]; then "${RUNAS[@]}" "$*"; else sh -c "$*"; fi; }
if ! "$BIN/pg_isready" -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  rm -rf "$DATA"; mkdir -p "$DATA"
  if [ "$(id -u)" = 0 ]; then chown postgres "$DATA"; fi
  run "$BIN/initdb -D $DATA -U postgres --auth=trust -E UTF8" >/dev/null
  run "$BIN/pg_ctl -D $DATA -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $DATA/log -w start" >/dev/null
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "create database mlfunnel" >/dev/null
  "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc "alter user postgres password 's3cret-pw'" >/dev/null
fi
echo "export MLFUNNEL_TEST_POSTGRES_URL=postgresql://postgres:s3cret-pw@127.0.0.1:$PORT/mlfunnel"
