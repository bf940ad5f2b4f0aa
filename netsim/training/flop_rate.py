"""This CPU's floating-point rate, measured: what a recorded compute gap (CPU seconds) is worth in FLOPs, so
`netsim torchrun --device-tflops F` can turn it into the time a device of F TFLOP/s would take."""

from __future__ import annotations

import statistics
import time


def cpu_flops(size: int = 512, seconds: float = 0.25) -> float:
    """The float32 matmul rate of this process (FLOP/s, torch's own threads): ``size``-square products,
    2·size³ FLOPs each, timed one by one for about `seconds` after one warm-up; the median product's rate
    (the machine is shared: a median is steadier than a mean, and the ranks' compute is no best case either)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up: the threads' pool, the kernel's first-call costs
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times)


def device_scale(cpu_rate: float, device_tflops: float) -> float:
    """The factor turning CPU seconds into the seconds of a device of `device_tflops` TFLOP/s doing the same
    FLOPs: the CPU's rate over the device's."""
    return cpu_rate / (device_tflops * 1e12)
