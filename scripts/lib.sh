# Shared by run.sh and test.sh: system packages (apt), the venv, MariaDB and Redis.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# LAYRA_VENV: another place for the venv (the tests of this script use a stand-in one).
VENV="${LAYRA_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
APT=(apt-get -o DPkg::Lock::Timeout=300 -y -qq)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # Install missing Debian packages (idempotent: only what is absent).
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> apt install ${missing[*]}"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive as_root "${APT[@]}" install --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

system_packages() {
  # bubblewrap runs code nodes (workflows/SANDBOX.md); util-linux's setpriv drops a root worker to the sandbox uid.
  apt_install pkg-config libmariadb-dev build-essential redis-server mariadb-server \
    libreoffice-core libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui fonts-dejavu-core \
    bubblewrap util-linux
  # The browser tests (tests/test_web_app*.py) drive the system Chromium; Playwright's own browser download is not used.
  apt_install chromium chromium-driver
}

python_env() {
  # The product's packages (requirements-ml.txt, requirements.txt, colpali-engine); with "dev", the test tools of
  # requirements-dev.txt too (`make test`; `make run` and the image never install them). Each set has its stamp in
  # the venv: the hash of the files it came from (and of this script), so a change to any of them installs again.
  local product dev
  product="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-ml.txt" "$ROOT/scripts/lib.sh" | sha256sum | cut -d' ' -f1)"
  [ -x "$PY" ] || python3 -m venv "$VENV"
  if [ "$(cat "$VENV/.requirements.sha" 2>/dev/null)" != "$product" ]; then
    echo "==> installing the product's Python packages"
    "$PY" -m pip install -q -U pip wheel
    # torch first, from the CPU wheel pinned in requirements-ml.txt, so nothing pulls a CUDA build.
    "$PY" -m pip install -q -r "$ROOT/requirements-ml.txt"
    "$PY" -m pip install -q -r "$ROOT/requirements.txt"
    # colpali-engine's own pins would replace torch and transformers: take it without deps.
    "$PY" -m pip install -q --no-deps colpali-engine==0.3.18
    echo "$product" > "$VENV/.requirements.sha"
  fi
  [ "${1:-}" = dev ] || return 0
  # The product's hash is part of this one: new product pins install the test tools again against them.
  dev="$( (echo "$product"; cat "$ROOT/requirements-dev.txt") | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$VENV/.requirements-dev.sha" 2>/dev/null)" != "$dev" ]; then
    echo "==> installing the test tools"
    "$PY" -m pip install -q -r "$ROOT/requirements-dev.txt"
    echo "$dev" > "$VENV/.requirements-dev.sha"
  fi
}

client_install() {
  # The Python client and its `layra` command (clients/python) into the venv, for the tests that run it
  # (tests/test_cli.py). A plain install, not an editable one: a stamp of its sources installs it again when any of
  # them changes.
  local dir="$ROOT/clients/python" want
  want="$(cd "$dir" && cat pyproject.toml $(find src -type f \( -name '*.py' -o -name py.typed \) | sort) \
    | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$VENV/.client.sha" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the Python client (clients/python)"
    "$PY" -m pip install -q "$dir"
    echo "$want" > "$VENV/.client.sha"
  fi
}

frontend_build() {
  # The web app (frontend/): npm ci from the lockfile when it changed, a Vite build when any source changed.
  # Idempotent: a stamp of the lockfile and of the sources skips both when nothing changed.
  local dir="$ROOT/frontend" want
  command -v npm >/dev/null || { echo "npm (Node.js 20+) is needed to build the web app"; exit 1; }
  want="$(cd "$dir" && cat package-lock.json vite.config.js index.html $(find src public -type f 2>/dev/null | sort) \
    | sha256sum | cut -d' ' -f1)"
  if [ ! -d "$dir/node_modules" ] || [ "$(cat "$dir/node_modules/.lock.sha" 2>/dev/null)" != "$(sha256sum < "$dir/package-lock.json")" ]; then
    echo "==> installing the web app's packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    sha256sum < "$dir/package-lock.json" > "$dir/node_modules/.lock.sha"
  fi
  if [ ! -f "$dir/dist/index.html" ] || [ "$(cat "$dir/.build.sha" 2>/dev/null)" != "$want" ]; then
    echo "==> building the web app"
    (cd "$dir" && npm run --silent build -- --logLevel warn)
    echo "$want" > "$dir/.build.sha"
  fi
}

wait_port() { # host port seconds
  for _ in $(seq 1 "$3"); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 1
  done
  return 1
}

ensure_mariadb() {
  if ! wait_port 127.0.0.1 3306 1; then
    echo "==> starting MariaDB"
    as_root mkdir -p /run/mysqld && as_root chown mysql:mysql /run/mysqld 2>/dev/null || true
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    wait_port 127.0.0.1 3306 60 || { echo "MariaDB did not start"; exit 1; }
  fi
}

ensure_redis() {
  if ! wait_port 127.0.0.1 6379 1; then
    echo "==> starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/layra.log
    wait_port 127.0.0.1 6379 30 || { echo "Redis did not start"; exit 1; }
  fi
}
