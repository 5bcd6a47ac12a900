#!/usr/bin/env bash
# Side-by-side benchmark of this server and its peers on this machine, same weights, same workload:
#   llama-q4_1        llama.cpp's llama-server on the default model's GGUF (Q4_1)
#   llama-f32         llama-server on an F32 GGUF of the same weights (llama-quantize --allow-requantize)
#   mlx-lm-openblas   mlx_lm.server on the f32 export (scripts/export-hf.ts), Debian's OpenBLAS preloaded
#   mlx-lm            mlx_lm.server as pip installs it (its CPU wheel ships reference BLAS)
#   ours              this server (OpenAI REST API), same GGUF (native CPU kernels)
#   ours-mlx          this server with --cpu-kernels mlx
# One at a time: each server is started, measured with bench/bench-client.ts (which waits for a quiet
# machine before every level) and stopped before the next starts. Results: bench/results/bench-peers-*.{json,md,svg}
# and bench/results/peers.md (bench/peers/report.ts).
#
#   bench/peers/run.sh                      everything (setup is skipped when already done)
#   SERVERS="llama-f32 ours" bench/peers/run.sh
# Settings (environment): LEVELS (peers, default 1,8,16), OUR_LEVELS (1,8,16,32), PROMPT_TOKENS (128),
# MAX_TOKENS (128), REQUESTS (2x: two per concurrency slot), SLOW_REQUESTS (1x, for mlx-lm with
# reference BLAS, which runs at a few tok/s), MAX_LOAD (0.5), LOAD_TIMEOUT_MIN (20), MAX_OTHER_CORES
# (0.15: a level during which other processes averaged more CPU is measured again, up to RETRIES (2)
# more times, and the quietest attempt kept), PORT (18231),
# PEERS_DIR (~/.cache/mlx-batch-server-peers), RESULTS (bench/results).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS_DIR="${PEERS_DIR:-$HOME/.cache/mlx-batch-server-peers}"
SERVERS="${SERVERS:-llama-q4_1 llama-f32 mlx-lm-openblas mlx-lm ours}"
LEVELS="${LEVELS:-1,8,16}"
OUR_LEVELS="${OUR_LEVELS:-1,8,16,32}"
PROMPT_TOKENS="${PROMPT_TOKENS:-128}"
MAX_TOKENS="${MAX_TOKENS:-128}"
REQUESTS="${REQUESTS:-2x}"
SLOW_REQUESTS="${SLOW_REQUESTS:-1x}"
MAX_LOAD="${MAX_LOAD:-0.5}"
LOAD_TIMEOUT_MIN="${LOAD_TIMEOUT_MIN:-20}"
MAX_OTHER_CORES="${MAX_OTHER_CORES:-0.15}"
RETRIES="${RETRIES:-2}"
PORT="${PORT:-18231}"
RESULTS="${RESULTS:-$REPO/bench/results}"
LOGS="$PEERS_DIR/logs"
OPENBLAS="${OPENBLAS:-/usr/lib/x86_64-linux-gnu/libopenblas.so.0}"
LLAMA_BIN="$PEERS_DIR/llama.cpp/build/bin"
MLX_VENV="$PEERS_DIR/mlx-venv"

cd "$REPO"
mkdir -p "$LOGS" "$RESULTS" "$PEERS_DIR/models"
log() { echo "peers: $*" >&2; }

"$REPO/bench/peers/setup.sh" all

# The same weights for everyone: the default model's GGUF, an F32 GGUF made from it by llama.cpp,
# and the f32 Hugging Face directory our own loader produces from it.
GGUF="$(node --import tsx scripts/fetch-model.ts)"
NAME="$(basename "$GGUF" .gguf)"
F32_GGUF="$PEERS_DIR/models/${NAME%.*}.F32.gguf"
HF_DIR="$PEERS_DIR/models/${NAME}-f32-hf"
if [[ ! -f "$F32_GGUF" ]]; then
  "$LLAMA_BIN/llama-quantize" --allow-requantize "$GGUF" "$F32_GGUF" F32 > "$LOGS/llama-quantize.log" 2>&1
fi
if [[ ! -f "$HF_DIR/model.safetensors" ]]; then
  node --import tsx scripts/export-hf.ts --model "$GGUF" --out "$HF_DIR"
fi

SERVER_PID=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    # The server leads its own process group (setsid): signal the group, so helpers it spawned stop too.
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
trap stop_server EXIT INT TERM

# Starts a server in the background (its own process group) and waits until `ready_url` answers 200.
start_server() {
  local label="$1" ready_url="$2"
  shift 2
  log "starting $label: $*"
  setsid "$@" > "$LOGS/$label.log" 2>&1 < /dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      log "$label exited while starting; see $LOGS/$label.log"
      tail -20 "$LOGS/$label.log" >&2
      return 1
    fi
    if curl -sf -o /dev/null "$ready_url"; then return 0; fi
    sleep 1
  done
  log "$label did not become ready in 10 minutes"
  return 1
}

run_bench() {
  local label="$1" levels="$2" requests="$3" eos="$4" info="$5" model="$6"
  node --import tsx bench/bench-client.ts --endpoint openai --url "http://127.0.0.1:$PORT" --model "$model" \
    --tokenizer "$GGUF" --sweep "$levels" --requests "$requests" \
    --prompt-tokens "$PROMPT_TOKENS" --max-tokens "$MAX_TOKENS" --eos "$eos" --temperature 0 \
    --max-load "$MAX_LOAD" --load-timeout "$LOAD_TIMEOUT_MIN" \
    --server-pid "$SERVER_PID" --max-other-cores "$MAX_OTHER_CORES" --retries "$RETRIES" \
    --label "$label" --server-info "$info" --out "$RESULTS/bench-peers-$label" --quiet
}

# Prefill speed and warm shared-prefix TTFT, one request at a time (after the sweep, same server).
run_probe() {
  local label="$1" model="$2"
  node --import tsx bench/peers/latency-probe.ts --url "http://127.0.0.1:$PORT" --model "$model" --tokenizer "$GGUF" \
    --out "$RESULTS/latency-peers-$label.json" > /dev/null
}

q() { local s; s="$(printf '%q ' "$@")"; printf '%s' "${s% }"; }

LLAMA_VERSION="llama.cpp from llama-cpp-python $(ls "$PEERS_DIR/src" | sed -n 's/^llama_cpp_python-\(.*\)\.tar\.gz$/\1/p' | head -1) sdist, $("$LLAMA_BIN/llama-server" --version 2>&1 | grep -m1 -i version || true)"
MLX_VERSIONS="$("$MLX_VENV/bin/python" -c 'import importlib.metadata as m; print("mlx", m.version("mlx") + ", mlx-lm", m.version("mlx-lm"))')"
OUR_VERSION="mlx-batch-server $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bin 2>/dev/null || echo ' with uncommitted changes')"

for server in $SERVERS; do
  case "$server" in
    llama-q4_1 | llama-f32)
      model="$GGUF"
      [[ "$server" == llama-f32 ]] && model="$F32_GGUF"
      cmd=("$LLAMA_BIN/llama-server" -m "$model" -t 2 -np 16 -c 32768 -cb --host 127.0.0.1 --port "$PORT" --no-webui)
      start_server "$server" "http://127.0.0.1:$PORT/health" "${cmd[@]}"
      run_bench "$server" "$LEVELS" "$REQUESTS" ignore "$LLAMA_VERSION; \`$(q "${cmd[@]}")\`" "$(basename "$model" .gguf)"
      run_probe "$server" "$(basename "$model" .gguf)"
      ;;
    mlx-lm | mlx-lm-openblas)
      cmd=("$MLX_VENV/bin/mlx_lm.server" --model "$HF_DIR" --host 127.0.0.1 --port "$PORT" --log-level WARNING)
      env_note="reference BLAS from the mlx-cpu wheel"
      requests="$SLOW_REQUESTS"
      if [[ "$server" == mlx-lm-openblas ]]; then
        cmd=(env "LD_PRELOAD=$OPENBLAS" OPENBLAS_NUM_THREADS=2 "${cmd[@]}")
        env_note="Debian OpenBLAS preloaded"
        requests="$REQUESTS"
      fi
      start_server "$server" "http://127.0.0.1:$PORT/health" "${cmd[@]}"
      # mlx_lm.server has no ignore_eos: end-of-generation tokens get a -100 logit bias instead.
      # ("default_model" is the model given with --model; its /v1/models needs a hub cache.)
      run_bench "$server" "$LEVELS" "$requests" bias "$MLX_VERSIONS, $env_note; \`$(q "${cmd[@]}")\`" default_model
      run_probe "$server" default_model
      ;;
    ours | ours-mlx)
      cmd=(node bin/mlx-batch-server.js --model "$GGUF" --host 127.0.0.1 --port "$PORT" --grpc-port "$((PORT + 1))" --log-level warn)
      [[ "$server" == ours-mlx ]] && cmd+=(--cpu-kernels mlx)
      start_server "$server" "http://127.0.0.1:$PORT/health" "${cmd[@]}"
      run_bench "$server" "$OUR_LEVELS" "$REQUESTS" ignore "$OUR_VERSION; \`$(q "${cmd[@]}")\`" "$NAME"
      run_probe "$server" "$NAME"
      ;;
    *)
      log "unknown server '$server' (known: llama-q4_1 llama-f32 mlx-lm-openblas mlx-lm ours ours-mlx)"
      exit 2
      ;;
  esac
  stop_server
done

node --import tsx bench/peers/report.ts --results "$RESULTS" --out "$RESULTS/peers.md"
