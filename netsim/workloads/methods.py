"""The one registry of training methods: name, one-line help, and whether real training runs it.

`utilization` and `sweep_bandwidth` (netsim.workloads) simulate every method here; `netsim train`
(netsim.training) runs those marked `trains` with real PyTorch maths, each as the script
``netsim/training/methods/<name>.py``. The CLI's choices and `--help` texts, the training scenario schema
and the error messages are all generated from this table: adding a method means one line here plus its
schedule (and, for real training, its script).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from netsim.errors import ConfigError


@dataclass(frozen=True)
class Method:
    name: str
    help: str  # one line, for `--help` and docs
    trains: bool  # real training (netsim.training) implements it
    sweep: bool  # in `sweep-bandwidth`'s default list


_TABLE = (
    Method("ddp", "data parallelism: gradients all-reduced every step, per layer, overlapped with the backward",
           trains=True, sweep=True),
    Method("diloco", "DiLoCo: H local steps, then a blocking all-reduce of the outer gradient",
           trains=True, sweep=True),
    Method("streaming_diloco", "Streaming DiLoCo: F fragments synced in turn, each merged tau steps later, in `bits` "
           "bits", trains=True, sweep=True),
    Method("noloco", "NoLoCo: every H steps a random pair swaps outer gradients and slow weights; no all-reduce, "
           "no barrier", trains=True, sweep=True),
    Method("co2", "CO2: DiLoCo whose all-reduce hides behind the next H local steps", trains=False, sweep=True),
    Method("gossip", "D-SGD: every H steps average with the round's neighbours (ring, exponential or random pairs)",
           trains=True, sweep=False),
)

METHODS: dict[str, Method] = {m.name: m for m in _TABLE}
NAMES: tuple[str, ...] = tuple(METHODS)  # every method `utilization` simulates
TRAINING_NAMES: tuple[str, ...] = tuple(m.name for m in _TABLE if m.trains)  # those `netsim train` runs
SWEEP_DEFAULT: tuple[str, ...] = tuple(m.name for m in _TABLE if m.sweep)  # `sweep-bandwidth` by default


def check_method(name: object, *, training: bool = False, field: str = "method", source: str | None = None) -> str:
    """`name` if it is a registered method (one real training runs, with `training`); else a ConfigError
    naming the known ones (and the closest, where one is close)."""
    known = TRAINING_NAMES if training else NAMES
    if isinstance(name, str) and name in known:
        return name
    if isinstance(name, str) and name in METHODS:
        message = f"method {name!r} has no real-training implementation (training runs: {', '.join(known)})"
    else:
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"unknown method {name!r} (known: {', '.join(known)}){hint}"
    raise ConfigError(message, source=source, field=field)


def help_text(*, training: bool = False) -> str:
    """One line per method, `name: help`, for `--help` (the training ones only, with `training`)."""
    names = TRAINING_NAMES if training else NAMES
    return "\n".join(f"{n}: {METHODS[n].help}" for n in names)
