"""The packet-level side of `ns3_crosscheck.py`: small fabrics in ns-3 (TCP over point-to-point links), run by
an interpreter that has the `ns3` package (``pip install ns3``; its import takes ~10 s and scans the working
folder, so `ns3_crosscheck.py` runs this from an empty one). Prints one JSON object: case -> seconds.

Fabric: `hosts` hosts, each on its own link (bandwidth, latency) to one router (a store-and-forward switch),
TCP with 1448-byte segments (an Ethernet MTU), DropTail queues of 1,000 packets. Cases:
  incast      hosts 1..n-1 each send `size` bytes to host 0 at once (one bottleneck shared for long)
  ring_step   every host sends `size` bytes to the next host at once (one step of a ring all-reduce)
A case's time is from the first packet sent to the last byte received (FlowMonitor).
"""

from __future__ import annotations

import json
import sys


def run(case: str, hosts: int, size: int, bandwidth: str, latency: str) -> float:
    from ns import ns

    ns.Config.SetDefault("ns3::TcpSocket::SegmentSize", ns.UintegerValue(1448))
    ns.Config.SetDefault("ns3::TcpSocket::SndBufSize", ns.UintegerValue(8 << 20))
    ns.Config.SetDefault("ns3::TcpSocket::RcvBufSize", ns.UintegerValue(8 << 20))
    nodes = ns.NodeContainer()
    nodes.Create(hosts + 1)  # the last one is the router
    stack = ns.InternetStackHelper()
    stack.Install(nodes)
    p2p = ns.PointToPointHelper()
    p2p.SetDeviceAttribute("DataRate", ns.StringValue(bandwidth))
    p2p.SetChannelAttribute("Delay", ns.StringValue(latency))
    p2p.SetQueue("ns3::DropTailQueue", "MaxSize", ns.QueueSizeValue(ns.QueueSize("1000p")))
    addr = ns.Ipv4AddressHelper()
    host_ip = []
    for h in range(hosts):
        devs = p2p.Install(nodes.Get(h), nodes.Get(hosts))
        addr.SetBase(ns.Ipv4Address(f"10.1.{h + 1}.0"), ns.Ipv4Mask("255.255.255.0"))
        host_ip.append(addr.Assign(devs).GetAddress(0))
    ns.Ipv4GlobalRoutingHelper.PopulateRoutingTables()
    keep = []  # the helpers and containers, alive until the run ends
    pairs = [(h, 0) for h in range(1, hosts)] if case == "incast" else [(h, (h + 1) % hosts) for h in range(hosts)]
    for i, (src, dst) in enumerate(pairs):
        port = 5000 + i
        sink = ns.PacketSinkHelper("ns3::TcpSocketFactory",
                                   ns.InetSocketAddress(ns.Ipv4Address.GetAny(), port).ConvertTo())
        apps = sink.Install(nodes.Get(dst))
        apps.Start(ns.Seconds(0.0))
        bulk = ns.BulkSendHelper("ns3::TcpSocketFactory", ns.InetSocketAddress(host_ip[dst], port).ConvertTo())
        bulk.SetAttribute("MaxBytes", ns.UintegerValue(size))
        senders = bulk.Install(nodes.Get(src))
        senders.Start(ns.Seconds(0.0))
        keep += [sink, apps, bulk, senders]
    helper = ns.FlowMonitorHelper()  # (kept alive: the monitor belongs to it)
    monitor = helper.InstallAll()
    ns.Simulator.Stop(ns.Seconds(60.0))
    ns.Simulator.Run()
    first = last = None
    for _, st in monitor.GetFlowStats():
        if st.rxBytes > 100_000:  # data flows (not the acknowledgements' reverse flows)
            a, b = st.timeFirstTxPacket.GetSeconds(), st.timeLastRxPacket.GetSeconds()
            first = a if first is None else min(first, a)
            last = b if last is None else max(last, b)
    ns.Simulator.Destroy()
    return last - first


def main() -> int:
    cases = json.loads(sys.argv[1])
    print(json.dumps({name: run(**spec) for name, spec in cases.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
