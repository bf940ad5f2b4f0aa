"""The trace readers, one registry: a format name, one line of help, how to recognise its files, how to
read them.

`TraceReader` is the base class. A reader sets `name` and `help` and implements two hooks:

- ``claims(path) -> bool``: whether `path` (a file, a directory or a per-rank prefix) is in its format,
  judged cheaply (names, first bytes); `load_trace(..., format="auto")` asks the readers in registry
  order and takes the first that claims the path;
- ``read(path, npus=None) -> Trace``: the whole trace, every rank, or a `TraceError` (one line: file and
  what is wrong). `npus` is the rank count for formats that describe one rank's work (text workloads).

`load_trace` then holds the trace to the limits of `netsim.traces.model` and validates it (`check`: sizes,
times, ids in range; the graph consistent; something to replay) before anyone replays it. Every problem
is a one-line `TraceError` naming the file; a reader that fails on a field of the wrong shape in a way it
did not foresee still gives one ("malformed <format> trace (...)"), never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

from netsim.traces import astra, chakra, kineto, own, recording
from netsim.traces.model import MAX_DEPTH, Trace, TraceError, check


class TraceReader:
    name = "base"
    help = ""

    def claims(self, path: Path) -> bool:
        raise NotImplementedError(self)

    def read(self, path: Path, npus: int | None = None) -> Trace:
        raise NotImplementedError(self)


def _chakra_prefix(path: Path) -> Path:
    m = re.match(r"(.*)\.\d+\.et(\.gz)?$", path.name)
    return path.with_name(m.group(1)) if m else path


class NetsimReader(TraceReader):
    name = "netsim"
    help = "netsim's own trace (Parquet or JSON Lines; written by `netsim replay -o`)"

    def claims(self, path: Path) -> bool:
        return path.suffix in (".parquet", ".jsonl") and path.is_file()

    def read(self, path: Path, npus: int | None = None) -> Trace:
        return own.read(path)


class ChakraReader(TraceReader):
    name = "chakra"
    help = "MLCommons Chakra execution trace: PREFIX.<rank>.et files (plain or gzipped)"

    def claims(self, path: Path) -> bool:
        prefix = _chakra_prefix(path)
        return prefix.parent.is_dir() and any(re.match(re.escape(prefix.name) + r"\.\d+\.et(\.gz)?$", p.name)
                                              for p in prefix.parent.iterdir())

    def read(self, path: Path, npus: int | None = None) -> Trace:
        return chakra.read(_chakra_prefix(path))


class KinetoReader(TraceReader):
    name = "kineto"
    help = "PyTorch profiler JSON (Chrome trace), one file per rank: a file, a directory or a prefix"

    def claims(self, path: Path) -> bool:
        try:
            return bool(kineto.rank_files(path))
        except TraceError:
            return False

    def read(self, path: Path, npus: int | None = None) -> Trace:
        return kineto.read(path)


class AstraReader(TraceReader):
    name = "astra"
    help = "ASTRA-sim / SimAI text workload (per layer: compute and communication of each pass)"

    def claims(self, path: Path) -> bool:
        return path.is_file() and astra.looks_like(path)

    def read(self, path: Path, npus: int | None = None) -> Trace:
        return astra.read(path, npus)


class TorchRecordingReader(TraceReader):
    name = "torch"
    help = "a PyTorch program recorded by netsim's torch.distributed backend: a directory of rank-<r>.recording.json"

    def claims(self, path: Path) -> bool:
        return recording.looks_like(path)

    def read(self, path: Path, npus: int | None = None) -> Trace:
        return recording.read(path)


# (the recording before the profiler, which would claim any directory of .json files)
READERS: dict[str, TraceReader] = {r.name: r for r in (NetsimReader(), ChakraReader(), AstraReader(),
                                                       TorchRecordingReader(), KinetoReader())}


def load_trace(path: str | Path, *, format: str = "auto", npus: int | None = None) -> Trace:
    """Read and validate a trace; `format` one of `READERS` or "auto" (recognised from the path)."""
    path = Path(path)
    if format != "auto" and format not in READERS:
        raise TraceError(f"unknown trace format {format!r} (known: auto, {', '.join(READERS)})", field="--format")
    if format == "auto":
        reader = next((r for r in READERS.values() if r.claims(path)), None)
        if reader is None:
            what = "does not exist" if not path.exists() and not path.parent.exists() else \
                "is in none of the known formats"
            raise TraceError(f"{what} (known: {', '.join(READERS)}; a Chakra or profiler prefix is the path "
                             "before .<rank>.et / the rank files)", source=str(path))
    else:
        reader = READERS[format]
    try:
        return check(reader.read(path, npus))
    except TraceError:
        raise
    except RecursionError:
        raise TraceError(f"nested deeper than {MAX_DEPTH} levels", source=str(path)) from None
    except OSError as exc:
        raise TraceError(f"cannot be read: {exc.strerror or exc}", source=str(path)) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # a file of the right kind with a field of the wrong shape: one line, not a traceback
        what = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise TraceError(f"malformed {reader.name} trace ({type(exc).__name__}: {what})", source=str(path)) from None
