#!/usr/bin/env bash
# Start a shared MLflow tracking server on a PostgreSQL backend store, for a team.
#
#   MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://mlflow:PASSWORD@db-host:5432/mlflow \
#   MLFLOW_ARTIFACTS_DESTINATION=/srv/mlflow/artifacts \
#   mlflow/start-server.sh
#
# Settings (environment variables):
#   MLFLOW_BACKEND_STORE_URI      required; postgresql+psycopg2://... (driver psycopg2-binary, in the `team` extra)
#   MLFLOW_ARTIFACTS_DESTINATION  where artifacts are kept (default: ./mlflow-artifacts); the server proxies them
#   MLFLOW_HOST                   address to bind (default 127.0.0.1: loopback only; set 0.0.0.0 on purpose)
#   MLFLOW_PORT                   port (default 5000)
#   MLFLOW_WORKERS                server workers (default 1: keeps memory down)
#   MLFLOW_BASIC_AUTH=1           turn on MLflow's basic auth (needs `pip install mlflow[auth]`; users and
#                                 passwords are managed in the UI; clients set MLFLOW_TRACKING_USERNAME/PASSWORD)
#   PYTHON                        interpreter with mlflow installed (default: .venv/bin/python, else python3)
#
# The store URI is never printed with its password.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi

store="${MLFLOW_BACKEND_STORE_URI:-}"
if [[ -z "$store" ]]; then
  echo "start-server.sh: set MLFLOW_BACKEND_STORE_URI, e.g. postgresql+psycopg2://mlflow:PASSWORD@127.0.0.1:5432/mlflow" >&2
  exit 2
fi
case "$store" in
  postgresql://*|postgresql+psycopg2://*) ;;
  *) echo "start-server.sh: MLFLOW_BACKEND_STORE_URI must be a postgresql:// URI (got scheme '${store%%:*}')" >&2; exit 2 ;;
esac

artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$PWD/mlflow-artifacts}"
host="${MLFLOW_HOST:-127.0.0.1}"
port="${MLFLOW_PORT:-5000}"
workers="${MLFLOW_WORKERS:-1}"
mkdir -p "$artifacts"

args=(server --backend-store-uri "$store" --artifacts-destination "$artifacts" --serve-artifacts
      --host "$host" --port "$port" --workers "$workers")
if [[ "${MLFLOW_BASIC_AUTH:-0}" == "1" ]]; then
  args+=(--app-name basic-auth)
fi

shown="$(printf '%s' "$store" | sed -E 's#(://[^/:@]+:)[^@/]+@#\1***@#')"
echo "MLflow server: http://$host:$port  store: $shown  artifacts: $artifacts"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"
exec "$python" -m mlflow "${args[@]}"
