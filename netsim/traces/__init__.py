"""Traces of real jobs: the trace model, its readers (Chakra ET, PyTorch profiler, ASTRA-sim text,
netsim's own), writers (netsim's own, Chakra ET) and replay on any simulated fabric."""

from netsim.traces.model import Trace, TraceError, TraceNode
from netsim.traces.readers import READERS, load_trace

__all__ = ["READERS", "Trace", "TraceError", "TraceNode", "load_trace"]
