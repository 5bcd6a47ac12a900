#!/usr/bin/env bash
# Installs what the Python and Go clients and the protobuf code generation need: a Python venv
# in .venv/ with the pinned packages of clients/python/requirements-dev.txt, the Go client's
# modules, and the pinned Go protoc plugins (and grpcurl and grpc-health-probe, for calling the server by reflection)
# in .tools/bin/. Safe to run again: what is already there at the pinned version is kept.
# Called by `scripts/setup.sh --with-clients`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned tool versions. protoc-gen-go must not be newer than the google.golang.org/protobuf
# version in clients/go/go.mod (generated code requires a runtime at least as new).
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
GRPCURL_VERSION=v1.9.4
HEALTH_PROBE_VERSION=v0.4.62

tools_bin="$PWD/.tools/bin"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# --- Python: a venv with grpcio, grpcio-tools (protoc and the Python plugins), protobuf, pytest.
if [ ! -x .venv/bin/python ]; then
  rm -rf .venv
  if ! python3 -m venv .venv 2>/dev/null; then
    # Debian ships venv (with ensurepip) apart from python3 itself.
    rm -rf .venv
    apt_install python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r clients/python/requirements-dev.txt
# The OpenAI SDK tests of the REST adapter (test/python).
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r test/python/requirements.txt

# --- Go: the client's modules and the protoc plugins.
if ! command -v go >/dev/null 2>&1; then
  apt_install golang-go
fi
# Go 1.21+ fetches the toolchain clients/go/go.mod asks for through the module proxy by itself.
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${go_minor:-0}" -lt 21 ]; then
  echo "setup-clients.sh: Go $(go env GOVERSION) is too old; install Go 1.21 or newer" >&2
  exit 1
fi
(cd clients/go && go mod download)

# Prints the version a Go binary was built from its module at, or nothing.
built_version() { [ -x "$1" ] && go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3; exit }'; }
go_install() { # binary, package, version
  if [ "$(built_version "$tools_bin/$1")" != "$3" ]; then
    GOBIN="$tools_bin" go install "$2@$3"
  fi
}
mkdir -p "$tools_bin"
go_install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
go_install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
go_install grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION"
go_install grpc-health-probe github.com/grpc-ecosystem/grpc-health-probe "$HEALTH_PROBE_VERSION"

echo "clients ready: Python in .venv/, Go plugins, grpcurl and grpc-health-probe in .tools/bin/"
