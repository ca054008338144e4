"""Synthetic checkpoints for the benchmark (run by run.py in a subprocess).

    python benchmarks/generate.py OUT_DIR [llama] [small] [sharded]

- llama: a TinyLlama-shaped 1.1 B-parameter model in bf16 (~2.2 GB) as
  `llama_sd.pth` (state_dict) and `llama_full.pth` (torch.save(model)). Built on
  the meta device and materialised with to_empty: uninitialised memory, so no
  time goes into random init; torch.save is then bound by the disk.
- small: `wide.pth` (5,000 siblings), `deep.pth` (300 levels), `many.pth`
  (10,000 tensors), all full-model pickles.
- sharded: `llama405b/`, a Hugging Face sharded safetensors checkpoint shaped
  like Llama 3.1 405B (191 shards, 1,138 tensors, ~810 GB apparent): each shard
  is a real header followed by a hole (`os.truncate`), so it takes no disk.
"""

from __future__ import annotations

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def llama(out: str) -> None:
    import torch

    sys.path.insert(0, HERE)
    from bench_models import LlamaForCausalLM

    torch.set_default_dtype(torch.bfloat16)
    with torch.device("meta"):
        model = LlamaForCausalLM()
    model = model.to_empty(device="cpu")
    model.model.rotary_emb.inv_freq = torch.ones(32, dtype=torch.float32)
    for p in model.model.embed_tokens.parameters():  # a typical partial freeze
        p.requires_grad_(False)
    torch.save(model.state_dict(), os.path.join(out, "llama_sd.pth"))
    torch.save(model, os.path.join(out, "llama_full.pth"))


def small(out: str) -> None:
    import torch

    sys.path.insert(0, HERE)
    from bench_models import Level, Many, Wide

    sys.setrecursionlimit(20000)  # building and pickling a 300-deep chain recurses
    torch.save(Wide(5000), os.path.join(out, "wide.pth"))
    torch.save(Level(300), os.path.join(out, "deep.pth"))
    torch.save(Many(100, 50), os.path.join(out, "many.pth"))


# -- sparse 405B safetensors shards (no torch needed) --------------------------------
L405 = {"vocab": 128256, "hidden": 16384, "inter": 53248, "layers": 126, "kv_dim": 1024}


def llama405_tensors() -> list[tuple[str, tuple[int, ...]]]:
    c = L405
    h, i, kv = c["hidden"], c["inter"], c["kv_dim"]
    out: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (c["vocab"], h))]
    for n in range(c["layers"]):
        p = f"model.layers.{n}."
        out += [(p + "self_attn.q_proj.weight", (h, h)), (p + "self_attn.k_proj.weight", (kv, h)),
                (p + "self_attn.v_proj.weight", (kv, h)), (p + "self_attn.o_proj.weight", (h, h)),
                (p + "mlp.gate_proj.weight", (i, h)), (p + "mlp.up_proj.weight", (i, h)),
                (p + "mlp.down_proj.weight", (h, i)), (p + "input_layernorm.weight", (h,)),
                (p + "post_attention_layernorm.weight", (h,))]
    out += [("model.norm.weight", (h,)), ("lm_head.weight", (c["vocab"], h))]
    return out


def sharded(out: str, shards: int = 191) -> None:
    folder = os.path.join(out, "llama405b")
    os.makedirs(folder, exist_ok=True)
    tensors = llama405_tensors()
    sizes = [2 * _numel(s) for _, s in tensors]
    total = sum(sizes)
    per = -(-total // shards)
    groups: list[list[int]] = [[]]
    acc = 0
    for k, nb in enumerate(sizes):  # greedy, like save_pretrained's max_shard_size
        if groups[-1] and acc + nb > per and len(groups) < shards:
            groups.append([])
            acc = 0
        groups[-1].append(k)
        acc += nb
    weight_map: dict[str, str] = {}
    for g, idx in enumerate(groups):
        name = f"model-{g + 1:05d}-of-{len(groups):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        off = 0
        for k in idx:
            tname, shape = tensors[k]
            header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + sizes[k]]}
            off += sizes[k]
            weight_map[tname] = name
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
        os.truncate(path, 8 + len(raw) + off)  # the tensor bytes: one hole
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


if __name__ == "__main__":
    target, what = sys.argv[1], sys.argv[2:] or ["llama", "small", "sharded"]
    os.makedirs(target, exist_ok=True)
    for w in what:
        {"llama": llama, "small": small, "sharded": sharded}[w](target)
