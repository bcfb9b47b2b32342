#!/usr/bin/env bash
# Installs everything and runs ruff, mypy, the wheel check and the whole test suite.
# Usage: bash tests/run.sh [pytest arguments] (with arguments, only ruff, mypy and that pytest
# run). With CI set, tests needing Redis, PostgreSQL, Node, a browser or nginx fail instead of
# skipping, and the pure tests run on the other Python and Django versions too (noxfile.py).
# The whole suite runs as two pytest processes at once: the few tests that mostly wait
# (marked wall_clock) beside all the others.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11+ is required (set PYTHON=...)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

command -v npm >/dev/null || { echo "Node.js 20+ with npm is required" >&2; exit 1; }
(cd tests && npm ci --no-audit --no-fund --loglevel=error)
if [ -f example_project/package.json ]; then
  (cd example_project && npm ci --no-audit --no-fund --loglevel=error)
fi

# Browser tests drive Debian's chromium (never a downloaded browser build).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed: browser tests will skip (fail in CI)"
  fi
fi

# The deployment tests (tests/deploy) run Debian's nginx in the foreground, never as a service.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's nginx for the deployment tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  else
    echo "nginx is not installed: the nginx tests will skip (fail in CI)"
  fi
fi

# A throwaway Redis on a free port when none answers at REDIS_URL (default 127.0.0.1:6379).
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
redis_pid=""
side_pid=""
cleanup() {
  # The side pytest leads a process group of its own, with the servers it started: an
  # interrupted run stops them all, not the pytest alone.
  [ -z "$side_pid" ] || kill -TERM -- "-$side_pid" 2>/dev/null || kill "$side_pid" 2>/dev/null || true
  [ -z "$redis_pid" ] || kill "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT
if ! .venv/bin/python -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2).ping()' 2>/dev/null; then
  if command -v redis-server >/dev/null; then
    port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
    redis_pid=$!
    export REDIS_URL="redis://127.0.0.1:$port/0"
    for _ in $(seq 50); do
      .venv/bin/python -c 'import os, redis; redis.Redis.from_url(os.environ["REDIS_URL"]).ping()' 2>/dev/null && break
      sleep 0.1
    done
    echo "started a throwaway redis-server at $REDIS_URL"
  else
    echo "no Redis answers at $REDIS_URL and redis-server is not installed: Redis tests will skip (fail in CI)"
  fi
fi

echo "== ruff"
.venv/bin/ruff format --check .
.venv/bin/ruff check .
echo "== mypy"
PYTHONPATH=.:example_project .venv/bin/mypy
if [ "$#" -eq 0 ]; then
  echo "== wheel: the sdist and wheel, installed into a clean venv"
  .venv/bin/python .ci/wheel_check.py
fi
echo "== docs site"
# Strict: a broken link or anchor, or an API reference to nothing, fails the build.
docs_site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$docs_site"
rm -rf "$docs_site"
# The exit status a pytest run stands for: its own, but 1 for 5 (no tests collected), which
# is a failure too.
pytest_status() {
  if [ "$1" -eq 5 ]; then
    echo "pytest collected no tests ($2): that is a failure" >&2
    echo 1
  else
    echo "$1"
  fi
}

echo "== pytest"
if [ "$#" -gt 0 ]; then
  set +e
  .venv/bin/python -m pytest "$@"
  status=$?
  set -e
  status=$(pytest_status "$status" "$*")
  [ "$status" -eq 0 ] || exit "$status"
else
  # The tests that mostly wait (marked wall_clock: connections kept for 100 s) run in a pytest
  # process of their own, beside the rest, rather than adding their minutes to it. They start
  # their own servers on free ports; the process gets its own temporary directory and run id
  # (the names of its PostgreSQL databases).
  side_log=$(mktemp)
  side_tmp=$(mktemp -d)
  # setsid (util-linux): a process group of its own. A background job of this script is not a
  # group leader, so setsid does not fork, and $! is its pid and the group's id. Without
  # setsid (macOS), cleanup stops the pytest alone.
  own_group=$(command -v setsid || true)
  CSIO_RUN_ID="wallclock$$" $own_group .venv/bin/python -m pytest -m wall_clock \
    -p no:cacheprovider --basetemp "$side_tmp" >"$side_log" 2>&1 &
  side_pid=$!
  set +e
  .venv/bin/python -m pytest -m "not wall_clock"
  status=$?
  wait "$side_pid"
  side_status=$?
  set -e
  side_pid=""
  echo "== pytest -m wall_clock (run beside the rest)"
  cat "$side_log"
  rm -rf "$side_log" "$side_tmp"
  status=$(pytest_status "$status" "-m 'not wall_clock'")
  side_status=$(pytest_status "$side_status" "-m wall_clock")
  [ "$status" -eq 0 ] || exit "$status"
  [ "$side_status" -eq 0 ] || exit "$side_status"
fi

if [ "$#" -eq 0 ] && [ -n "${CI:-}" ]; then
  echo "== nox: the pure tests on the other Python and Django versions"
  # pyenv's interpreters, where nox looks for them (python3.1x on PATH); nox fails, in CI,
  # on a version it cannot find.
  for version in 3.11 3.12 3.13; do
    for bin in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin; do
      if [ -x "$bin/python$version" ]; then PATH="$bin:$PATH"; fi
    done
  done
  .venv/bin/nox --non-interactive --error-on-missing-interpreters -s fast
fi
