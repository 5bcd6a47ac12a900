#!/usr/bin/env bash
# Installs everything the server and its tests need on a fresh Debian (or macOS) machine:
# system libraries for node-mlx, the npm packages, and (with --with-clients) the Python and Go
# toolchains' dependencies for the generated clients. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

with_clients=0
for arg in "$@"; do
  case "$arg" in
    --with-clients) with_clients=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$(uname -s)" = Linux ]; then
  # node-mlx's CPU build links LAPACK and BLAS; OpenBLAS is ~6x faster than reference BLAS here.
  # g++ builds our native CPU kernels, and MLX's CPU backend uses it to JIT-compile fused kernels.
  need=()
  for pkg in liblapack3 libopenblas0-pthread g++ python3-pip; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  fi
  # @frost-beta/mlx's install script downloads a binary from GitHub; its tarball already ships
  # build/Release/mlx.node for linux-x64, so install without lifecycle scripts on Linux.
  npm ci --ignore-scripts --no-audit --no-fund
  # esbuild (used by tsx) verifies its platform binary in a postinstall script; run just that one.
  npm rebuild esbuild --no-audit --no-fund >/dev/null
  # Our native CPU kernels (native/cpu-kernels), compiled here with g++ for this machine.
  node native/cpu-kernels/build.mjs
else
  # On macOS node-mlx's install script fetches the Metal build.
  npm ci --no-audit --no-fund
fi

if [ "$with_clients" = 1 ]; then
  scripts/setup-clients.sh
fi
