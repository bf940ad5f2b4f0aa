"""NCCL's cost model (netsim.collectives.nccl) against NCCL's formulas, and the calls it runs on a fabric."""

import pytest

from netsim.cli import main
from netsim.collectives.nccl import Graph, NcclSystem, choose, nccl_call, nccl_system, search_channels, tune
from netsim.topology import load_topology

H100 = NcclSystem(ranks=8, nodes=1, arch=90, intra="nvlink", ring=Graph(12, 30.0, 30.0), tree=Graph(12, 30.0, 30.0),
                  nvls=Graph(8, 40.0, 60.0))


def table(op, nbytes, system=H100):
    return {r.name: r for r in tune(system, op, nbytes)}


def test_the_h100_box_searches_into_nccls_channels():
    """18 NVLink 4 links, 20.6 GB/s each as NCCL counts them: 6 channels of 60 GB/s, doubled at half speed
    (12 x 30, what NCCL logs on HGX H100); NVLS one channel per GPU at 40 GB/s."""
    assert search_channels(18 * 20.6, 90) == Graph(12, 30.0, 30.0)
    s = nccl_system(load_topology("h100_sxm8"), load_topology("h100_sxm8").gpus)
    assert (s.nodes, s.intra, s.ring, s.ll128) == (1, "nvlink", Graph(12, 30.0, 30.0), True)
    assert (s.nvls.channels, s.nvls.intra, s.nvls.inter) == (8, 40, 60.0)
    a10 = nccl_system(load_topology("pcie4_a10"), load_topology("pcie4_a10").gpus, arch=86)
    assert (a10.intra, a10.ll128, a10.ring) == ("pci", False, Graph(2, 12, 12))  # no LL128 over PCIe


def test_latencies_and_bandwidths_follow_nccls_formulas():
    n, steps = 8, 14  # ring all-reduce: 2 (n - 1) steps
    t = table("all_reduce", 2**20)
    assert t["ring/LL"].latency_s == pytest.approx((6.6 + steps * 0.6) * 1e-6)
    assert t["ring/LL"].algbw_Bps == pytest.approx(min(141.0, 0.5 * 12 * 30) * n / steps * 1e9)
    assert t["ring/LL128"].algbw_Bps == pytest.approx(min(0.92 * 360, 12 * 36.7) * n / steps * 1e9)
    assert t["ring/Simple"].latency_s == pytest.approx((8.4 + steps * 3.4) * 1e-6)
    assert t["ring/Simple"].algbw_Bps == pytest.approx(360 * n / steps * 1e9)
    assert t["tree/Simple"].latency_s == pytest.approx((8.4 + 2 * 7 * 4.0) * 1e-6)
    log_size = 14  # 1 MiB = 64 B x 2^14: tree correction .5 for Simple
    assert t["tree/Simple"].algbw_Bps == pytest.approx(min(0.92 * 360, 12 * 38.7) * 0.5 * 0.5 * 1e9)
    assert t["nvls/Simple"].latency_s == pytest.approx(25e-6)
    assert t["nvls/Simple"].algbw_Bps == pytest.approx(8 * min(40 * 0.85 * 7 / 8 * 2, 60) * n / steps * 1e9)
    for r in t.values():
        assert r.time_s == pytest.approx(r.latency_s + 2**20 / r.algbw_Bps)
    assert log_size == 14 and "pat/Simple" not in t  # PAT: all-gather / reduce-scatter with one GPU per node
    assert set(table("broadcast", 2**20)) == {"ring/LL", "ring/LL128", "ring/Simple"}


def test_the_tuner_picks_the_least_time():
    # 1 MiB all-reduce: ring/LL 28.0 us just ahead of NVLS 28.9 us; 1 GiB: NVLS; an all-gather: the ring (NVLS
    # all-gather has no netsim schedule yet, but the ring's 411 GB/s beats its 208 anyway)
    assert choose(H100, "all_reduce", 2**20).name == "ring/LL"
    assert choose(H100, "all_reduce", 2**30).name == choose(H100, "all_reduce", 2**30, runnable=True).name == \
        "nvls/Simple"
    assert choose(H100, "all_gather", 2**30).name == "ring/Simple"
    assert choose(H100, "all_reduce", 2**30, only="ring").name == "ring/Simple"  # as NCCL_ALGO=Ring forces
    call = nccl_call(H100, "all_reduce", 2**20)
    # LL: NCCL's bus bandwidth min(141, 360 / 2) GB/s of payload per connection, on twice the wire
    assert (call.algo, call.wire, call.step_latency_s, call.connection_Bps) == ("ring", 2.0, pytest.approx(0.6e-6),
                                                                                  pytest.approx(282e9))


def test_bench_runs_nccls_pick_on_the_fabric(capsys):
    """8 GiB on the H100 box, the ring forced (NVLS would win): the ring at its channels' 360 GB/s, each of 14
    steps taking NCCL's 3.4 us (more than the NVSwitch path's two 0.5 us links), the call NCCL's 8.4 us base
    latency."""
    assert main(["bench", "--topology", "h100_sxm8", "--collectives", "nccl", "--algo", "ring", "-b", "8G", "-e", "8G",
                 "--json"]) == 0
    import json

    row = json.loads(capsys.readouterr().out)["rows"][0]
    size, n = 8 * 2**30, 8
    expected = 2 * (n - 1) / n * size / 360e9 + 14 * 3.4e-6 + 8.4e-6
    assert row["chosen"] == "ring:ring/Simple" and row["time_s"] == pytest.approx(expected, rel=1e-9)
    assert main(["bench", "--topology", "h100_sxm8", "--collectives", "nccl", "--algo", "rings"]) == 2
    assert "ring or tree to force one" in capsys.readouterr().err


def test_a_scenario_runs_its_collectives_under_nccls_model(tmp_path):
    """`network: {collectives: nccl}`: every collective call planned as `bench --collectives nccl` plans it, in
    the program executor (jobs) as well; all-to-all stays netsim's."""
    from netsim.scenario import load_scenario
    from netsim.scenario.runner import simulate
    from netsim.workloads import run_bench

    path = tmp_path / "s.yaml"
    path.write_text("topology: h100_sxm8\nnetwork: {collectives: nccl}\nworkload:\n"
                    "  - {op: all_reduce, size: 1GiB}\n  - {op: all_to_all, size: 64MiB}\n")
    calls = simulate(load_scenario(path), "ecmp").collectives
    assert calls["algo"].to_list() == ["nvls:nvls/Simple", "direct"]
    (bench,) = run_bench(load_topology("h100_sxm8"), "all_reduce", [2**30], ["auto"], collectives="nccl")
    assert calls["end_s"][0] - calls["start_s"][0] == pytest.approx(bench.time_s, rel=1e-12)


def test_a_connection_profile_keeps_the_connections_paths():
    """The profile rides in the route key but ECMP hashes the key without it: the same links carry the bytes."""
    from netsim.network import ConnectionProfile
    from netsim.sim import Simulation

    topo = load_topology("leafspine128_2to1")
    loads = []
    for profile in ((), (ConnectionProfile(3e-6, 10e9),)):
        sim = Simulation(topo, routing="ecmp", seed=3)
        events = [sim.network.transfer(int(topo.gpus[i]), int(topo.gpus[127 - i]), 2**20, key=("job", i, *profile))
                  for i in range(16)]
        results = sim.run(events)
        loads.append((results.links["carried_B"].to_list(), results.transfers["end_s"].max()))
    assert loads[0][0] == pytest.approx(loads[1][0], rel=1e-12, abs=1e-6) and loads[1][1] > loads[0][1] + 3e-6


def test_nvls_pipelines_up_to_the_switch_and_down():
    """C chunks in order on each GPU's link: (C + 1) periods of a chunk at line rate plus the link's latency,
    whatever the number of GPUs; refused where the ranks share no NVSwitch."""
    from netsim.collectives import time_collective
    from netsim.errors import ConfigError

    topo = load_topology("h100_sxm8")
    size, c = 64 * 2**20, 8
    for n in (2, 8):
        seconds, results = time_collective(topo, "all_reduce", size, algo="nvls", chunks=c, nodes=topo.gpus[:n])
        assert seconds == pytest.approx((c + 1) * (size / c / 450e9 + 0.5e-6), rel=1e-12)
        assert results.transfers["size_B"].sum() == 2 * n * size  # every buffer up once and down once
    rail = load_topology("rail64")
    with pytest.raises(ConfigError, match="cabled to one NVSwitch"):
        time_collective(rail, "all_reduce", size, algo="nvls", nodes=rail.gpus[:16])


def test_nccl_runs_nvls_where_its_tuner_picks_it():
    """1 GiB on the H100 box: NVLS (25 us, 272 GB/s per GPU in NCCL's model), run up and down through the switch
    with each GPU's connection at that rate: within 3% of the tuner's own estimate (the pipeline's fill, 65
    chunk periods for 64 chunks, and the links' latency on every chunk)."""
    from netsim.workloads import run_bench

    (row,) = run_bench(load_topology("h100_sxm8"), "all_reduce", [2**30], ["auto"], collectives="nccl")
    assert row.chosen.startswith("nvls:nvls/Simple")
    tuner = choose(H100, "all_reduce", 2**30)
    assert row.time_s == pytest.approx(tuner.time_s, rel=0.03) and row.time_s > tuner.time_s


def test_pat_runs_as_recursive_doubling_with_one_gpu_per_node():
    """PAT (all-gather / reduce-scatter, one GPU per node) is NCCL's pick at 1 MiB on 8 single-GPU hosts; netsim
    runs it as recursive doubling, which needs a power-of-two number of ranks (6 ranks: the ring instead)."""
    from netsim.topology.config import topology_from_dict
    from netsim.workloads import run_bench

    topo = topology_from_dict({"kind": "leaf_spine", "leaves": 2, "spines": 2, "hosts_per_leaf": 4, "gpus_per_host": 1,
                               "host_bandwidth": "400Gbps", "host_latency": "1us", "spine_latency": "1us"})
    system = nccl_system(topo, topo.gpus)
    assert system.nodes == 8 and choose(system, "all_gather", 2**20).name == "pat/Simple"
    (row,) = run_bench(topo, "all_gather", [2**20], ["auto"], collectives="nccl")
    assert row.chosen == "halving_doubling:pat/Simple"
    six = nccl_system(topo, topo.gpus[:6])
    assert choose(six, "all_gather", 2**20).name == "pat/Simple"
    assert choose(six, "all_gather", 2**20, runnable=True).algo == "ring"


def test_across_nodes_the_ll_cap_follows_the_cpu_and_the_nic_its_port():
    """Two H100 nodes on Intel hosts: LL's cap is NCCL's CPU row (39 GB/s), not Hopper's (45); a channel's speed
    across nodes is bounded by the NIC's port to the network (100 Gb/s: 12.5 GB/s, so NCCL's 12)."""
    from netsim.topology.config import topology_from_dict

    rail = load_topology("h100_ib_rail64")
    s = nccl_system(rail, rail.gpus[:16])
    assert (s.nodes, s.rails, s.ll_max) == (2, 8, 39.0)
    assert table("all_reduce", 2**20, s)["ring/LL"].algbw_Bps == pytest.approx(39.0 * 16 / 30 * 1e9)
    slow = topology_from_dict({"kind": "leaf_spine", "leaves": 1, "spines": 1, "hosts_per_leaf": 2, "gpus_per_host": 8,
                               "nics_per_host": 8, "host_bandwidth": "100Gbps"})
    assert nccl_system(slow, slow.gpus).ring.inter == 12
    with pytest.raises(Exception, match="compute capability 10 is not modelled"):
        nccl_system(slow, slow.gpus, arch=100)


def _sharp_rail():
    import yaml

    from netsim.topology.config import topology_from_dict
    from netsim.topology.config import find_topology

    doc = yaml.safe_load(find_topology("h100_ib_rail64").read_text())
    return topology_from_dict({**doc, "switch_reduction": True})


def test_collnet_sums_in_the_rail_switches_whatever_the_number_of_servers():
    """In-switch reduction: each rank's shard goes up to its rail's leaf once and the sum comes down once, so the
    call takes the same time on 2 servers as on 8; refused where the switches do not reduce."""
    from netsim.collectives import time_collective
    from netsim.errors import ConfigError

    topo, size = _sharp_rail(), 2**28
    t16, r16 = time_collective(topo, "all_reduce", size, algo="collnet", nodes=topo.gpus[:16])
    t64, _ = time_collective(topo, "all_reduce", size, algo="collnet", nodes=topo.gpus[:64])
    assert t16 == pytest.approx(t64, rel=1e-12)
    leaves = [name for name in topo.node_names if name.startswith("leaf")]
    t = r16.transfers
    through = t.filter(t["src"].is_in(leaves) | t["dst"].is_in(leaves))["size_B"].sum()
    assert through == 2 * 16 * size // 8  # every rank's 1/8 shard up once, the sum down once
    plain = load_topology("h100_ib_rail64")
    with pytest.raises(ConfigError, match="switch_reduction: true"):
        time_collective(plain, "all_reduce", size, algo="collnet", nodes=plain.gpus[:16])


def test_nccl_picks_collnet_where_the_switches_reduce():
    """NCCL's CollNet Direct (SHARP) on two H100 servers: 0.4 us per local rank at the arity, 31 us across the
    network, busBw / (factor) x 0.85; picked at 64 MiB where the switches reduce, never where they do not."""
    topo = _sharp_rail()
    s = nccl_system(topo, topo.gpus[:16])
    assert s.collnet and not nccl_system(load_topology("h100_ib_rail64"), topo.gpus[:16]).collnet
    row = table("all_reduce", 2**26, s)["collnet/Simple"]
    factor = 8 / 12 - (8 / 12 - 1) / 2
    assert row.latency_s == pytest.approx((2 * (3.7 + 7 * 0.4) + 31.0) * 1e-6)
    assert row.algbw_Bps == pytest.approx(12 * 30 / factor * 0.85 * 0.5 * 1e9)
    assert choose(s, "all_reduce", 2**26).name == "collnet/Simple"


def test_nccl_tree_crosses_the_network_only_between_servers_leaders():
    """NCCL's tree: inside a server a chain, across servers a tree of one rank per server and channel; on 2
    servers of 8, each of the 16 (channel, tree) parts crosses the network once up and once down."""
    from netsim.collectives import time_collective

    topo = load_topology("h100_ib_rail64")
    _, results = time_collective(topo, "all_reduce", 2**24, algo="nccl_tree", nodes=topo.gpus[:16])
    t = results.transfers
    host = {name: name.split(".")[0] for name in set(t["src"].to_list()) | set(t["dst"].to_list())}
    crossing = sum(host[a] != host[b] for a, b in zip(t["src"].to_list(), t["dst"].to_list()))
    assert len(t) == 2 * 2 * 8 * 15 and crossing == 2 * 2 * 8
    assert t["size_B"].sum() == 2 * 15 * 2**24  # every rank but the root sends its share up and receives it down


def test_work_estimates_count_the_call_as_nccls_model_runs_it():
    """Under NCCL's model the estimate counts NCCL's pick and pipeline: NVLS in 64 chunks, not the ideal ring."""
    from netsim.collectives import Communicator
    from netsim.program.budget import collective_transfers
    from netsim.sim import Simulation

    topo = load_topology("h100_sxm8")
    nccl_comm = Communicator(Simulation(topo, collectives="nccl"), topo.gpus)
    ideal_comm = Communicator(Simulation(topo), topo.gpus)
    assert collective_transfers(nccl_comm, "all_reduce", 2**30) == 64 * 2 * 8  # up and down per GPU and chunk
    for comm, mode in ((nccl_comm, "nccl"), (ideal_comm, "ideal")):  # each estimate is what its run creates
        sim = Simulation(topo, collectives=mode)
        results = sim.run(Communicator(sim, topo.gpus).all_reduce(2**30))
        assert len(results.transfers) == collective_transfers(comm, "all_reduce", 2**30), mode
