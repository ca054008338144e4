"""Model definitions used to build the files in ``sample_models/``.

Plain ``torch.nn`` only. The classes are importable as ``sample_models.models.*`` so that a
full-model pickle (``torch.save(model)``) names them by that path.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ConvNet",
    "TinyTransformer",
    "Block",
    "article_frozen_model",
    "tiny_transformer",
]


class ConvNet(nn.Module):
    """The seed article's CNN for 28x28 single-channel images (MNIST-like), 10 classes.

    Children, in order: ``sequential``, ``layer1``, ``layer2``, ``fc``.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.sequential = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=5, padding=2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )  # 28 -> 14
        self.layer1 = nn.Sequential(
            nn.Conv2d(16, 32, kernel_size=5, padding=2),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )  # 14 -> 7
        self.layer2 = nn.Sequential(
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )  # 7 -> 3
        self.fc = nn.Linear(64 * 3 * 3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sequential(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = x.reshape(x.size(0), -1)
        return self.fc(x)


class Block(nn.Module):
    """Pre-norm decoder block: causal self-attention + MLP, each with a residual."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, mlp_ratio * d_model),
            nn.GELU(),
            nn.Linear(mlp_ratio * d_model, d_model),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        a, _ = self.attn(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln2(x))


class TinyTransformer(nn.Module):
    """A small causal language model (decoder only).

    - ``embed`` (nn.Embedding) and ``head`` (nn.Linear, no bias) share one Parameter:
      ``head.weight is embed.weight``.
    - ``causal_mask``: a non-persistent buffer (absent from ``state_dict()``).
    - ``position_ids``: a persistent int64 buffer (present in ``state_dict()``).
    """

    def __init__(
        self,
        vocab_size: int = 1000,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        max_len: int = 32,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied: the very same Parameter object
        self.register_buffer("position_ids", torch.arange(max_len), persistent=True)
        mask = torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.size(1)
        x = self.embed(idx) + self.pos(self.position_ids[:t])
        mask = self.causal_mask[:t, :t]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))


def article_frozen_model(seed: int = 0) -> ConvNet:
    """The article's example: a seeded ConvNet with every parameter frozen except ``fc.*``."""
    torch.manual_seed(seed)
    model = ConvNet()
    for name, param in model.named_parameters():
        param.requires_grad = name.startswith("fc.")
    return model


def tiny_transformer(seed: int = 0) -> TinyTransformer:
    """A seeded TinyTransformer (tied embedding/head weights)."""
    torch.manual_seed(seed)
    return TinyTransformer()
