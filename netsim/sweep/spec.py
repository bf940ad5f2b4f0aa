"""Sweep specs: a base scenario plus parameters, resolved into the points to run.

    kind: run                           # which scenario kind the base is (see `netsim.sweep.kinds.KINDS`)
    base: ../topologies/scenario.yaml   # a scenario file (relative to the spec) or an inline mapping
    grid:                               # cartesian product ...
      routing: [[ecmp], [spray]]
      topology.oversubscription: [1, 2]
    zip:                                # ... of the grid with these lists taken together (same lengths)
      workload.0.size: [1MiB, 16MiB]
      workload.0.label: [small, large]
    metrics: [time_mean_s, busbw_Bps]     # columns to keep (default: all the kind reports; see KINDS)

A parameter is a dotted path into the scenario: mapping keys and list indices (``workload.0.size``,
``jobs.1.placement``, ``seed``). Its parent must exist in the base (so a typo is caught at once); the
leaf may be new where the scenario's schema accepts it. Points come in a fixed order: the grid's
product in the order the parameters are written (the last varies fastest), each combined with every
zipped row. `check_points` builds every resolved point as its run would (short of running it), so a
point that cannot be valid is refused, naming the point and the field, before anything runs.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from netsim.config import read_yaml, validated
from netsim.errors import ConfigError

MAX_POINTS = 100_000


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "sweep"
    kind: str
    base: str | dict
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    zip: dict[str, Annotated[list[Any], Field(min_length=1)]] = {}
    metrics: list[str] | None = None  # None: every column the kind reports


@dataclass(frozen=True)
class Point:
    index: int
    params: dict[str, Any]  # path -> value
    document: dict  # the resolved scenario
    key: str  # sha256 of the resolved scenario, the kind, its folder and netsim's version: the run's cache name


COLUMNS = 2  # the output columns' naming (2: units in every name); part of each point's cache key
# what the models compute: bump on a change of results (3: NCCL's model, connection caps, Streaming DiLoCo's gate)
REVISION = 3


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netsim")
    except PackageNotFoundError:
        return "unknown"


def _get(document: Any, parts: list[str]) -> Any:
    node = document
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def set_path(document: dict, path: str, value: Any) -> None:
    """Set `path` (dotted: keys and list indices) in `document`; its parent must exist."""
    parts = path.split(".")
    try:
        parent = _get(document, parts[:-1])
    except KeyError as exc:
        raise ConfigError(f"no {exc.args[0]!r} in the base scenario (path {path!r})", field=f"grid/zip {path}") from None
    leaf = parts[-1]
    if isinstance(parent, dict):
        parent[leaf] = copy.deepcopy(value)
    elif isinstance(parent, list) and leaf.isdigit() and int(leaf) < len(parent):
        parent[int(leaf)] = copy.deepcopy(value)
    else:
        raise ConfigError(f"{leaf!r} is not a key or index of {'.'.join(parts[:-1]) or 'the scenario'}",
                          field=f"grid/zip {path}")


def load_spec(path: str | Path) -> tuple[SweepSpec, dict, Path]:
    """The spec, its base scenario as a mapping, and the folder relative paths in the base resolve from."""
    from netsim.sweep.kinds import KINDS

    path = Path(path)
    source = str(path)
    spec = validated(SweepSpec, read_yaml(path), source)
    if spec.kind not in KINDS:
        raise ConfigError(f"unknown kind {spec.kind!r} (known: {', '.join(KINDS)})", source=source, field="kind")
    if isinstance(spec.base, str):
        base_path = (path.parent / spec.base) if not Path(spec.base).is_absolute() else Path(spec.base)
        try:
            found = base_path.is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL character
            raise ConfigError(f"base scenario {spec.base!r} cannot be read ({exc})", source=source,
                              field="base") from None
        if not found:
            raise ConfigError(f"base scenario {spec.base!r} not found", source=source, field="base")
        base, folder = read_yaml(base_path), base_path.parent
    else:
        base, folder = spec.base, path.parent
    if not isinstance(base, dict):
        raise ConfigError("expected a scenario mapping", source=source, field="base")
    _check_metrics(spec, source)
    if not spec.grid and not spec.zip:
        raise ConfigError("nothing to sweep: give grid or zip parameters", source=source, field="grid")
    both = set(spec.grid) & set(spec.zip)
    if both:
        raise ConfigError(f"{sorted(both)[0]!r} is in both grid and zip", source=source, field="zip")
    lengths = {len(v) for v in spec.zip.values()}
    if len(lengths) > 1:
        raise ConfigError(f"zipped lists must have one length, got {sorted(lengths)}", source=source, field="zip")
    for section, p in [("grid", p) for p in spec.grid] + [("zip", p) for p in spec.zip]:
        if "" in p.split("."):
            raise ConfigError(f"expected a dotted path of keys and list indices (e.g. workload.0.size), got {p!r}",
                              source=source, field=section)
        try:
            set_path(copy.deepcopy(base), p, None)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=source, field=exc.field) from None
    count = 1
    for v in spec.grid.values():
        count *= len(v)
    count *= max(lengths, default=1)
    if count > MAX_POINTS:
        raise ConfigError(f"{count:,} points, more than {MAX_POINTS:,}", source=source, field="grid")
    return spec, base, folder


def _check_metrics(spec: SweepSpec, source: str) -> None:
    from netsim.sweep.kinds import KINDS, RENAMED

    if spec.metrics is None:
        return
    known = KINDS[spec.kind].metrics
    listing = f"(known for kind {spec.kind}: {', '.join(known)})"
    if not spec.metrics:
        raise ConfigError(f"empty: name at least one column, or leave metrics out for all {listing}",
                          source=source, field="metrics")
    for i, name in enumerate(spec.metrics):
        if name not in known and name != "error":
            new = RENAMED.get(name)
            hint = f"; it is now {new!r} (output columns name their units)" if new in known else ""
            raise ConfigError(f"unknown metric {name!r}{hint} {listing}", source=source, field="metrics")
        if name in spec.metrics[:i]:
            raise ConfigError(f"{name!r} given twice", source=source, field="metrics")


def points(spec: SweepSpec, base: dict, folder: Path) -> list[Point]:
    grid_names = list(spec.grid)
    zip_names = list(spec.zip)
    rows = list(zip(*spec.zip.values())) if spec.zip else [()]
    version = _version()
    out = []
    for combo in itertools.product(*spec.grid.values()):
        for row in rows:
            params = dict(zip(grid_names, combo)) | dict(zip(zip_names, row))
            doc = copy.deepcopy(base)
            for p, v in params.items():
                set_path(doc, p, v)
            blob = json.dumps({"kind": spec.kind, "scenario": doc, "netsim": version, "columns": COLUMNS, "revision": REVISION,
                               "folder": str(folder.resolve())},
                              sort_keys=True, default=str)
            out.append(Point(len(out), params, doc, hashlib.sha256(blob.encode()).hexdigest()[:24]))
    return out


def _value(value: Any, limit: int = 40) -> str:
    """A parameter value for a one-line message: plain words as they are, anything else as JSON, cut short."""
    text = value if isinstance(value, str) and re.fullmatch(r"[\w.:+-]+", value) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(point: Point) -> str:
    """`point 3 (bandwidth=1Gbps, method=diloco)`: the point's index and parameter values, for messages."""
    return f"point {point.index} ({', '.join(f'{k}={_value(v)}' for k, v in point.params.items())})"


def check_points(spec: SweepSpec, pts: list[Point], folder: Path, *, source: str,
                 max_transfers: int | None = None) -> None:
    """Build every point as its run would, short of running it; the first that cannot be valid is a
    ConfigError naming the spec, the field inside the point, and the point."""
    from netsim.sweep.kinds import KINDS

    check = KINDS[spec.kind].check
    for p in pts:
        try:
            check(p.document, folder, max_transfers)
        except ConfigError as exc:
            raise ConfigError(f"{exc.detail} (in {describe(p)})", source=source, field=exc.field) from None
        except Exception:  # noqa: BLE001  a bug in building, not the user's mistake: the run records it
            continue
