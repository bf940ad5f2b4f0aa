"""The program model and its one executor: per-rank compute, collective, send and recv nodes with
dependencies on FIFO streams (`Program`, `Node`), run on any network model (`run_program`), and the
run exported as a Chrome trace-event timeline (`timeline`)."""

from netsim.program.executor import ProgramResult, ProgramRun, run_program, stream_of
from netsim.program.model import KINDS, Node, Program, ProgramError

__all__ = ["KINDS", "Node", "Program", "ProgramError", "ProgramResult", "ProgramRun", "run_program", "stream_of"]
