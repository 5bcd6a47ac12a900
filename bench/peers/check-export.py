#!/usr/bin/env python3
"""Checks that an exported Hugging Face directory (scripts/export-hf.ts) holds the same model as the
GGUF it came from, as other implementations see it.

Loads DIR with PyPI `transformers` (and, if importable, `mlx_lm`), feeds each case of the reference
fixture (test/fixtures/smollm2-reference.json: prompt token ids, and the greedy tokens transformers
computed from the GGUF itself) and compares the greedy continuation token for token. It also checks
that the exported tokenizer encodes the fixture's prompts to the same ids. Prints one line per
case and exits non-zero on a mismatch beyond the first diverging near-tie.

Usage: python3 bench/peers/check-export.py DIR [--fixture PATH] [--backend transformers|mlx_lm|both]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def near_tie(step: dict, got: int) -> bool:
    """The reference's top-2 logprobs at a step are within 0.05 and we picked the runner-up."""
    top = step["top"]
    return len(top) >= 2 and got == top[1]["token_id"] and top[0]["logprob"] - top[1]["logprob"] < 0.05


def greedy_transformers(model_dir: str):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()

    def run(prompt_ids: list[int], n: int) -> list[int]:
        ids = torch.tensor([prompt_ids])
        out: list[int] = []
        with torch.no_grad():
            past = None
            for _ in range(n):
                r = model(input_ids=ids, past_key_values=past, use_cache=True)
                past = r.past_key_values
                nxt = int(torch.argmax(r.logits[0, -1]))
                out.append(nxt)
                ids = torch.tensor([[nxt]])
        return out

    return run


def greedy_mlx_lm(model_dir: str):
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.models.cache import make_prompt_cache

    model, _ = load(model_dir)

    def run(prompt_ids: list[int], n: int) -> list[int]:
        cache = make_prompt_cache(model)
        ids = mx.array([prompt_ids])
        out: list[int] = []
        for _ in range(n):
            logits = model(ids, cache=cache)
            nxt = int(mx.argmax(logits[0, -1]).item())
            out.append(nxt)
            ids = mx.array([[nxt]])
        return out

    return run


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--fixture", default=str(REPO / "test/fixtures/smollm2-reference.json"))
    ap.add_argument("--backend", choices=["transformers", "mlx_lm", "both"], default="both")
    args = ap.parse_args()

    fixture = json.loads(Path(args.fixture).read_text())
    failures = 0

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.dir)
    for case in fixture["cases"]:
        if case["kind"] == "text":
            ids = tok.encode(case["text"], add_special_tokens=case.get("add_special_tokens", True))
        else:
            ids = tok.apply_chat_template(case["messages"], add_generation_prompt=case.get("add_generation_prompt", True), tokenize=True)
            if not isinstance(ids, list):
                ids = ids["input_ids"]
        same = list(ids) == case["prompt_token_ids"]
        print(f"tokenizer {case['name']}: {'same prompt ids' if same else 'DIFFERENT prompt ids'}")
        failures += 0 if same else 1

    backends = ["transformers", "mlx_lm"] if args.backend == "both" else [args.backend]
    for backend in backends:
        try:
            run = greedy_transformers(args.dir) if backend == "transformers" else greedy_mlx_lm(args.dir)
        except ImportError as err:
            print(f"{backend}: not installed ({err}); skipped")
            continue
        for case in fixture["cases"]:
            want = case["generated_token_ids"]
            got = run(case["prompt_token_ids"], len(want))
            first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
            if first is None:
                print(f"{backend} {case['name']}: {len(want)}/{len(want)} tokens identical")
            elif near_tie(case["steps"][first], got[first]):
                print(f"{backend} {case['name']}: identical for {first} tokens, then a near-tie")
            else:
                print(f"{backend} {case['name']}: DIFFERS at token {first}: {got[first]} vs reference {want[first]}")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
