#!/usr/bin/env bash
# The API load benchmark by hand (scripts/bench_api.py says what it starts): install, start MariaDB, run it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
system_packages
python_env dev  # the private stack it starts uses moto (a test tool)
ensure_mariadb
exec "$PY" scripts/bench_api.py "$@"
