"""nn.Module classes for the benchmark's full-model pickles (imported by generate.py).

A full-model pickle names its classes (`bench_models.LlamaForCausalLM`), so the
torch.load(weights_only=False) baseline needs this file importable: run.py puts
benchmarks/ on PYTHONPATH for the generator and for that baseline only.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


class Attention(nn.Module):
    def __init__(self, hidden: int, kv_dim: int) -> None:
        super().__init__()
        self.q_proj = nn.Linear(hidden, hidden, bias=False)
        self.k_proj = nn.Linear(hidden, kv_dim, bias=False)
        self.v_proj = nn.Linear(hidden, kv_dim, bias=False)
        self.o_proj = nn.Linear(hidden, hidden, bias=False)


class MLP(nn.Module):
    def __init__(self, hidden: int, inter: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)


class DecoderLayer(nn.Module):
    def __init__(self, hidden: int, inter: int, kv_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(hidden, kv_dim)
        self.mlp = MLP(hidden, inter)
        self.input_layernorm = RMSNorm(hidden)
        self.post_attention_layernorm = RMSNorm(hidden)


class Rotary(nn.Module):
    def __init__(self, head_dim: int) -> None:
        super().__init__()
        inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv, persistent=False)


class LlamaModel(nn.Module):
    def __init__(self, vocab: int, hidden: int, inter: int, layers: int, kv_dim: int,
                 head_dim: int) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, hidden)
        self.layers = nn.ModuleList(DecoderLayer(hidden, inter, kv_dim) for _ in range(layers))
        self.norm = RMSNorm(hidden)
        self.rotary_emb = Rotary(head_dim)


class LlamaForCausalLM(nn.Module):
    """TinyLlama-1.1B's shape by default: 22 layers, hidden 2048, GQA with 4 KV heads."""

    def __init__(self, vocab: int = 32000, hidden: int = 2048, inter: int = 5632,
                 layers: int = 22, kv_dim: int = 256, head_dim: int = 64) -> None:
        super().__init__()
        self.model = LlamaModel(vocab, hidden, inter, layers, kv_dim, head_dim)
        self.lm_head = nn.Linear(hidden, vocab, bias=False)


class Wide(nn.Module):
    """One node with `n` sibling children."""

    def __init__(self, n: int = 5000) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(n))


class Level(nn.Module):
    """A chain `depth` modules deep: each level a Linear and the next level."""

    def __init__(self, depth: int) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        if depth > 1:
            self.inner = Level(depth - 1)


class Many(nn.Module):
    """`groups` blocks of `per` Linears: 2 * groups * per tensors, three levels."""

    def __init__(self, groups: int = 100, per: int = 50) -> None:
        super().__init__()
        self.groups = nn.ModuleList(
            nn.Sequential(*(nn.Linear(8, 8) for _ in range(per))) for _ in range(groups))
