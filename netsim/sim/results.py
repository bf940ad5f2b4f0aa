"""`Results`: the polars frames of a run, written to and read back from Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass
class Results:
    """Frames by name (`transfers`, `collectives`, `links`, `link_timeline`, ...) plus run metadata."""

    frames: dict[str, pl.DataFrame]
    meta: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> pl.DataFrame:
        frames = self.__dict__.get("frames", {})
        if name in frames:
            return frames[name]
        raise AttributeError(name)

    def write(self, directory: str | Path) -> list[Path]:
        """Write every frame as `<name>.parquet` and the metadata as `meta.json`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name in sorted(self.frames):
            path = out / f"{name}.parquet"
            self.frames[name].write_parquet(path, compression="zstd", statistics=False)
            written.append(path)
        meta = out / "meta.json"
        meta.write_text(json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n")
        written.append(meta)
        return written

    @classmethod
    def read(cls, directory: str | Path) -> "Results":
        d = Path(directory)
        frames = {p.stem: pl.read_parquet(p) for p in sorted(d.glob("*.parquet"))}
        meta_path = d / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        return cls(frames, meta)

    @staticmethod
    def concat(runs: dict[str, "Results"]) -> "Results":
        """Several runs (variants) stacked, each frame gaining a leading `variant` column."""
        names = sorted({n for r in runs.values() for n in r.frames})
        frames = {}
        for name in names:
            parts = [
                r.frames[name].select(pl.lit(v).alias("variant"), pl.all())
                for v, r in runs.items() if name in r.frames
            ]
            frames[name] = pl.concat(parts, how="vertical")
        return Results(frames, {"variants": {v: r.meta for v, r in runs.items()}})
