#!/usr/bin/env bash
# Install everything the tests need, start the shared services, run the whole suite.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
system_packages
python_env dev
client_install
frontend_build
ensure_mariadb
ensure_redis
"$VENV/bin/ruff" check .
# Dependencies run one way and no app has an import cycle (pyproject.toml [tool.importlinter]).
"$VENV/bin/lint-imports"
# The tiny random ColQwen2.5 the tests load through from_pretrained (built offline, cached).
exec "$PY" -m pytest "$@"
