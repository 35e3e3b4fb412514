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
#   MLFLOW_BASIC_AUTH=1           turn on MLflow's basic auth (the `team` extra installs mlflow[auth]); users and
#                                 passwords are managed in the UI; clients set MLFLOW_TRACKING_USERNAME/PASSWORD.
#                                 Writes $MLFLOW_STATE_DIR/auth.ini unless MLFLOW_AUTH_CONFIG_PATH names your own:
#     MLFLOW_AUTH_ADMIN_PASSWORD      first start only: the `admin` user's password (MLflow ships none)
#     MLFLOW_AUTH_DATABASE_URI        users and permissions (default sqlite:///$MLFLOW_STATE_DIR/basic_auth.db)
#     MLFLOW_AUTH_DEFAULT_PERMISSION  default EDIT: everyone writes runs and traces to shared experiments and calls
#                                     every gateway endpoint (READ cannot call; USE cannot write traces)
#     MLFLOW_AUTH_CACHE_TTL           default 60 s: checks a password once a minute, not on every call
#     MLFLOW_FLASK_SERVER_SECRET_KEY  CSRF key; default: made once and kept in $MLFLOW_STATE_DIR/flask-secret
#   MLFLOW_STATE_DIR              the server's own files (default ./mlflow-state)
# The team gateway (MLflow's AI Gateway, see mlflow/README.md):
#   MLFLOW_CRYPTO_KEK_PASSPHRASE  encrypts the provider keys stored in the database; keep it secret and stable
#                                 (without it MLflow uses a built-in default and warns)
#   MLFLOW_GATEWAY_ALLOW_INTERNAL=1  let endpoints point at http:// and private/loopback hosts (vLLM, Ollama,
#                                 transformers serve inside your network); sets the two MLFLOW_GATEWAY_API_BASE_* vars
#   MLFLOW_GATEWAY_PRICES         a team.yaml whose `prices:` price self-hosted models; served to the gateway as a
#                                 litellm cost map (without it their calls cost $0 and budgets never trip)
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

state="${MLFLOW_STATE_DIR:-$PWD/mlflow-state}"
mkdir -p "$state"

args=(server --backend-store-uri "$store" --artifacts-destination "$artifacts" --serve-artifacts
      --host "$host" --port "$port" --workers "$workers")
if [[ "${MLFLOW_BASIC_AUTH:-0}" == "1" ]]; then
  args+=(--app-name basic-auth)
  if ! "$python" -c "import flask_wtf" 2>/dev/null; then
    echo "start-server.sh: basic auth needs Flask-WTF: pip install -c constraints.txt -e '.[team]'" >&2; exit 2
  fi
  if [[ -z "${MLFLOW_AUTH_CONFIG_PATH:-}" ]]; then
    export MLFLOW_AUTH_CONFIG_PATH="$state/auth.ini"
    cat >"$MLFLOW_AUTH_CONFIG_PATH" <<INI
[mlflow]
default_permission = ${MLFLOW_AUTH_DEFAULT_PERMISSION:-EDIT}
database_uri = ${MLFLOW_AUTH_DATABASE_URI:-sqlite:///$state/basic_auth.db}
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = ${MLFLOW_AUTH_CACHE_TTL:-60}
INI
    chmod 600 "$MLFLOW_AUTH_CONFIG_PATH"
  fi
  if [[ -z "${MLFLOW_FLASK_SERVER_SECRET_KEY:-}" ]]; then
    [[ -s "$state/flask-secret" ]] || (umask 077; "$python" -c "import secrets; print(secrets.token_urlsafe(32))" >"$state/flask-secret")
    export MLFLOW_FLASK_SERVER_SECRET_KEY="$(cat "$state/flask-secret")"
  fi
fi
if [[ -z "${MLFLOW_CRYPTO_KEK_PASSPHRASE:-}" ]]; then
  echo "start-server.sh: warning: MLFLOW_CRYPTO_KEK_PASSPHRASE is not set: gateway keys are encrypted with MLflow's default passphrase" >&2
fi
if [[ "${MLFLOW_GATEWAY_ALLOW_INTERNAL:-0}" == "1" ]]; then
  export MLFLOW_GATEWAY_API_BASE_ALLOWED_SCHEMES=http,https
  export MLFLOW_GATEWAY_API_BASE_ALLOW_PRIVATE_IPS=true
fi

shown="$(printf '%s' "$store" | sed -E 's#(://[^/:@]+:)[^@/]+@#\1***@#')"
echo "MLflow server: http://$host:$port  store: $shown  artifacts: $artifacts"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"
if [[ -z "${MLFLOW_GATEWAY_PRICES:-}" ]]; then
  exec "$python" -m mlflow "${args[@]}"
fi

# Prices for self-hosted models: litellm's bundled cost map plus the team file's `prices:`, served on a loopback
# port for the life of the server (litellm reads a cost map from an http URL only).
"$python" -m workbench.tracking.price_map "$MLFLOW_GATEWAY_PRICES" "$state/costmap" >/dev/null
map_port="$("$python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
"$python" -m http.server "$map_port" --bind 127.0.0.1 --directory "$state/costmap" >/dev/null 2>&1 &
map_pid=$!
export LITELLM_MODEL_COST_MAP_URL="http://127.0.0.1:$map_port/cost_map.json"
unset LITELLM_LOCAL_MODEL_COST_MAP LITELLM_OFFLINE_MODE  # either would force litellm's bundled map
echo "gateway prices: $MLFLOW_GATEWAY_PRICES (cost map on 127.0.0.1:$map_port)"
"$python" -m mlflow "${args[@]}" &
server_pid=$!
trap 'kill "$server_pid" "$map_pid" 2>/dev/null; wait "$server_pid"' INT TERM
trap 'kill "$map_pid" 2>/dev/null' EXIT
wait "$server_pid"
