"""Optional cross-check: ring all-reduce in SimGrid (flow-level, CM02 model, cross-traffic off) against netsim.

SimGrid is not a netsim dependency. Install Debian's `python3-simgrid` (apt-get install
python3-simgrid) and run this with netsim's interpreter:

    .venv/bin/python validation/simgrid_crosscheck.py

It runs the SimGrid side in the system interpreter (/usr/bin/python3, which has the module)
and netsim in its own. Without SimGrid it prints a notice and exits 0. The fabric is a star: n hosts, each with its own
full-duplex link (bandwidth B, latency a) to a non-blocking switch, the same as netsim's
`single_switch(n, B, a)`; a ring step crosses two links, so alpha = 2a.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

BW, LAT = 12.5e9, 1e-6
CASES = [(4, 2**24), (8, 2**26), (16, 2**26)]


def platform(n: int) -> str:
    hosts = "\n".join(f'    <host id="h{i}" speed="1Gf"/>' for i in range(n))
    links = "\n".join(f'    <link id="l{i}" bandwidth="{BW}Bps" latency="{LAT}s" sharing_policy="SPLITDUPLEX"/>'
                      for i in range(n))
    routes = "\n".join(
        f'    <route src="h{i}" dst="h{j}" symmetrical="NO"><link_ctn id="l{i}" direction="UP"/>'
        f'<link_ctn id="l{j}" direction="DOWN"/></route>'
        for i in range(n) for j in range(n) if i != j)
    return ("<?xml version='1.0'?>\n<!DOCTYPE platform SYSTEM \"https://simgrid.org/simgrid.dtd\">\n"
            f'<platform version="4.1">\n  <zone id="star" routing="Full">\n{hosts}\n{links}\n{routes}\n'
            "  </zone>\n</platform>\n")


def simgrid_ring_all_reduce(n: int, size: int) -> float:
    import simgrid

    engine = simgrid.Engine(["crosscheck", "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0",
                             "--log=root.thres:critical"])
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        f.write(platform(n))
    engine.load_platform(f.name)
    piece = size // n

    def rank(r: int) -> None:
        inbox = simgrid.Mailbox.by_name(f"r{r}")
        nxt = simgrid.Mailbox.by_name(f"r{(r + 1) % n}")
        for step in range(2 * (n - 1)):
            comm = nxt.put_async(step, piece)
            inbox.get()
            comm.wait()

    for r in range(n):
        simgrid.Actor.create(f"rank{r}", engine.host_by_name(f"h{r}"), rank, r)
    start = simgrid.Engine.clock  # one process keeps one clock across engines
    engine.run()
    Path(f.name).unlink()
    return simgrid.Engine.clock - start


SYSTEM_PYTHON = "/usr/bin/python3"


def simgrid_times() -> list[float] | None:
    """SimGrid's times for CASES, from this interpreter or the system one; None without SimGrid."""
    try:
        import simgrid  # noqa: F401
    except ImportError:
        if sys.executable == SYSTEM_PYTHON or not Path(SYSTEM_PYTHON).exists():
            return None
        done = subprocess.run([SYSTEM_PYTHON, __file__, "--simgrid-only"], capture_output=True, text=True)
        if done.returncode != 0:
            return None
        return [float(x) for x in done.stdout.split()]
    return [simgrid_ring_all_reduce(n, size) for n, size in CASES]


def main() -> int:
    if "--simgrid-only" in sys.argv:
        times = [simgrid_ring_all_reduce(n, size) for n, size in CASES]
        print(" ".join(repr(t) for t in times))
        return 0
    times = simgrid_times()
    if times is None:
        print("SimGrid (python3-simgrid) is not installed: cross-check skipped.")
        return 0
    from netsim.collectives import Communicator, ring_all_reduce_time
    from netsim.sim import Simulation
    from netsim.topology import single_switch

    print(f"{'ranks':>5} {'bytes':>10} {'simgrid s':>14} {'netsim s':>14} {'closed form s':>14} {'rel diff':>9}")
    for (n, size), sg in zip(CASES, times):
        topo = single_switch(n, BW, LAT)
        sim = Simulation(topo, record_links=False)
        comm = Communicator(sim, topo.gpus)
        sim.run(comm.all_reduce(size, algo="ring"))
        closed = ring_all_reduce_time(n, size, 2 * LAT, BW)
        print(f"{n:>5} {size:>10} {sg:>14.9f} {sim.now:>14.9f} {closed:>14.9f} {abs(sim.now - sg) / sg:>9.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
