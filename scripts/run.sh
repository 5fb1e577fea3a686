#!/usr/bin/env bash
# Run the product on one machine with nothing set: SecantusDB, Milvus Lite server, local Redis,
# SQLite, the filesystem for objects, one Celery worker; the API on 127.0.0.1:8000.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
system_packages
python_env
ensure_redis
mkdir -p data/logs
export MILVUS_URI="${MILVUS_URI:-http://127.0.0.1:19530}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15}"
exec "$PY" manage.py serve_embedded --host 127.0.0.1 --port 8000
