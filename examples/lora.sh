#!/usr/bin/env bash
# LoRA adapters with curl: load one at run time, see it in /v1/models, generate with it by name, unload it.
set -euo pipefail
BASE=${OPENAI_BASE_URL:-http://localhost:8080/v1}
ADAPTER=${LORA_PATH:-./adapters/sql} # mlx-lm's or PEFT's adapter directory, on the server's disk

curl -sS --fail-with-body "$BASE/load_lora_adapter" -H "Content-Type: application/json" \
  -d "{\"lora_name\": \"sql\", \"lora_path\": \"$ADAPTER\"}"
echo
curl -sS --fail-with-body "$BASE/models"
echo
curl -sS --fail-with-body "$BASE/completions" -H "Content-Type: application/json" \
  -d '{"model": "sql", "prompt": "SELECT name FROM", "max_tokens": 16, "temperature": 0}'
echo
curl -sS --fail-with-body "$BASE/unload_lora_adapter" -H "Content-Type: application/json" -d '{"lora_name": "sql"}'
echo
