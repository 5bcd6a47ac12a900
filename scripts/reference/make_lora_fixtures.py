#!/usr/bin/env python3
"""Writes test/fixtures/lora/: LoRA adapters of the tiny Llama in test/fixtures/architectures/llama,
made by the real tools, and PEFT's own merge of them, the reference src/engine/lora/ is held to.

  peft/         PEFT save_pretrained of a LoraConfig (r=4, lora_alpha=8, all seven projections,
                init_lora_weights=False so B is nonzero), float32.
  peft-rslora/  the same with use_rslora=True (scale lora_alpha / sqrt(r)), r=8, lora_alpha=16,
                q_proj and v_proj only.
  mlx/          the numbers of peft/ in mlx-lm's layout, as `mlx_lm.lora` saves them: mlx cannot run
                here, so this writes what mlx_lm.tuner.utils.linear_to_lora_layers + the trainer's
                save (mx.save_safetensors of tree_flatten(model.trainable_parameters())) produce:
                model.layers.N.<key>.lora_a [in, r] and .lora_b [r, out] (LoRALinear computes
                x @ lora_a @ lora_b · scale), and adapter_config.json as mlx_lm.utils.save_config
                writes vars(args) (sorted keys, lora_parameters {rank, scale, dropout, keys}).
  merged.safetensors  PEFT's merge_and_unload() weights [out, in] of a few projections, named
                <adapter>.<module path>, e.g. peft.model.layers.1.self_attn.q_proj.weight.

Usage (from the repository root, in a virtualenv outside the repository):
    /tmp/refvenv/bin/pip install torch transformers peft safetensors numpy
    /tmp/refvenv/bin/python scripts/reference/make_lora_fixtures.py
Versions used are written into test/fixtures/lora/versions.json.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from safetensors.numpy import save_file
from transformers import LlamaForCausalLM

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE = REPO_ROOT / "test/fixtures/architectures/llama"
OUT = REPO_ROOT / "test/fixtures/lora"
MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PARENT = {m: "self_attn" if m in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp" for m in MODULES}
# Projections whose merged weights are recorded (the whole merge would exceed the fixture budget).
MERGED = {
    "peft": ["model.layers.1.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.mlp.down_proj"],
    "peft-rslora": ["model.layers.0.self_attn.v_proj"],
}


def make_peft(name: str, config: LoraConfig, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    base = LlamaForCausalLM.from_pretrained(BASE, dtype=torch.float32)
    model = get_peft_model(base, config)
    model.save_pretrained(OUT / name)
    # Keep the machine's absolute path out of the fixture.
    config_path = OUT / name / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = "test/fixtures/architectures/llama"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    merged = model.merge_and_unload()
    params = dict(merged.named_parameters())
    return {f"{name}.{p}.weight": params[f"{p}.weight"].detach().numpy().copy() for p in MERGED[name]}


def peft_to_mlx(peft_dir: Path, mlx_dir: Path, rank: int, scale: float, num_layers: int) -> None:
    from safetensors.numpy import load_file

    tensors = load_file(peft_dir / "adapter_model.safetensors")
    out: dict[str, np.ndarray] = {}
    for layer in range(num_layers):
        for m in MODULES:
            p = f"base_model.model.model.layers.{layer}.{PARENT[m]}.{m}"
            a = tensors[f"{p}.lora_A.weight"]  # [r, in]
            b = tensors[f"{p}.lora_B.weight"]  # [out, r]
            q = f"model.layers.{layer}.{PARENT[m]}.{m}"
            out[f"{q}.lora_a"] = np.ascontiguousarray(a.T)  # [in, r]
            out[f"{q}.lora_b"] = np.ascontiguousarray(b.T)  # [r, out]
    mlx_dir.mkdir(parents=True, exist_ok=True)
    # tree_flatten order is alphabetical within each module; mx.save_safetensors tags format=mlx.
    save_file(dict(sorted(out.items())), mlx_dir / "adapters.safetensors", metadata={"format": "mlx"})
    # vars(args) of `mlx_lm.lora --train --fine-tune-type lora --num-layers N` with a config file
    # giving lora_parameters; save_config sorts the keys.
    args = {
        "adapter_path": str(mlx_dir.name),
        "batch_size": 4,
        "clear_cache_threshold": 0,
        "config": "lora.yaml",
        "data": "data",
        "fine_tune_type": "lora",
        "grad_accumulation_steps": 1,
        "grad_checkpoint": False,
        "iters": 10,
        "learning_rate": 1e-05,
        "lora_parameters": {
            "rank": rank,
            "dropout": 0.0,
            "scale": scale,
            "keys": [f"{PARENT[m]}.{m}" for m in MODULES],
        },
        "lr_schedule": None,
        "mask_prompt": False,
        "max_seq_length": 2048,
        "model": "test/fixtures/architectures/llama",
        "num_layers": num_layers,
        "optimizer": "adam",
        "optimizer_config": {"adam": {}, "adamw": {}, "muon": {}, "sgd": {}, "adafactor": {}},
        "project_name": None,
        "report_to": None,
        "resume_adapter_file": None,
        "save_every": 100,
        "seed": 0,
        "steps_per_eval": 200,
        "steps_per_report": 10,
        "test": False,
        "test_batches": 500,
        "train": True,
        "trust_remote_code": False,
        "val_batches": 25,
    }
    with open(mlx_dir / "adapter_config.json", "w") as f:
        json.dump(dict(sorted(args.items())), f, indent=4)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    merged: dict[str, np.ndarray] = {}
    merged |= make_peft(
        "peft",
        LoraConfig(r=4, lora_alpha=8, target_modules=MODULES, lora_dropout=0.05, init_lora_weights=False),
        seed=1,
    )
    merged |= make_peft(
        "peft-rslora",
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_rslora=True, init_lora_weights=False),
        seed=2,
    )
    save_file(merged, OUT / "merged.safetensors")
    # Same numbers, mlx-lm's layout: mlx-lm's scale is the multiplier itself (PEFT's lora_alpha / r).
    peft_to_mlx(OUT / "peft", OUT / "mlx", rank=4, scale=8 / 4, num_layers=2)
    for d in ("peft", "peft-rslora"):
        readme = OUT / d / "README.md"  # PEFT's model card template: not needed by the tests
        if readme.exists():
            readme.unlink()
    versions = {p: version(p) for p in ("torch", "transformers", "peft", "safetensors", "numpy")}
    (OUT / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")


if __name__ == "__main__":
    main()
