#!/usr/bin/env python3
"""Writes test/fixtures/gguf-dequantize.json: what gguf-py (ggml's numpy port, bit-exact with
ggml-quants.c `dequantize_row_*`) decodes from ggml quantized blocks, the reference the engine's
dequantizers (src/engine/quant/) are held to bit for bit.

For each type the fixture holds
  - `blocks`/`values`: a few blocks (base64) whose f16 scales are edge cases (smallest subnormal,
    largest finite, -0, negative) or random, and their decoded float32 values (base64, little endian);
  - `bulk`: the SHA-256 of the decoded values (float32, little endian) of BULK_BLOCKS blocks of
    pseudo-random bytes. The bytes are SHA-256 in counter mode (sha256(f"{type}:{i}") for i = 0, 1,
    ...), with every f16 scale field whose exponent is all ones (inf/NaN) made finite by clearing
    bit 14, so the test rebuilds them without storing them.

Usage (from the repository root, in a virtualenv outside the repository):
    python3 -m venv /tmp/ggufvenv && /tmp/ggufvenv/bin/pip install -r scripts/reference/requirements-quants.txt
    /tmp/ggufvenv/bin/python scripts/reference/make_quant_fixture.py [--out test/fixtures/gguf-dequantize.json]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

REPO_ROOT = Path(__file__).resolve().parents[2]
BULK_BLOCKS = 1024
SEED = 20261206

# Byte offsets of each block's f16 scale fields (d, and dmin/m where the type has one).
SCALE_FIELDS = {
    "Q5_0": [0],
    "Q5_1": [0, 2],
    "IQ4_NL": [0],
    "Q2_K": [80, 82],
    "Q3_K": [108],
    "Q4_K": [0, 2],
    "Q5_K": [0, 2],
    "Q6_K": [208],
}
# f16 bit patterns given to the first blocks' scale fields, in turn: smallest subnormal, largest
# subnormal, largest finite, -0, 1.0, a negative normal. The last block keeps random scales.
EDGE_SCALES = [0x0001, 0x03FF, 0x7BFF, 0x8000, 0x3C00, 0xB555]


def finite_scales(blocks: np.ndarray, fields: list[int]) -> None:
    for at in fields:
        bits = blocks[:, at].astype(np.uint16) | (blocks[:, at + 1].astype(np.uint16) << 8)
        inf_or_nan = (bits & 0x7C00) == 0x7C00
        blocks[inf_or_nan, at + 1] &= 0xBF


def counter_bytes(name: str, n: int) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{name}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


def decode(blocks: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    values = dequantize(blocks, qtype)
    assert values.dtype == np.float32
    return np.ascontiguousarray(values.reshape(-1)).astype("<f4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "test/fixtures/gguf-dequantize.json")
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    types = {}
    for name, fields in SCALE_FIELDS.items():
        qtype = GGMLQuantizationType[name]
        block_elements, block_bytes = GGML_QUANT_SIZES[qtype]
        edge_blocks = len(EDGE_SCALES) // len(fields)
        blocks = rng.integers(0, 256, size=(edge_blocks + 1, block_bytes), dtype=np.uint8)
        finite_scales(blocks, fields)
        for b in range(edge_blocks):
            for k, at in enumerate(fields):
                bits = EDGE_SCALES[b * len(fields) + k]
                blocks[b, at] = bits & 0xFF
                blocks[b, at + 1] = bits >> 8
        bulk = np.frombuffer(counter_bytes(name, BULK_BLOCKS * block_bytes), dtype=np.uint8).reshape(BULK_BLOCKS, block_bytes).copy()
        finite_scales(bulk, fields)
        types[name] = {
            "type": int(qtype),
            "blockElements": block_elements,
            "blockBytes": block_bytes,
            "scaleFields": fields,
            "blocks": base64.b64encode(blocks.tobytes()).decode(),
            "values": base64.b64encode(decode(blocks, qtype).tobytes()).decode(),
            "bulk": {"blocks": BULK_BLOCKS, "sha256": hashlib.sha256(decode(bulk, qtype).tobytes()).hexdigest()},
        }
    fixture = {
        "generator": "scripts/reference/make_quant_fixture.py",
        "gguf": version("gguf"),
        "numpy": version("numpy"),
        "types": types,
    }
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
