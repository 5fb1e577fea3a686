#!/usr/bin/env bash
# Run the product on one machine with nothing set: SecantusDB, Milvus Lite server, local Redis,
# SQLite, the filesystem for objects, one Celery worker; the API on 127.0.0.1:8000.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
system_packages
python_env
frontend_build
ensure_redis
export DATA_DIR="${DATA_DIR:-$ROOT/data}"
mkdir -p "$DATA_DIR/logs"
# SECRET_KEY and FIELD_ENCRYPTION_KEYS: random on first start, kept in $DATA_DIR/secrets (mode 0600) and read
# there by the settings from then on (a SECRET_KEY or FIELD_ENCRYPTION_KEYS in the environment wins).
"$PY" -m layra.keyfiles "$DATA_DIR" >/dev/null
# DEBUG stays off (the default); plain http on loopback, so no redirect to https.
export SECURE_SSL_REDIRECT="${SECURE_SSL_REDIRECT:-false}"
export MILVUS_URI="${MILVUS_URI:-http://127.0.0.1:19530}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
# LAYRA_HOST / LAYRA_PORT: another address (a second checkout running beside this one).
exec "$PY" manage.py serve_embedded --host "${LAYRA_HOST:-127.0.0.1}" --port "${LAYRA_PORT:-8000}"
