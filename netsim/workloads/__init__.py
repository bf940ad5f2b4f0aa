"""Workloads: per-rank programs on a simulation (collective benchmarks, training schedules), and the one
registry of training methods (`netsim.workloads.methods`)."""

from netsim.workloads.collective_bench import BenchRow, parse_bench_size, run_bench, size_range
from netsim.workloads.methods import METHODS, NAMES, SWEEP_DEFAULT, TRAINING_NAMES, Method, check_method, help_text

__all__ = ["BenchRow", "METHODS", "Method", "NAMES", "SWEEP_DEFAULT", "TRAINING_NAMES", "check_method", "help_text",
           "parse_bench_size", "run_bench", "size_range"]
