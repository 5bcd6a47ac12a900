#!/usr/bin/env bash
# Structured output with curl: a JSON schema (OpenAI's response_format) and a choice (vLLM's guided_choice).
set -euo pipefail
BASE=${OPENAI_BASE_URL:-http://localhost:8080/v1}

curl -sS "$BASE/chat/completions" -H "Content-Type: application/json" -d '{
  "model": "default",
  "messages": [{"role": "user", "content": "Describe a cat as JSON."}],
  "response_format": {"type": "json_schema", "json_schema": {"name": "pet", "schema": {
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 20},
      "age": {"type": "integer", "minimum": 0, "maximum": 30},
      "likes": {"type": "array", "items": {"enum": ["fish", "naps", "boxes"]}, "maxItems": 3}
    },
    "required": ["name", "age", "likes"]}}},
  "max_tokens": 100,
  "temperature": 0
}'
echo

curl -sS "$BASE/chat/completions" -H "Content-Type: application/json" -d '{
  "model": "default",
  "messages": [{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
  "guided_choice": ["yes", "no"],
  "temperature": 0
}'
echo
