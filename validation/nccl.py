"""Validation of the NCCL model (`--collectives nccl`): busbw against size on the shipped hardware presets.

For every preset and collective, nccl-tests' busbw at sizes from 8 B to 4 GiB three ways:
  ideal   netsim's algorithm `auto` picks, every link at line rate, no software latency
  nccl    NCCL's tuner picks algorithm and protocol; the call runs on the fabric with the protocol's lines,
          NCCL's per-hop latencies and its channels' caps (what `netsim bench --collectives nccl` does)
  tuner   NCCL's own estimate of the same pick (latency + bytes / bandwidth), no fabric at all
and the tuner's pick when an algorithm netsim has no schedule for yet (NVLS all-gather / reduce-scatter, CollNet,
PAT on other than a power-of-two number of ranks) would win (`nccl` then runs the best of what netsim has). Nothing is fitted: every constant is NCCL's or the vendor's.

Run: .venv/bin/python validation/nccl.py   (about 10 s; writes out/validation/nccl.txt and nccl.png)
"""

from __future__ import annotations

import sys

from netsim.collectives.nccl import choose, nccl_system
from netsim.topology import load_topology
from netsim.units import format_size
from netsim.workloads import run_bench
from text_report import publish, results_dir, snapshot  # a sibling: validation/ is on the path

PRESETS = [("h100_sxm8", 8, 90), ("h200_sxm8", 8, 90), ("h100_ib_rail64", 16, 90), ("h100_roce_rail64", 16, 90),
           ("pcie4_a10", 4, 86)]
OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast")
SIZES = [8, 64 * 2**10, 2**20, 16 * 2**20, 256 * 2**20, 4 * 2**30]
PLOT_SIZES = [2**k for k in range(10, 33, 2)]  # 1 KiB .. 4 GiB, for the figure


def main() -> int:
    lines = ["busbw (GB/s) against size: ideal = netsim at line rate; nccl = NCCL's pick run on the fabric;",
             "tuner = NCCL's own estimate of that pick. 'best' = what NCCL's tuner would pick over all algorithms.", ""]
    for name, ranks, arch in PRESETS:
        topo = load_topology(name)
        system = nccl_system(topo, topo.gpus[:ranks], arch=arch)
        lines.append(f"{name}: {ranks} GPUs on {system.nodes} node(s), {system.intra}, sm {arch}; ring {system.ring.channels}"
                     f" channels x {system.ring.intra:g} GB/s" + (f", NVLS {system.nvls.channels} x {system.nvls.intra:g}"
                                                                  if system.nvls else ""))
        for op in OPS:
            ideal = run_bench(topo, op, SIZES, ["auto"], ranks=ranks)
            nccl = run_bench(topo, op, SIZES, ["auto"], ranks=ranks, collectives="nccl", arch=arch)
            lines.append(f"  {op:<15} {'size':>8} {'ideal':>8} {'nccl':>8} {'tuner':>8} {'nccl/ideal':>10}  pick "
                         f"(best)")
            for i, size in enumerate(SIZES):
                pick = choose(system, op, size, runnable=True)
                best = choose(system, op, size)
                factor = nccl[i].busbw_Bps / nccl[i].algbw_Bps if nccl[i].algbw_Bps else 0.0
                tuner = size / pick.time_s * factor
                ratio = nccl[i].time_s / ideal[i].time_s if ideal[i].time_s else float("nan")
                lines.append(f"  {'':<15} {format_size(size):>8} {ideal[i].busbw_Bps / 1e9:>8.2f} "
                             f"{nccl[i].busbw_Bps / 1e9:>8.2f} {tuner / 1e9:>8.2f} {ratio:>9.2f}x  {pick.name}"
                             + ("" if best.name == pick.name else f" ({best.name})"))
        lines.append("")
    lines += [
        "What separates the columns. ideal -> nccl: NCCL's latencies (a ring all-reduce on one H100 box pays 15 us",
        "in LL, 56 us in Simple, before any byte moves) and its channel caps (12 channels x 30 GB/s = 360 GB/s per",
        "GPU on the H100 box, against 450 GB/s of NVLink; on the A10 box both stop at the measured 12.9 GB/s per",
        "connection). tuner -> nccl: the fabric itself: path latencies on every step and every pipelined chunk,",
        "pipeline fill (broadcast chains; NCCL's tree, run as nccl_tree: a chain of 8 in each server and a double",
        "binary tree across, per channel, whose fill the tuner's estimate leaves out at 4-64 MiB). NVLS all-reduce",
        "runs as netsim's nvls (up to the switch, the sum down, pipelined); where 'best' differs from the pick,",
        "NCCL would run an NVLS all-gather or reduce-scatter, which netsim does not simulate yet.",
    ]
    publish("nccl", lines)
    figure()
    return 0


def figure() -> None:
    """All-reduce busbw against size on each preset: ideal, NCCL's model run on the fabric, NCCL's estimate."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    shown = [p for p in PRESETS if p[0] in ("h100_sxm8", "h100_ib_rail64", "pcie4_a10")]
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=[f"{n} ({r} GPUs)" for n, r, _ in shown])
    for col, (name, ranks, arch) in enumerate(shown, start=1):
        topo = load_topology(name)
        system = nccl_system(topo, topo.gpus[:ranks], arch=arch)
        ideal = run_bench(topo, "all_reduce", PLOT_SIZES, ["auto"], ranks=ranks)
        nccl = run_bench(topo, "all_reduce", PLOT_SIZES, ["auto"], ranks=ranks, collectives="nccl", arch=arch)
        tuner = [s / choose(system, "all_reduce", s, runnable=True).time_s * 2 * (ranks - 1) / ranks / 1e9
                 for s in PLOT_SIZES]
        for label, ys, dash, colour in (("ideal", [r.busbw_Bps / 1e9 for r in ideal], "dot", "#4c78a8"),
                                        ("nccl (on the fabric)", [r.busbw_Bps / 1e9 for r in nccl], "solid", "#e45756"),
                                        ("NCCL's estimate", tuner, "dash", "#54a24b")):
            fig.add_trace(go.Scatter(x=PLOT_SIZES, y=ys, name=label, mode="lines+markers",
                                     line=dict(dash=dash, color=colour),
                                     legendgroup=label, showlegend=col == 1), row=1, col=col)
        fig.update_xaxes(type="log", title_text="size (B)", row=1, col=col)
    fig.update_yaxes(title_text="all-reduce busbw (GB/s)", row=1, col=1)
    fig.update_layout(height=460, width=1400, margin=dict(t=60, b=60))
    snapshot(fig, results_dir() / "nccl.png", 1400, 480)


if __name__ == "__main__":
    sys.exit(main())
