"""`Results`: the polars frames of a run, written to and read back from Parquet."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


# op -> bus-bandwidth factor of n ranks (nccl-tests' convention); `netsim.collectives` fills it in
BUSBW_FACTORS: dict = {}


@dataclass
class Results:
    """Frames by name (`transfers`, `collectives`, `links`, `link_timeline`, ...) plus run metadata."""

    frames: dict[str, pl.DataFrame]
    meta: dict = field(default_factory=dict)

    def __getattr__(self, name: str) -> pl.DataFrame:
        frames = self.__dict__.get("frames", {})
        if name in frames:
            return frames[name]
        meta = self.__dict__.get("meta", {})
        if name in meta.get("dropped", ()):
            raise AttributeError(f"{name}: this run kept none (Simulation({name}='drop'))")
        if name in meta.get("streamed", {}):
            raise AttributeError(f"{name}: streamed to {meta['streamed'][name]} as Parquet parts (Results.read of "
                                 f"a folder reads its {name}/ parts)")
        raise AttributeError(name)

    def summary(self) -> pl.DataFrame:
        """One row per collective call: label, op, ranks, `size_B`, `start_s`, `time_s`, `algbw_Bps` (bytes / time)
        and `busbw_Bps` (algbw x the nccl-tests factor of the op; null where the op has none or no time passed).

        >>> from netsim import Communicator, Simulation, load_topology
        >>> sim = Simulation(load_topology("nvlink8"), record_links=False)
        >>> results = sim.run(Communicator(sim, sim.topology.gpus).all_reduce("1GiB"))
        >>> row = results.summary().row(0, named=True)
        >>> row["op"], round(row["time_s"] * 1e3, 3), round(row["busbw_Bps"] / 1e9, 1)
        ('all_reduce', 4.19, 448.5)
        """
        schema = {"label": pl.Utf8, "op": pl.Utf8, "ranks": pl.Int64, "size_B": pl.Int64, "start_s": pl.Float64,
                  "time_s": pl.Float64, "algbw_Bps": pl.Float64, "busbw_Bps": pl.Float64}
        c = self.frames.get("collectives")
        if c is None or not len(c):
            return pl.DataFrame(schema=schema)
        rows = []
        for r in c.iter_rows(named=True):
            seconds = r["end_s"] - r["start_s"]
            algbw = r["size_B"] / seconds if seconds > 0 else None
            factor = BUSBW_FACTORS.get(r["op"])
            rows.append({"label": r["label"], "op": r["op"], "ranks": r["ranks"], "size_B": r["size_B"],
                         "start_s": r["start_s"], "time_s": seconds, "algbw_Bps": algbw,
                         "busbw_Bps": None if algbw is None or factor is None else algbw * factor(r["ranks"])})
        return pl.DataFrame(rows, schema=schema)

    def __repr__(self) -> str:
        frames = ", ".join(f"{name}: {len(frame):,} rows" for name, frame in sorted(self.frames.items()))
        end = self.meta.get("end_time")
        return f"Results({frames}" + (f"; ended at {end:.6g} s" if isinstance(end, (int, float)) else "") + ")"

    def _repr_html_(self) -> str:
        import html

        return f"<p>{html.escape(repr(self))}</p>" + self.summary()._repr_html_()

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
        """The frames of `write` (`<name>.parquet`), and those streamed as parts (`<name>/part-*.parquet`: a
        streamed run's transfers, rows in id order)."""
        d = Path(directory)
        frames = {p.stem: pl.read_parquet(p) for p in sorted(d.glob("*.parquet"))}
        for folder in sorted(p for p in d.iterdir() if p.is_dir() and p.name not in frames):
            parts = sorted(folder.glob("part-*.parquet"))
            if parts:
                frame = pl.concat([pl.read_parquet(p) for p in parts])
                frames[folder.name] = frame.sort("id") if "id" in frame.columns else frame
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
        meta = {"variants": {v: r.meta for v, r in runs.items()}}
        dropped = set.intersection(*(set(r.meta.get("dropped", ())) for r in runs.values())) if runs else set()
        if dropped:  # what no run kept
            meta["dropped"] = sorted(dropped)
        return Results(frames, meta)
