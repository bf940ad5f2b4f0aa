"""Formats for exchanged values: FP8 (E4M3) and 4-bit E3M0, each with a per-tensor scale, decoded
and accumulated in fp32 — what Streaming DiLoCo sends over the wire.

FP8 E4M3 (OCP "fn" variant, largest finite 448): torch's float8_e4m3fn, round to nearest even;
relative error at most 2^-4 for normal values. E3M0: a sign and a 3-bit exponent, no mantissa:
code 0 is zero and code e = 1..7 is scale x 2^(e-7); magnitudes round to the nearest level in value,
so the relative error is at most 1/3 inside the range, and values below half the smallest level
become zero.
"""

from __future__ import annotations

import torch

FORMATS = {"fp32": 32, "bf16": 16, "fp8": 8, "e3m0": 4}  # bits per value
FP8_MAX = 448.0


def quantize(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """The fp32 values the receiver decodes after `x` went through `fmt` (same shape)."""
    x = x.detach().to(torch.float32)
    if fmt == "fp32" or x.numel() == 0:  # an empty fragment (more fragments than blocks) has no scale
        return x.clone()
    if fmt == "bf16":
        return x.to(torch.bfloat16).to(torch.float32)
    scale = x.abs().max()
    if scale == 0:
        return torch.zeros_like(x)
    if fmt == "fp8":
        s = scale / FP8_MAX
        return (x / s).to(torch.float8_e4m3fn).to(torch.float32) * s
    if fmt == "e3m0":
        levels = scale * torch.pow(2.0, torch.arange(-6, 1, dtype=torch.float32))  # 2^-6 .. 2^0 of the scale
        mag = x.abs().unsqueeze(-1)
        candidates = torch.cat([torch.zeros(1), levels])
        nearest = candidates[(mag - candidates).abs().argmin(dim=-1)]
        return torch.sign(x) * nearest
    raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def payload_bytes(elements: int, fmt: str) -> int:
    """Bytes on the wire for `elements` values in `fmt` (plus one fp32 scale for the scaled formats)."""
    bits = FORMATS[fmt]
    return (elements * bits + 7) // 8 + (4 if fmt in ("fp8", "e3m0") else 0)


def encode(x: torch.Tensor, fmt: str) -> torch.Tensor:
    """`x` as it goes on the wire in `fmt`: bytes (uint8, `payload_bytes` of them) for the scaled formats,
    the values themselves in fp32 or bf16; `decode` gives back `quantize(x, fmt)` bit for bit."""
    x = x.detach().to(torch.float32).flatten()
    if fmt == "fp32":
        return x.clone()
    if fmt == "bf16":
        return x.to(torch.bfloat16)
    scale = x.abs().max() if x.numel() else torch.tensor(0.0)
    if fmt == "fp8":
        codes = torch.zeros_like(x, dtype=torch.uint8) if scale == 0 else \
            (x / (scale / FP8_MAX)).to(torch.float8_e4m3fn).view(torch.uint8)
    elif fmt == "e3m0":  # code e (1..7): scale x 2^(e-7), bit 3 the sign; two codes a byte, low nibble first
        levels = torch.cat([torch.zeros(1), scale * torch.pow(2.0, torch.arange(-6, 1, dtype=torch.float32))])
        e = (x.abs().unsqueeze(-1) - levels).abs().argmin(dim=-1).to(torch.uint8)
        nibbles = torch.where((x < 0) & (e > 0), e | 8, e)
        if len(nibbles) % 2:
            nibbles = torch.cat([nibbles, torch.zeros(1, dtype=torch.uint8)])
        codes = nibbles[0::2] | (nibbles[1::2] << 4)
    else:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return torch.cat([codes, scale.reshape(1).to(torch.float32).view(torch.uint8)])


def decode(wire: torch.Tensor, fmt: str, numel: int) -> torch.Tensor:
    """The fp32 values `encode` put on the wire (`numel` of them)."""
    if fmt in ("fp32", "bf16"):
        return wire.to(torch.float32)
    codes, scale = wire[:-4], wire[-4:].clone().view(torch.float32)[0]
    if scale == 0:
        return torch.zeros(numel)
    if fmt == "fp8":
        return codes.view(torch.float8_e4m3fn).to(torch.float32) * (scale / FP8_MAX)
    nibbles = torch.stack([codes & 15, codes >> 4], dim=-1).flatten()[:numel]
    e = (nibbles & 7).long()
    levels = torch.cat([torch.zeros(1), scale * torch.pow(2.0, torch.arange(-6, 1, dtype=torch.float32))])
    return torch.where(nibbles >= 8, -levels[e], levels[e])
