"""The shipped byte-level corpus and per-worker data shards."""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus" / "public_domain.txt"


def corpus_bytes() -> torch.Tensor:
    return torch.tensor(list(CORPUS.read_bytes()), dtype=torch.long)


def corpus_size() -> int:
    return CORPUS.stat().st_size


class Shard:
    """Worker `index` of `count` owns a contiguous slice of the corpus and samples batches from it."""

    def __init__(self, data: torch.Tensor, index: int, count: int, context: int, batch: int, seed: int):
        size = len(data) // count
        self.data = data[index * size:(index + 1) * size]
        if len(self.data) <= context + 1:
            raise ValueError(f"shard of {len(self.data)} bytes is too small for context {context}")
        self.context, self.batch = context, batch
        self.generator = torch.Generator().manual_seed(seed * 1000 + index)

    def next(self) -> torch.Tensor:
        starts = torch.randint(0, len(self.data) - self.context - 1, (self.batch,), generator=self.generator)
        return torch.stack([self.data[s:s + self.context + 1] for s in starts.tolist()])
