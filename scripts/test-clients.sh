#!/usr/bin/env bash
# Runs the Python and Go client tests: type checks and static checks, the contract tests of the
# generated code, and the live tests, which start the test server (test/helpers/test-server.ts,
# the engine and gRPC service on a tiny random-weight model) themselves and stop it when done.
# Needs `npm ci` and scripts/setup-clients.sh. Runs both languages, then exits non-zero if any
# step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ] || ! command -v go >/dev/null 2>&1; then
  echo "test-clients.sh: missing .venv or go; run scripts/setup-clients.sh" >&2
  exit 1
fi

failed=()
step() { # name, command...
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then
    failed+=("$name")
  fi
}

python=$PWD/.venv/bin/python
step "python: mypy" bash -c "cd clients/python && '$python' -m mypy"
step "python: pytest" bash -c "cd clients/python && '$python' -m pytest -q"
step "go: vet" bash -c "cd clients/go && go vet ./..."
step "go: test" bash -c "cd clients/go && go test -count=1 ./..."

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-clients.sh: failed: ${failed[*]}" >&2
  exit 1
fi
echo "test-clients.sh: Python and Go client tests passed"
