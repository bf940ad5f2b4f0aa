"""A small decoder-only transformer over bytes (vocabulary 256): embedding, `layers` pre-norm blocks of
causal self-attention and an MLP, a final norm and a tied output projection."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from netsim.errors import ConfigError
from netsim.workloads.limits import integer


MAX_WIDTH = 65_536  # beyond any model a worker on this machine can hold
MAX_CONTEXT = 1 << 20


@dataclass(frozen=True)
class ModelConfig:
    layers: int = 2
    width: int = 64
    heads: int = 4
    context: int = 64
    vocab: int = 256

    def __post_init__(self) -> None:
        integer(self.layers, "layers", lo=1, hi=1024)
        integer(self.width, "width", lo=1, hi=MAX_WIDTH)
        integer(self.heads, "heads", lo=1, hi=self.width)
        integer(self.context, "context", lo=1, hi=MAX_CONTEXT)
        integer(self.vocab, "vocab", lo=2, hi=256)  # a byte-level model: tokens are bytes
        if self.width % self.heads:
            raise ConfigError(f"{self.heads} heads do not divide the width {self.width} (each head gets width / heads)",
                              field="heads")


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.heads = c.heads
        self.norm1, self.norm2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv = nn.Linear(c.width, 3 * c.width)
        self.proj = nn.Linear(c.width, c.width)
        self.mlp = nn.Sequential(nn.Linear(c.width, 4 * c.width), nn.GELU(), nn.Linear(4 * c.width, c.width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(w, dim=-1)
        shape = (b, t, self.heads, w // self.heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, w)
        x = x + self.proj(att)
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.config = c
        self.embed = nn.Embedding(c.vocab, c.width)
        self.pos = nn.Parameter(torch.zeros(c.context, c.width))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.norm = nn.LayerNorm(c.width)
        nn.init.normal_(self.embed.weight, std=0.02)  # small tied embeddings: initial loss near ln(256)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.T

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-byte cross-entropy over a batch of sequences (B x context+1)."""
        logits = self(tokens[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
