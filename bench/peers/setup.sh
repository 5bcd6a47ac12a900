#!/usr/bin/env bash
# Installs the peer servers outside the repository, under $PEERS_DIR
# (default ~/.cache/mlx-batch-server-peers):
#   - a Python venv with mlx (CPU build) and mlx-lm, for `mlx_lm.server`;
#   - llama.cpp's `llama-server` and `llama-quantize`, built with cmake from the llama.cpp source
#     vendored in the PyPI sdist of llama-cpp-python (PyPI is reachable where GitHub is not).
# Idempotent: finished steps are skipped. Versions are pinned so runs are comparable.
set -euo pipefail

PEERS_DIR="${PEERS_DIR:-$HOME/.cache/mlx-batch-server-peers}"
MLX_VERSION="${MLX_VERSION:-0.32.4}"
MLX_LM_VERSION="${MLX_LM_VERSION:-0.32.2}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PYTHON="${PYTHON:-python3}"

mkdir -p "$PEERS_DIR/src"

setup_mlx_lm() {
  local venv="$PEERS_DIR/mlx-venv"
  if [[ -x "$venv/bin/mlx_lm.server" ]]; then
    echo "mlx_lm: already installed in $venv"
    return
  fi
  echo "mlx_lm: creating $venv"
  "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet "mlx[cpu]==$MLX_VERSION" "mlx-lm==$MLX_LM_VERSION"
}

setup_llama_cpp() {
  local bin="$PEERS_DIR/llama.cpp/build/bin"
  if [[ -x "$bin/llama-server" && -x "$bin/llama-quantize" ]]; then
    echo "llama.cpp: already built in $bin"
    return
  fi
  local sdist="$PEERS_DIR/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
  if [[ ! -f "$sdist" ]]; then
    "$PYTHON" -m pip download --no-binary :all: --no-deps \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$PEERS_DIR/src"
  fi
  rm -rf "$PEERS_DIR/llama.cpp" "$PEERS_DIR/src/unpacked"
  mkdir -p "$PEERS_DIR/src/unpacked"
  tar -xzf "$sdist" -C "$PEERS_DIR/src/unpacked"
  mv "$PEERS_DIR/src/unpacked/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp" "$PEERS_DIR/llama.cpp"
  rm -rf "$PEERS_DIR/src/unpacked"
  echo "llama.cpp: building llama-server and llama-quantize (takes a while on 2 cores)"
  cmake -S "$PEERS_DIR/llama.cpp" -B "$PEERS_DIR/llama.cpp/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  cmake --build "$PEERS_DIR/llama.cpp/build" --target llama-server llama-quantize -j "$(nproc)"
}

case "${1:-all}" in
  mlx-lm) setup_mlx_lm ;;
  llama-cpp) setup_llama_cpp ;;
  all) setup_llama_cpp; setup_mlx_lm ;;
  *) echo "usage: $0 [all|mlx-lm|llama-cpp]" >&2; exit 2 ;;
esac
