"""The registry of commands: name -> where it lives and its one line of help.

`netsim --help` and `netsim --version` read only this table (no command module, numpy or polars is
imported for them); a command's module is imported when that command runs or shows its own help. A
module defines ``add_parser(sub)`` (or, for two commands, ``add_parsers``) and the entry named here; its
subparser takes its help from `HELP`, so the listing and the command agree.
"""

from __future__ import annotations

# name: (module under netsim.cli, the function adding its parser(s), the entry point, one line of help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "run": ("run", "add_parser", "command", "run a scenario file (default: the built-in scenario)"),
    "bench": ("bench", "add_parser", "command", "nccl-tests-style sweep of one collective over message sizes"),
    "calibrate": ("calibrate", "add_parser", "command",
                  "fit a topology's per-connection bandwidth and latency to real nccl-tests outputs"),
    "compare-routing": ("compare", "add_parser", "command", "run a scenario once per routing policy and compare"),
    "utilization": ("lowcomm", "add_parsers", "utilization_command",
                    "compute utilisation of a training method across datacenters"),
    "sweep-bandwidth": ("lowcomm", "add_parsers", "sweep_command",
                        "utilisation against bandwidth per method, and thresholds"),
    "train": ("train", "add_parser", "command",
              "real training per method on the simulated clock (built-in: 4 datacenters)"),
    "topo": ("topo", "add_parser", "command", "topology tools"),
    "attention": ("attention", "add_parser", "command",
                  "context-parallel attention: Ring, zigzag Ring, TokenRing, Ulysses on a fabric"),
    "trace": ("trace", "add_parser", "command", "trace tools"),
    "replay": ("replay", "add_parser", "command",
               "replay a trace (Chakra, PyTorch profiler, ASTRA-sim text, netsim) on a fabric"),
    "torchrun": ("torchrun", "add_parser", "command",
                 "run an unmodified torch.distributed script on local ranks, simulate what it did on a fabric"),
    "faults": ("faults", "add_parser", "command",
               "inject faults into a long job: detection (C4D-like), recovery, downtime"),
    "sweep": ("sweep", "add_parser", "command",
              "run a base scenario over a grid of parameters (local pool or dask), resumable"),
    "examples": ("examples", "add_parser", "command", "the example inputs that ship with netsim (usable by name)"),
    "completion": ("completion", "add_parser", "command", "print a bash or zsh completion script for netsim"),
}
HELP = {name: entry[3] for name, entry in COMMANDS.items()}

__all__ = ["COMMANDS", "HELP"]
