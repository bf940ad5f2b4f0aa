"""The trace model is the program model (`netsim.program.model`): a trace is a `Program` read from a file.
The names traces and their readers use."""

from netsim.program.model import KINDS, Node as TraceNode, Program as Trace, ProgramError as TraceError, chained, summary

__all__ = ["KINDS", "Trace", "TraceError", "TraceNode", "chained", "summary"]
