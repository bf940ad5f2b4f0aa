"""`python -m netsim.cli.warm`: compile netsim's numba kernels into numba's on-disk cache ahead of the first run.

The kernels (`network/fluid_kernel.py`, `routing/ecmp.py`, `topology/paths.py`, the link meter's in
`telemetry.py`) are compiled on first use and
cached in the `__pycache__` beside their file (or under NUMBA_CACHE_DIR), keyed by the file's contents and the
CPU; a run that finds the cache empty spends 10-20 s compiling before it simulates. `make run` and `make test`
run this after installing (and again after a kernel file changes), so the first `netsim run` starts at once;
after a `pip install` of netsim, run it once, with the same NUMBA_CACHE_DIR (if any) as the runs will have.

It runs what compiles the kernels with the very argument types the runs pass: the built-in scenario (the
compiled dataflow loop, ECMP's walks, the path searches: what `netsim run` uses) and a few transfers started
from Python, with a link failing under them (the per-event kernels and the reroute: what `compare-routing`,
`faults` and the `transfer` API use), a compressed ring (`--compress`), ECMP's walk through gateways (what
a step to tens of thousands of GPUs takes) and its batch of repeated pairs (a chunked collective's). Nothing is
written but the cache.
"""

from __future__ import annotations

import sys
import time


def warm() -> None:
    """Compile (or load from the cache) every kernel a run uses."""
    import numpy as np

    from netsim.collectives import Communicator
    from netsim.routing import Router
    from netsim.scenario import default_scenario, run_scenario
    from netsim.sim import Simulation
    from netsim.telemetry import LinkMeter
    from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine

    run_scenario(default_scenario())

    topo = leaf_spine(LeafSpineSpec(leaves=2, spines=2, hosts_per_leaf=4, spine_bandwidth=1e9,
                                    host=HostSpec(nic_bandwidth=1e9, pcie_bandwidth=1e12)))
    sim = Simulation(topo)
    leaf = topo.attrs["leaf"]
    left, right = ([int(g) for g in topo.gpus if leaf[g] == i] for i in (0, 1))

    def send(at: float, src: int, dst: int):
        yield sim.env.timeout(at)
        yield sim.network.transfer(src, dst, 2**22)

    for i, (a, b) in enumerate(zip(left, right)):  # across the spines, one pair a little later than the others
        sim.process(send(1e-3 if i == 0 else 0.0, a, b))
    sim.schedule_fault(2e-3, topo.links_named("leaf0<->spine0"))  # under the flows: they move
    sim.run()

    sim = Simulation(topo, record_links=False, transfers="drop", compress=4)
    sim.run(Communicator(sim, topo.gpus).run("all_reduce", 2**20, algo="ring"))
    router = Router(topo, "ecmp", 0)
    router.cache.DENSE_CELLS = 0  # this cache only: distances asked through gateways, as for a huge batch
    router.single_paths(topo.gpus, np.roll(topo.gpus, -1), ("warm",))
    router.single_paths(np.tile(topo.gpus, 2), np.tile(np.roll(topo.gpus, -1), 2), ("warm",))  # pairs repeated
    meter = LinkMeter(4, nbins=4)  # the link meter's binning and coarsening (a run's coarsens only once it binned)
    meter.add(0.0, 1e-6, None, np.ones(4))
    meter.reach(1.0)


def main() -> int:
    start = time.perf_counter()
    warm()
    print(f"netsim: compiled kernels cached ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
