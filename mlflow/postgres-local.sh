#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for MLflow on this machine (trying the team setup, the integration test).
#
#   mlflow/postgres-local.sh start DIR [PORT]   # initdb DIR (once), start on 127.0.0.1:PORT, create db "mlflow"
#   mlflow/postgres-local.sh stop DIR
#
# Debian's PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (runuser);
# DIR must then be writable by it. Connections are loopback-only with trust auth: for trying things out,
# never for a shared server (see mlflow/README.md for a real database and role).
set -euo pipefail

action="${1:-}"; dir="${2:-}"; port="${3:-5432}"
if [[ -z "$action" || -z "$dir" ]]; then
  echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2
fi

bin=""
for candidate in /usr/lib/postgresql/*/bin; do
  [[ -x "$candidate/initdb" ]] && bin="$candidate"
done
if [[ -z "$bin" ]]; then
  bin="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
fi
if [[ ! -x "$bin/initdb" ]]; then
  echo "postgres-local.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3
fi

as_pg() {
  if [[ "$(id -u)" == "0" ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [[ "$(id -u)" == "0" ]]; then chown postgres: "$dir"; fi
    if [[ ! -f "$dir/PG_VERSION" ]]; then
      as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 >"$dir.initdb.log" 2>&1 || {
        cat "$dir.initdb.log" >&2; exit 4; }
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
    if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mlflow'" | grep -q 1; then
      as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE mlflow" >/dev/null
    fi
    echo "postgresql+psycopg2://postgres@127.0.0.1:$port/mlflow"
    ;;
  stop)
    if [[ -f "$dir/postmaster.pid" ]]; then
      as_pg "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >/dev/null
    fi
    ;;
  *)
    echo "usage: $0 start DIR [PORT] | stop DIR" >&2; exit 2 ;;
esac
