"""Workloads: per-rank programs on a simulation (collective benchmarks, later training schedules)."""

from netsim.workloads.collective_bench import BenchRow, parse_bench_size, run_bench, size_range

__all__ = ["BenchRow", "parse_bench_size", "run_bench", "size_range"]
