"""SimGrid peer for speed benchmarks: run netsim's flows, on netsim's paths, in SimGrid 3.32 (CM02).

Benchmark-only: netsim never needs SimGrid at run time, and nothing in `netsim` imports this file.
It lets a benchmark time SimGrid on exactly the transfers netsim simulated and check that both
agree on the simulated time.

Installing SimGrid: Debian ships the Python module as `python3-simgrid` (SimGrid 3.32)::

    apt-get install -y python3-simgrid

It is importable only by the system interpreter (/usr/bin/python3), not by netsim's venv, so
the two halves of this file run in different interpreters:

* netsim side (netsim's venv, no simgrid import): `export(...)` (or `from_collective(...)`, which
  calls it for a collective of a `Communicator`) turns a schedule and the paths netsim's router
  chose into a JSON-able description; `run_simgrid(description)` writes it to a temporary file,
  runs ``/usr/bin/python3 benchmarks/simgrid_peer.py FILE.json`` and returns the parsed result
  (None when the system interpreter cannot import simgrid).
* SimGrid side (``/usr/bin/python3 benchmarks/simgrid_peer.py FILE.json [--latency cm02|netsim]
  [--platform api|xml]``): builds the platform, runs the steps and prints one JSON line:
  ``{"sim_time": ..., "wall_s": ..., "setup_s": ..., "run_s": ..., "transfers": ...}``.

Self-check (netsim's venv): ``.venv/bin/python benchmarks/simgrid_peer.py --selftest``.

The SimGrid model
-----------------
CM02 (``network/model:CM02``: latency and bandwidth factors 1, weight-S 0), cross-traffic off
(``network/crosstraffic:0``: no 5 % reverse "ack" flow), and ``network/TCP-gamma`` set to netsim's
``streams x tcp_window`` (0, i.e. no window bound, by default: SimGrid's default of 4 MiB would cap
every flow at gamma / (2 x path latency), which netsim does not do unless asked). Every directed
netsim link becomes its own SimGrid link with the SHARED policy (a full-duplex cable is two links,
as in netsim), and every (source, destination) host pair gets the one path netsim used, in a
Full zone.

Latency: netsim lets a transfer's bytes drain at its max-min rate from the instant it starts and
delivers it one path latency (the sum of its links' latencies) after the last byte left. CM02
counts the same sum once, but first: a flow takes no bandwidth during its latency, then drains.
For a single transfer both give latency + size / rate. Under contention they differ in two ways:
flows with different latencies start competing at different instants, and CM02 shares bandwidth
in proportion to 1 / latency (its "TCP RTT-unfairness": a flow's max-min weight is its path
latency), where netsim's max-min is unweighted. Symmetric collectives (a ring on a star) do not
see this; an all-to-all mixing 2-hop and 4-hop paths does. ``--latency netsim`` (``latency=
"netsim"``) runs SimGrid with zero-latency links (CM02 then shares plainly, every flow weight 1)
and counts each arrival one path latency after its bytes drained, netsim's rule, so the two
flow-sharing engines can be compared on their own.

Dependency rule (netsim's schedule executor): each virtual rank is an actor on its rank's host;
it enters step k once it has received every transfer addressed to it in steps < k (and, with
``wait_sends``, once its own step k - 1 sends have arrived) and then starts (asynchronous put)
all its step-k sends. Every receive is posted at time 0 on a mailbox per (rank, step), so each
transfer starts the instant its sender puts it. The makespan is the last arrival.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

SYSTEM_PYTHON = "/usr/bin/python3"
FORMAT = "netsim-simgrid-peer/1"
LATENCY_MODES = ("cm02", "netsim")
PLATFORMS = ("api", "xml", "cluster")  # cluster: SimGrid's own FAT_TREE cluster zone (desc["cluster"])
DEFAULT_PLATFORM = "api"  # a little faster than writing and parsing XML (see `build_platform`)


# --------------------------------------------------------------------------------------------
# netsim side (netsim's venv; never imports simgrid)
# --------------------------------------------------------------------------------------------

def _step_triples(step: Any) -> list[list[int]]:
    """A step as [[src_rank, dst_rank, nbytes], ...], from a netsim `Step` or (src, dst, nbytes) triples."""
    if hasattr(step, "src"):
        return [[int(s), int(d), int(b)] for s, d, b in zip(step.src.tolist(), step.dst.tolist(), step.nbytes.tolist())]
    return [[int(s), int(d), int(b)] for s, d, b in step]


def export(topology: Any, schedule_steps: Iterable[Any], node_of: Sequence[int],
           routes: Mapping[tuple[int, int], Sequence[int]], *, wait_sends: bool = False,
           tcp_gamma: float = 0.0) -> dict:
    """A JSON-able description of a schedule on `topology` for the SimGrid side.

    schedule_steps: netsim `Step`s (src/dst/nbytes arrays of virtual ranks) or lists of
    (src_rank, dst_rank, nbytes). node_of[v]: the GPU node of virtual rank v. routes:
    (src_node, dst_node) -> the link ids netsim's router chose for that pair (one path per pair;
    only the pairs the steps use are kept). wait_sends: the schedule's flag of that name.
    tcp_gamma: SimGrid's TCP-gamma (netsim's streams x tcp_window; 0: no window bound).

    The description holds only what the steps use: `hosts` (node ids, SimGrid host "n<id>"),
    `links` ([id, bandwidth B/s, latency s], SimGrid link "l<id>"), `routes` ([src_node,
    dst_node, [link ids]]), `ranks` (node_of), `steps` ([[src_rank, dst_rank, nbytes], ...] per step).
    """
    node_of = [int(x) for x in node_of]
    steps = [_step_triples(s) for s in schedule_steps]
    pairs: dict[tuple[int, int], list[int]] = {}
    for step in steps:
        for s, d, _ in step:
            a, b = node_of[s], node_of[d]
            if a == b:
                raise ValueError(f"ranks {s} and {d} share node {a}: same-node transfers are not modelled")
            if (a, b) not in pairs:
                if (a, b) not in routes:
                    raise ValueError(f"no route for node pair {(a, b)}")
                path = [int(l) for l in routes[(a, b)]]
                _check_path(topology, a, b, path)
                pairs[(a, b)] = path
    used = sorted({l for p in pairs.values() for l in p})
    return {
        "format": FORMAT,
        "topology": getattr(topology, "name", ""),
        "hosts": sorted({n for pair in pairs for n in pair}),
        "links": [[l, float(topology.capacity[l]), float(topology.latency[l])] for l in used],
        "routes": [[a, b, p] for (a, b), p in sorted(pairs.items())],
        "ranks": node_of,
        "steps": steps,
        "wait_sends": bool(wait_sends),
        "tcp_gamma": float(tcp_gamma),
    }


def _check_path(topology: Any, src: int, dst: int, path: list[int]) -> None:
    node = src
    for l in path:
        if int(topology.link_src[l]) != node:
            raise ValueError(f"route {src}->{dst}: link {l} does not leave node {node}")
        node = int(topology.link_dst[l])
    if node != dst or not path:
        raise ValueError(f"route {src}->{dst} ends at node {node}, not {dst}")


def netsim_routes(sim: Any, schedule: Any, key: tuple) -> dict[tuple[int, int], tuple[int, ...]]:
    """The path netsim's router gives each (src_node, dst_node) pair of `schedule`.

    Asks the router exactly as the executor does: per step, `route_batch(src nodes, dst nodes,
    key)`, with `key + (channel,)` per channel when the schedule has channels (a Communicator's
    key is (job, name)). Routes are cached per (src, dst, key), so these are the paths the run
    used (or will use). Raises ValueError for routes split over several paths, or for a pair
    routed two different ways (by two channels): SimGrid's Full zone holds one path per pair.
    """
    router, node_of, channels = sim.router, schedule.node_of, schedule.channel_of
    if router.learns:
        raise ValueError("a routing policy that learns as it goes has no fixed paths to export")
    out: dict[tuple[int, int], tuple[int, ...]] = {}
    for step in schedule.steps:
        groups = [(step.src, step.dst, key)] if channels is None else [
            (step.src[channels[step.src] == c], step.dst[channels[step.src] == c], key + (int(c),))
            for c in sorted(set(channels[step.src].tolist()))]
        for src, dst, k in groups:
            a, b = node_of[src].tolist(), node_of[dst].tolist()
            for s, d, r in zip(a, b, router.route_batch(a, b, k)):
                if len(r.paths) != 1:
                    raise ValueError(f"route {s}->{d} uses {len(r.paths)} paths; SimGrid needs one")
                if out.setdefault((s, d), r.paths[0]) != r.paths[0]:
                    raise ValueError(f"pair {s}->{d} routed two ways (channels); SimGrid needs one")
    return out


def from_collective(sim: Any, comm: Any, op: str, nbytes: int, algo: str = "auto", chunks: int = 1,
                    root: int = 0) -> dict:
    """`export` of collective `op` as `comm` (a netsim `Communicator` on `sim`) builds and routes it.

    Call it before or after running the same collective in `sim`: the schedule is rebuilt the same
    way and the router (not a learning one) gives the same paths. The run's network options map
    onto SimGrid only as far as tcp_window x streams -> TCP-gamma; overhead and rate caps raise.
    """
    schedule = comm.schedule(op, nbytes, algo, chunks, root)
    if schedule.follower is not None:
        raise ValueError("in-order pipelined lanes (Schedule.follower) are not supported; use chunks=1")
    opts = sim.network.options
    if opts.overhead or opts.flow_rate_cap is not None or opts.endpoint_rate_cap is not None:
        raise ValueError("overhead and rate caps have no SimGrid counterpart here")
    gamma = opts.streams * opts.tcp_window if opts.tcp_window is not None else 0.0
    routes = netsim_routes(sim, schedule, (comm.job, comm.name))
    return export(sim.topology, schedule.steps, schedule.node_of, routes, wait_sends=schedule.wait_sends,
                  tcp_gamma=gamma)


@lru_cache(maxsize=1)
def simgrid_available() -> bool:
    """Whether the system interpreter can import simgrid (checked once per process)."""
    if not Path(SYSTEM_PYTHON).exists():
        return False
    done = subprocess.run([SYSTEM_PYTHON, "-c", "import simgrid"], capture_output=True)
    return done.returncode == 0


def run_simgrid(description: dict, *, latency: str = "cm02", platform: str = DEFAULT_PLATFORM,
                timeout: float | None = None) -> dict | None:
    """Run `description` in SimGrid (system interpreter, subprocess); None without SimGrid.

    Returns the SimGrid side's JSON: sim_time (makespan, s), setup_s (engine, platform and
    actors), run_s (engine.run), wall_s (their sum), transfers, and what was built.
    """
    if latency not in LATENCY_MODES or platform not in PLATFORMS:
        raise ValueError(f"latency must be one of {LATENCY_MODES}, platform one of {PLATFORMS}")
    if not simgrid_available():
        return None
    fd, name = tempfile.mkstemp(prefix="simgrid_peer_", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(description, f)
        done = subprocess.run([SYSTEM_PYTHON, str(Path(__file__).resolve()), name, "--latency", latency,
                               "--platform", platform], capture_output=True, text=True, timeout=timeout)
    finally:
        os.unlink(name)
    if done.returncode != 0:
        raise RuntimeError(f"SimGrid side failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# SimGrid side (system interpreter)
# --------------------------------------------------------------------------------------------

def _platform_xml(desc: dict, latency: str) -> str:
    lines = ["<?xml version='1.0'?>", '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
             '<platform version="4.1">', '<zone id="net" routing="Full">']
    lines += [f'<host id="n{h}" speed="1Gf"/>' for h in desc["hosts"]]
    lines += [f'<link id="l{l}" bandwidth="{bw!r}Bps" latency="{(lat if latency == "cm02" else 0.0)!r}s"/>'
              for l, bw, lat in desc["links"]]
    for a, b, path in desc["routes"]:
        ctn = "".join(f'<link_ctn id="l{l}"/>' for l in path)
        lines.append(f'<route src="n{a}" dst="n{b}" symmetrical="NO">{ctn}</route>')
    lines += ["</zone>", "</platform>", ""]
    return "\n".join(lines)


def _cluster_xml(desc: dict, latency: str) -> str:
    """The fabric as SimGrid's users describe a leaf-spine: one cluster zone with a two-level FAT_TREE
    (hosts_per_leaf hosts under each of the leaves, every leaf under each spine), uniform links, each
    direction its own capacity (SPLITDUPLEX, as netsim's directed links). SimGrid routes it itself."""
    c = desc["cluster"]
    lat = c["latency"] if latency == "cm02" else 0.0
    return "\n".join([
        "<?xml version='1.0'?>", '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">',
        '<platform version="4.1">',
        f'<cluster id="net" prefix="h" suffix="" radical="0-{len(c["order"]) - 1}" speed="1Gf" '
        f'bw="{c["bandwidth"]!r}Bps" lat="{lat!r}s" sharing_policy="SPLITDUPLEX" topology="FAT_TREE" '
        f'topo_parameters="2;{c["hosts_per_leaf"]},{c["leaves"]};1,{c["spines"]};1,1"/>',
        "</platform>", ""])


def host_name(desc: dict, platform: str) -> dict[int, str]:
    """netsim node -> SimGrid host name: "n<node>", or in the cluster "h<i>" for its i-th host (fat-tree order)."""
    if platform == "cluster":
        return {int(node): f"h{i}" for i, node in enumerate(desc["cluster"]["order"])}
    return {int(node): f"n{node}" for node in desc["hosts"]}


def build_platform(simgrid: Any, engine: Any, desc: dict, latency: str, platform: str) -> None:
    """The Full zone: one host per node, one SHARED link per directed netsim link, one route per pair.

    "api" builds it through the s4u Python API (NetZone.create_full_zone / create_host /
    create_link / add_route); "xml" writes a platform file and loads it. For 128 hosts, 576 links
    and 16,256 routes of 4-6 links (an all-to-all on a leaf-spine) the API took ~0.035 s and XML
    ~0.05 s (0.015 s writing, the rest parsing), so "api" is the default; both are small next to
    the actors' setup and the run.
    """
    if platform in ("xml", "cluster"):
        with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
            f.write(_platform_xml(desc, latency) if platform == "xml" else _cluster_xml(desc, latency))
        try:
            engine.load_platform(f.name)
        finally:
            os.unlink(f.name)
        return
    zone = simgrid.NetZone.create_full_zone("net")
    points = {h: zone.create_host(f"n{h}", 1e9).seal().netpoint for h in desc["hosts"]}
    links = {}
    for l, bw, lat in desc["links"]:  # create_link's default sharing policy is SHARED
        links[l] = simgrid.LinkInRoute(zone.create_link(f"l{l}", bw).set_latency(lat if latency == "cm02" else 0.0)
                                       .seal())
    for a, b, path in desc["routes"]:
        zone.add_route(points[a], points[b], None, None, [links[l] for l in path], False)
    zone.seal()


def simulate(desc: dict, latency: str = "cm02", platform: str = DEFAULT_PLATFORM) -> dict:
    """Run the description in SimGrid in this (system) interpreter; the result dict `run_simgrid` returns."""
    import simgrid

    t0 = time.perf_counter()
    engine = simgrid.Engine(["simgrid_peer", "--cfg=network/model:CM02", "--cfg=network/crosstraffic:0",
                             f"--cfg=network/TCP-gamma:{desc.get('tcp_gamma', 0.0)!r}", "--log=root.thres:critical"])
    build_platform(simgrid, engine, desc, latency, platform)

    ranks = desc["ranks"]
    link_latency = {l: lat for l, _, lat in desc["links"]}
    path_latency = {(a, b): sum(link_latency[l] for l in p) for a, b, p in desc["routes"]}
    # Per virtual rank: its sends per step and how many transfers it receives per step.
    sends: list[dict[int, list[tuple[int, int]]]] = [{} for _ in ranks]
    recvs: list[dict[int, int]] = [{} for _ in ranks]
    transfers = 0
    for k, step in enumerate(desc["steps"]):
        for s, d, nbytes in step:
            sends[s].setdefault(k, []).append((d, nbytes))
            recvs[d][k] = recvs[d].get(k, 0) + 1
            transfers += 1
    wait_sends = bool(desc.get("wait_sends", False))
    netsim_latency = latency == "netsim"
    gamma = float(desc.get("tcp_gamma", 0.0))
    last, total = [0.0], [0.0]  # the latest arrival seen, the sum of all arrival times

    def mailbox(v: int, k: int) -> Any:
        return simgrid.Mailbox.by_name(f"{v}:{k}")

    def arrived(gets: list) -> None:
        """Wait for these receives; with netsim latency, also for their path latency after the drain."""
        simgrid.Comm.wait_all([c for c, _ in gets])
        if netsim_latency:  # the payload is the transfer's path latency
            times = [c.finish_time + data.get() for c, data in gets]
        else:
            times = [c.finish_time for c, _ in gets]
        total[0] += sum(times)
        t = max(times)
        if t > simgrid.Engine.clock:
            simgrid.this_actor.sleep_until(t)
        last[0] = max(last[0], t)

    def rank(v: int) -> None:
        me = ranks[v]
        # every receive posted up front, so a transfer starts the moment its sender puts it
        gets = {k: [mailbox(v, k).get_async() for _ in range(n)] for k, n in sorted(recvs[v].items())}
        pending_gets = sorted(gets)
        puts: list = []
        for k in sorted(sends[v]):
            while pending_gets and pending_gets[0] < k:  # enter step k: steps < k all received
                arrived(gets[pending_gets.pop(0)])
            if wait_sends and puts:  # blocking send-receive: own sends of earlier steps arrived too
                simgrid.Comm.wait_all([c for c, _ in puts])
                t = max(c.finish_time + lat for c, lat in puts) if netsim_latency else simgrid.Engine.clock
                if t > simgrid.Engine.clock:
                    simgrid.this_actor.sleep_until(t)
                puts = []
            for d, nbytes in sends[v][k]:
                lat = path_latency[(me, ranks[d])]
                if netsim_latency and gamma > 0 and lat > 0:  # netsim's TCP cap: gamma / (2 x latency)
                    comm = mailbox(d, k).put_init(lat, nbytes)
                    comm.set_rate(gamma / (2 * lat))
                    puts.append((comm.start(), lat))
                else:
                    puts.append((mailbox(d, k).put_async(lat, nbytes), lat))
        while pending_gets:
            arrived(gets[pending_gets.pop(0)])
        simgrid.Comm.wait_all([c for c, _ in puts])

    names = host_name(desc, platform)
    for v, node in enumerate(ranks):
        simgrid.Actor.create(f"rank{v}", engine.host_by_name(names[node]), rank, v)
    t1 = time.perf_counter()
    start = simgrid.Engine.clock
    engine.run()
    t2 = time.perf_counter()
    return {"sim_time": last[0] - start, "mean_arrival": total[0] / max(transfers, 1) - start,
            "wall_s": t2 - t0, "setup_s": t1 - t0, "run_s": t2 - t1,
            "transfers": transfers, "hosts": len(desc["hosts"]), "links": len(desc["links"]),
            "routes": len(desc["routes"]), "latency": latency, "platform": platform}


# --------------------------------------------------------------------------------------------
# self-test (netsim's venv)
# --------------------------------------------------------------------------------------------

def _netsim_case(topo: Any, op: str, size: int, algo: str) -> tuple[dict, float, float, float]:
    """(description, netsim's simulated time, its mean arrival time, its wall time for setup + run)."""
    from netsim.collectives import Communicator
    from netsim.sim import Simulation

    t0 = time.perf_counter()
    sim = Simulation(topo, routing="ecmp", record_links=False)
    comm = Communicator(sim, topo.gpus)
    results = sim.run(comm.run(op, size, algo=algo))
    wall = time.perf_counter() - t0
    mean_arrival = float(results.transfers["end_s"].mean())
    return from_collective(sim, comm, op, size, algo), sim.now, mean_arrival, wall


def selftest() -> int:
    from netsim.topology import HostSpec, LeafSpineSpec, leaf_spine, single_switch

    if not simgrid_available():
        print(f"SimGrid is not importable by {SYSTEM_PYTHON} (apt-get install python3-simgrid): skipped.")
        return 0
    spec = LeafSpineSpec(leaves=4, spines=4, hosts_per_leaf=8, spine_bandwidth=12.5e9, spine_latency=1e-6,
                         host=HostSpec(nic_bandwidth=12.5e9, nic_latency=1e-6, pcie_bandwidth=64e9))
    cases = [
        ("ring all-reduce 64 MiB, single_switch(8)", single_switch(8, 12.5e9, 1e-6), "all_reduce", 2**26, "ring"),
        ("all-to-all 16 MiB/rank, leaf-spine 32, ECMP", leaf_spine(spec), "all_to_all", 2**24, "direct"),
    ]
    worst = 0.0  # makespans that must agree: the ring in both latency modes, everything with netsim latency
    print(f"{'case':<44} {'latency':>7} {'netsim s':>12} {'simgrid s':>12} {'rel diff':>9} {'mean arr':>9} "
          f"{'netsim wall':>11} {'sg setup':>9} {'sg run':>8}")
    for label, topo, op, size, algo in cases:
        desc, t_netsim, mean_netsim, wall = _netsim_case(topo, op, size, algo)
        for latency in LATENCY_MODES:
            sg = run_simgrid(desc, latency=latency)
            rel = abs(sg["sim_time"] - t_netsim) / t_netsim
            rel_mean = abs(sg["mean_arrival"] - mean_netsim) / mean_netsim
            if op == "all_reduce" or latency == "netsim":
                worst = max(worst, rel)
            print(f"{label:<44} {latency:>7} {t_netsim:>12.9f} {sg['sim_time']:>12.9f} {rel:>9.2e} "
                  f"{rel_mean:>9.2e} {wall:>10.3f}s {sg['setup_s']:>8.3f}s {sg['run_s']:>7.3f}s")
    print("rel diff: of the makespans; mean arr: of the mean transfer arrival times. Latency cm02: SimGrid's own\n"
          "model (latency first, bandwidth shared in proportion to 1 / path latency); netsim: zero-latency SimGrid\n"
          "links, each arrival one path latency after its bytes drained (netsim's rule). SimGrid's setup is the\n"
          "engine, platform and actor registration; its actors start (threads, posted receives) inside the run.")
    if worst > 1e-6:
        print(f"FAIL: makespans differ by up to {worst:.2e}")
        return 1
    print("OK")
    return 0


def main(argv: list[str]) -> int:
    if "--selftest" in argv:
        return selftest()
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("description", help="JSON file written by export()")
    parser.add_argument("--latency", choices=LATENCY_MODES, default="cm02")
    parser.add_argument("--platform", choices=PLATFORMS, default=DEFAULT_PLATFORM)
    args = parser.parse_args(argv)
    desc = json.loads(Path(args.description).read_text())
    if desc.get("format") != FORMAT:
        parser.error(f"{args.description} is not a {FORMAT} description")
    print(json.dumps(simulate(desc, args.latency, args.platform)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
