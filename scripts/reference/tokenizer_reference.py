#!/usr/bin/env python3
"""Writes tokenizer test vectors from a GGUF file using Hugging Face transformers as the reference.

transformers builds a tokenizer from the GGUF's own metadata (AutoTokenizer.from_pretrained with
gguf_file=...), independently of this project's TypeScript code. The vectors it writes are what the
TypeScript tokenizer must reproduce: token ids for a set of strings, decoded text, the raw bytes of
each token seen, and chat-template renders.

Usage:
    python3 -m pip install -r scripts/reference/requirements-tokenizer.txt
    python3 scripts/reference/tokenizer_reference.py --gguf PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf \
        --out test/fixtures/tokenizer/smollm2.json
"""

import argparse
import hashlib
import json
import os

# Strings covering what tends to break tokenizers: whitespace runs, digits, contractions,
# code, multi-byte UTF-8 (CJK, emoji with modifiers and joiners, combining marks), unusual
# Unicode whitespace, and special tokens written inside ordinary text.
TEXTS = [
    "",
    "Hello world! 123",
    "Hello, world",
    "The capital of France is",
    "  multiple   spaces",
    "trailing spaces   ",
    "\ttab\tseparated\tvalues\n",
    "line one\nline two\n\n\nthree blank lines\r\nCRLF",
    "   \n   \n",
    "Numbers: 0 7 42 1234567890 3.14159 -12,345.67 1e-9 0x1F",
    "I'm sure they'll say we've done it, didn't you? It's JOHN'S.",
    "Café déjà vu, naïve façade, Ærøskøbing, Straße",
    "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ、ひらがな。",
    "한국어 문장입니다.",
    "مرحبا بالعالم",
    "नमस्ते दुनिया",
    "Emoji: 🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 😀😀😀",
    "Math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ = π/2 ≈ 1.5708",
    "non\u00a0breaking\u3000ideographic\u2028line\u0085next\ufeffbom",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "const f = (x) => { return x * 2; }; // arrow\nconsole.log(f(21));",
    "<html><body class=\"main\">&amp; &lt;tag&gt;</body></html>",
    "https://example.com/path?query=1&other=two#frag",
    "**bold** _italic_ `code` # Heading\n- item 1\n- item 2",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "<|im_start|><|im_end|><|endoftext|>",
    "a <|im_start|> spaced special",
    "<|im_start",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!??? ... --- ___ === +++ *** ### @@@ $$$ %%% ^^^ &&& |||",
    " leading space",
    "\n\nleading newlines",
    "MixedCASE camelCase snake_case kebab-case SCREAMING_CASE",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name three colors."},
    ],
    [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about 🐍 and 数字 123."},
    ],
    [
        {"role": "system", "content": ""},
        {"role": "user", "content": "  spaces\n\nand newlines  "},
    ],
]


def token_bytes(tokenizer, token_id):
    """The raw bytes a token stands for, computed the way the reference tokenizer decodes it."""
    backend = tokenizer.backend_tokenizer
    added = backend.get_added_tokens_decoder()
    if token_id in added:
        return added[token_id].content.encode("utf-8")
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    piece = backend.id_to_token(token_id)
    return bytes(byte_of[c] for c in piece)


def compact_json(value):
    """JSON with one list entry or object member per line, inner values on a single line (diffable)."""

    def inline(v):
        return json.dumps(v, ensure_ascii=False)

    lines = ["{"]
    items = list(value.items())
    for i, (key, v) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append(f" {inline(key)}: [")
            lines.extend(f"  {inline(entry)}{',' if j < len(v) - 1 else ''}" for j, entry in enumerate(v))
            lines.append(f" ]{comma}")
        elif isinstance(v, dict):
            lines.append(f" {inline(key)}: {{")
            members = list(v.items())
            lines.extend(
                f"  {inline(k)}: {inline(m)}{',' if j < len(members) - 1 else ''}" for j, (k, m) in enumerate(members)
            )
            lines.append(f" }}{comma}")
        else:
            lines.append(f" {inline(key)}: {inline(v)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf", required=True, help="path to the GGUF file")
    parser.add_argument("--out", required=True, help="where to write the JSON test vectors")
    args = parser.parse_args()

    from importlib.metadata import version

    import gguf  # noqa: F401  (transformers needs it for GGUF files; fail early with a clear error)
    from transformers import AutoTokenizer

    path = os.path.abspath(args.gguf)
    tokenizer = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    backend = tokenizer.backend_tokenizer

    with open(path, "rb") as f:
        digest = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)

    encodings = []
    seen_ids = set()
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False)
        ids_with_special = tokenizer.encode(text, add_special_tokens=True)
        seen_ids.update(ids)
        encodings.append(
            {
                "text": text,
                "ids": ids,
                "idsWithSpecialTokens": ids_with_special,
                "decoded": backend.decode(ids, skip_special_tokens=False),
                "decodedSkipSpecial": backend.decode(ids, skip_special_tokens=True),
            }
        )

    chats = []
    for messages in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
            ids = tokenizer.encode(text, add_special_tokens=False)
            seen_ids.update(ids)
            chats.append({"messages": messages, "addGenerationPrompt": add_generation_prompt, "text": text, "ids": ids})

    special_ids = sorted(backend.get_added_tokens_decoder().keys())
    result = {
        "source": {
            "file": os.path.basename(path),
            "sha256": digest.hexdigest(),
            "transformers": version("transformers"),
            "tokenizers": version("tokenizers"),
            "gguf": version("gguf"),
        },
        "vocabSize": len(tokenizer),
        "bosTokenId": tokenizer.bos_token_id,
        "eosTokenId": tokenizer.eos_token_id,
        "addedTokenIds": special_ids,
        "encodings": encodings,
        "chats": chats,
        "tokenBytes": {str(i): token_bytes(tokenizer, i).hex() for i in sorted(seen_ids | set(special_ids))},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(compact_json(result))
    print(f"wrote {len(encodings)} encodings and {len(chats)} chat renders to {args.out}")


if __name__ == "__main__":
    main()
