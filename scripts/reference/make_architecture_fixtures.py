#!/usr/bin/env python3
"""Writes tiny random-weight checkpoints of the architectures the engine runs, and what PyTorch
`transformers` computes for them: the reference test/architecture-reference.test.ts holds both CPU
paths to.

For each family (LlamaForCausalLM (Llama 3-style), Qwen2ForCausalLM, Qwen3ForCausalLM,
MistralForCausalLM, Phi3ForCausalLM (twice: Phi-3 and Phi-4-mini-style), Gemma2ForCausalLM,
Gemma3ForCausalLM) it writes test/fixtures/architectures/<name>/
with config.json and model.safetensors (float32, as save_pretrained writes them; the test adds the
tiny byte-level tokenizer of test/helpers/tiny-model.ts, whose 260 ids the vocabulary matches), and
reference.json: for a few prompts (token ids) the greedily generated ids (KV cache, no early stop)
and, at every step, the top-5 (token id, logprob) of log_softmax of the float32 logits.

Weights are drawn with the scales of a trained model (unit-scale embeddings, 1/sqrt(fan-in)
projections, norms near 1) rather than transformers' 0.02 init, so activations neither vanish nor
explode and greedy choices are not near-ties; the script refuses a seed whose greedy runs have a
top-2 logprob gap below MIN_GAP.

The llama fixture has Llama 3.1's RoPE scaling (rope_type llama3, factor 8, low/high_freq_factor
1/4) with original_max_position_embeddings 32 rather than 8192, so that on 16 head dimensions it
leaves one rotated pair alone, smooths one and divides six by the factor. The qwen2 fixture has
Qwen2's q/k/v biases (drawn like the other biases below) and tied embeddings.

The Gemma fixtures set sliding_window to 8, below every prompt's length, so their local layers
really attend to a window.

The phi4mini fixture is a Phi3ForCausalLM as Phi-4-mini is configured: partial_rotary_factor 0.75
(12 of 16 head dimensions rotated) and LongRoPE scaling (short/long factors per rotated pair,
original_max_position_embeddings 64 of 256, so an attention factor of sqrt(1 + ln 4 / ln 64)). The
shared prompts plus their new tokens stay within the original 64 positions, where transformers
rotates with the short factors; one more prompt is longer than 64 tokens, so transformers rotates
it and its continuation with the long factors (it picks them by the current sequence length). No
case crosses 64 during generation: there transformers switches factors midway through a sequence,
which the engine does not (it picks one set per request).

Usage (from the repository root, in a virtualenv with torch, transformers, safetensors, numpy):
    python scripts/reference/make_architecture_fixtures.py [--out test/fixtures/architectures] [--only gemma2 ...]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import torch
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Phi3Config,
    Phi3ForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NEW_TOKENS = 16
TOP_K = 5
LOGPROB_DECIMALS = 6
MIN_GAP = 0.02
GEMMA2_SEED = 20
GEMMA3_SEED = 20
PHI4MINI_ORIGINAL = 64
LLAMA_SEED = 6
QWEN2_SEED = 4

# test/helpers/tiny-model.ts: ids 0-255 are bytes, then <|bos|> 256, <|eos|> 257, <|im_start|> 258, <|im_end|> 259.
BOS, IM_START, IM_END = 256, 258, 259
VOCAB = 260


def text_ids(text: str) -> list[int]:
    return list(text.encode("utf-8"))


PROMPTS = [
    ("raw-bos", [BOS] + text_ids("The capital of France is")),
    ("raw-code", text_ids("def fib(n):\n    return")),
    ("chat", [IM_START] + text_ids("user\nName a colour.") + [IM_END] + text_ids("\n") + [IM_START] + text_ids("assistant\n")),
]

# Longer than phi4mini's original 64 positions: transformers rotates it with the long factors.
PHI4MINI_LONG_PROMPT = (
    "raw-long",
    [BOS] + text_ids("Once upon a time, in a small village by the sea, there lived an old fisherman who"),
)

SHARED = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=512,
    rms_norm_eps=1e-6,
    hidden_act="silu",
    bos_token_id=BOS,
    eos_token_id=IM_END,
)

# Gemma: GeGLU (gelu, tanh approximation), norms computing x * (1 + w), sandwich norms, embeddings
# scaled by sqrt(hidden_size), attention scaled by query_pre_attn_scalar^-0.5, tied embeddings.
GEMMA = dict(
    {k: v for k, v in SHARED.items() if k != "hidden_act"},
    num_hidden_layers=4,
    head_dim=16,
    hidden_activation="gelu_pytorch_tanh",
    query_pre_attn_scalar=24,
    sliding_window=8,
    tie_word_embeddings=True,
    pad_token_id=None,
)

FAMILIES = {
    # Llama 3.x RoPE scaling with original_max_position_embeddings 32: of the 8 rotated pairs
    # (wavelengths 2*pi*10000^(i/8)), pair 0 (6.3 < 32/4) keeps its frequency, pair 1 (20) is smoothed
    # between the two, pairs 2-7 (> 32/1) are divided by the factor.
    "llama": (
        LlamaForCausalLM,
        LlamaConfig(**SHARED, rope_parameters={"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
                                               "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 32},
                    tie_word_embeddings=False, attention_bias=False, mlp_bias=False),
        LLAMA_SEED,
    ),
    # q/k/v projections with biases (always, in Qwen2); tied embeddings.
    "qwen2": (
        Qwen2ForCausalLM,
        Qwen2Config(**SHARED, rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False),
        QWEN2_SEED,
    ),
    # head_dim 32 with 4 heads: q is wider than the hidden size, as in real Qwen3 models; tied embeddings.
    "qwen3": (
        Qwen3ForCausalLM,
        Qwen3Config(**SHARED, head_dim=32, rope_theta=1000000.0, tie_word_embeddings=True, attention_bias=False,
                    use_sliding_window=False),
        1,
    ),
    # sliding_window below max_position_embeddings: the engine serves at most the window.
    "mistral": (
        MistralForCausalLM,
        MistralConfig(**SHARED, rope_theta=10000.0, sliding_window=128, tie_word_embeddings=False),
        2,
    ),
    # q|k|v and gate|up stored fused (qkv_proj, gate_up_proj); pad_token_id must fit the vocabulary.
    "phi3": (
        Phi3ForCausalLM,
        Phi3Config(**SHARED, rope_theta=10000.0, sliding_window=None, pad_token_id=None, tie_word_embeddings=False),
        3,
    ),
    # Phi-4-mini's RoPE: a partial rotary embedding and LongRoPE (see the docstring).
    "phi4mini": (
        Phi3ForCausalLM,
        Phi3Config(**{**SHARED, "max_position_embeddings": 256}, original_max_position_embeddings=PHI4MINI_ORIGINAL,
                   partial_rotary_factor=0.75, rope_theta=10000.0,
                   rope_scaling={"type": "longrope",
                                 "short_factor": [1.0, 1.25, 1.5, 2.0, 3.0, 5.0],
                                 "long_factor": [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]},
                   sliding_window=None, pad_token_id=None, tie_word_embeddings=False),
        11,
    ),
    # Even layers local (window 8), odd ones global; soft-capped attention and final logits (caps
    # low enough to bite on these weights).
    "gemma2": (
        Gemma2ForCausalLM,
        Gemma2Config(**GEMMA, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                     attn_logit_softcapping=10.0, final_logit_softcapping=8.0),
        GEMMA2_SEED,
    ),
    # q/k norms; local layers rotate with rope_local_base_freq, the global one with rope_theta and
    # linear scaling.
    "gemma3": (
        Gemma3ForCausalLM,
        Gemma3TextConfig(**GEMMA, layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
                         rope_parameters={
                             "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0},
                             "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         }),
        GEMMA3_SEED,
    ),
}


@torch.no_grad()
def init_weights(model: torch.nn.Module, seed: int, tied: bool) -> None:
    gen = torch.Generator().manual_seed(seed)
    # Gemma's norms multiply by (1 + w): weights near 0 are norms near 1. Its embeddings are scaled
    # up by sqrt(hidden_size) on the way in, so they start smaller still, and the final norm (x6)
    # spreads the logits of the tied LM head instead.
    gemma = model.config.model_type.startswith("gemma")
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            center = (5.0 if name == "model.norm.weight" else 0.0) if gemma else 1.0
            p.copy_(center + 0.1 * torch.randn(p.shape, generator=gen))
        elif name == "model.embed_tokens.weight":
            # Tied: small embeddings and strong layers, or every position would predict its own token.
            p.copy_((0.03 if gemma else 0.3 if tied else 1.0) * torch.randn(p.shape, generator=gen))
        elif name.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        else:
            # lm_head a little hotter than 1/sqrt(fan-in), so that logits are spread out.
            boost = 3.0 if name == "lm_head.weight" else 2.0 if tied and name.endswith(("o_proj.weight", "down_proj.weight")) else 1.0
            scale = boost / math.sqrt(p.shape[1])
            p.copy_(scale * torch.randn(p.shape, generator=gen))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test" / "fixtures" / "architectures")
    parser.add_argument("--only", nargs="*", choices=list(FAMILIES), help="write these families only")
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    for name, (cls, config, seed) in FAMILIES.items():
        if args.only and name not in args.only:
            continue
        model = cls(config).to(torch.float32)
        init_weights(model, seed, config.tie_word_embeddings)
        if config.tie_word_embeddings:
            model.tie_weights()
        model.eval()
        cases = []
        for case, ids in PROMPTS + ([PHI4MINI_LONG_PROMPT] if name == "phi4mini" else []):
            if name == "phi4mini" and len(ids) <= PHI4MINI_ORIGINAL < len(ids) + NEW_TOKENS:
                sys.exit(f"{name} {case}: {len(ids)} + {NEW_TOKENS} tokens cross the original {PHI4MINI_ORIGINAL} positions")
            steps = greedy_steps(model, ids)
            gap = min(s["top"][0]["logprob"] - s["top"][1]["logprob"] for s in steps)
            if gap < MIN_GAP:
                sys.exit(f"{name} {case}: greedy top-2 gap {gap} < {MIN_GAP}; pick another seed")
            cases.append({
                "name": case,
                "prompt_token_ids": ids,
                "generated_token_ids": [s["token_id"] for s in steps],
                "min_top2_gap": round(gap, LOGPROB_DECIMALS),
                "steps": steps,
            })
        out = args.out / name
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        (out / "generation_config.json").unlink(missing_ok=True)
        fixture = {
            "description": f"Greedy continuations and top-5 logprobs of a tiny random {cls.__name__} computed by PyTorch "
                           "transformers in float32; regenerate with scripts/reference/make_architecture_fixtures.py",
            "class": cls.__name__,
            "seed": seed,
            "new_tokens": NEW_TOKENS,
            "top_k": TOP_K,
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": version("transformers"),
            },
            "cases": cases,
        }
        (out / "reference.json").write_text(json.dumps(fixture, indent=1) + "\n")
        print(f"{name}: {[c['generated_token_ids'] for c in cases]}", file=sys.stderr)


if __name__ == "__main__":
    main()
