"""Validation of the context-parallel attention schedules. Writes results/attention.txt.

Run: .venv/bin/python validation/attention.py   (about ten seconds)

1. Closed forms, comm-bound and compute-bound, for every scheme on a full mesh (each pair of GPUs its
   own link of B bytes/s and latency a), against the simulation.
2. The GQA crossover: fewer key/value heads shrink Ring Attention's K + V, not TokenRing's Q + O.
3. Placement: the same four GPUs as a full mesh, a ring and a PCIe tree; and 16 GPUs over two
   rail-optimized servers.
4. The TokenRing README's measured case on its 4-GPU PCIe A10 box (the shipped `cp_a10` example on
   `pcie4_a10`, calibrated from the Ring Attention measurement alone): the per-step times netsim predicts
   against the README's figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netsim.sim import Simulation
from netsim.topology import full_mesh, load_topology, ring
from netsim.workloads.attention import AttentionShape, Device, run_attention, schedule
from text_report import publish  # a sibling: validation/ is on the path

HERE = Path(__file__).resolve().parent
B, A = 25e9, 2e-6  # bytes/s and seconds per link


def simulate(scheme: str, shape: AttentionShape, topo, device: Device, n: int):
    sim = Simulation(topo, record_links=False)
    result = run_attention(sim, topo.gpus[:n], schedule(scheme, shape, n), device)
    sim.run()
    return result()


def closed_forms(shape: AttentionShape, n: int, device: Device) -> dict[str, float]:
    """Makespan of each scheme on a full mesh, when either side dominates completely.

    Every scheme runs a loop per rank: post the step's sends and receives, compute, wait for all — so
    a step lasts max(its block c, its slowest message), and on a full mesh (a link per pair) messages
    do not share links. With x(bytes) = bytes / B + a:
      ring, zigzag_ring   (N-1) max(c, x(KV)) + c        K, V (S/N tokens) one hop per step; last step computes
      tokenring           max(c, x(Q)) x 2 + max(c, x(O)) x (N-2) + x(O)
                          Q (S/N tokens) at steps 0..N-2, outputs (O + lse) from step 2 on, the last
                          after the loop; causal: the same, as some rank sends a whole Q or O every step
      ulysses             x(in) + c_local + x(out)       all-to-all, attention over S for H/N heads, all-to-all
    """
    t = shape.seq // n
    zig = shape.causal
    step = device.seconds(shape.flops(t, t) / (2 if zig else 1))  # zigzag: 2 chunk-blocks of S/2N = half
    x = lambda nbytes: nbytes / B + A  # noqa: E731
    kv, q, out = shape.kv_bytes(t), shape.q_bytes(t), shape.out_bytes(t)
    group = shape.heads // shape.kv_heads
    kv_heads = -(-(shape.heads // n) // group) if shape.heads // n >= group else 1
    piece_in = shape.batch * t * (shape.heads // n) * shape.head_dim * shape.element * 1 + \
        2 * shape.batch * t * kv_heads * shape.head_dim * shape.element
    piece_out = shape.batch * t * (shape.heads // n) * shape.head_dim * shape.element
    local = device.seconds(shape.flops(shape.seq, shape.seq) * (0.5 if zig else 1.0) / n)
    ring_key = "zigzag_ring" if zig else "ring"
    times = {ring_key: (n - 1) * max(step, x(kv)) + step,
             "tokenring": 2 * max(step, x(q)) + (n - 2) * max(step, x(out)) + x(out),
             "ulysses": x(piece_in) + local + x(piece_out)}
    return {"comm": times, "compute": times}


def part_closed_forms(lines: list[str]) -> None:
    lines.append(f"1. closed forms against the simulation, full mesh of {B / 1e9:g} GB/s, {A * 1e6:g} us links")
    lines.append(f"   {'regime':<8} {'layer':<11} {'N':>2} {'scheme':<12} {'simulated':>11} {'closed form':>11} {'rel. err':>9}")
    worst = 0.0
    for causal in (False, True):
        for regime, device in (("comm", Device(tflops=1e6, efficiency=1.0)), ("compute", Device(100, 0.5))):
            for n in (4, 8):
                seq = 16384 if regime == "comm" else 262144
                shape = AttentionShape(seq=seq, heads=32, head_dim=128, causal=causal)
                topo = full_mesh(n, B, A)
                for scheme, expected in closed_forms(shape, n, device)[regime].items():
                    got = simulate(scheme, shape, topo, device, n).time_s
                    err = abs(got / expected - 1)
                    worst = max(worst, err)
                    lines.append(f"   {regime:<8} {'causal' if causal else 'non-causal':<11} {n:>2} {scheme:<12} "
                                 f"{got * 1e3:>9.4f}ms {expected * 1e3:>9.4f}ms {err:>9.1e}")
    lines.append(f"   worst relative error {worst:.1e}")


def part_gqa(lines: list[str]) -> None:
    n, seq, heads = 8, 65536, 32
    lines.append(f"2. GQA crossover, {n} GPUs, S = {seq}, H = {heads}, d = 128, comm-bound (compute ~ free): time per "
                 "layer (ms)")
    lines.append(f"   {'H_kv':>5} {'K+V per hop':>12} {'Q+O per block':>14} {'ring, mesh':>11} {'tokenring, mesh':>16} "
                 f"{'ring, ring':>11} {'tokenring, ring':>16}")
    device = Device(tflops=1e6, efficiency=1.0)
    mesh, loop = full_mesh(n, B, A), ring(n, B, A)
    for kv_heads in (32, 16, 8, 4, 1):
        shape = AttentionShape(seq=seq, heads=heads, kv_heads=kv_heads, head_dim=128)
        t = seq // n
        times = [simulate(s, shape, topo, device, n).time_s * 1e3 for topo in (mesh, loop) for s in ("ring", "tokenring")]
        lines.append(f"   {kv_heads:>5} {shape.kv_bytes(t) / 1e6:>10.1f}MB {(shape.q_bytes(t) + shape.out_bytes(t)) / 1e6:>12.1f}MB "
                     f"{times[0]:>11.3f} {times[1]:>16.3f} {times[2]:>11.3f} {times[3]:>16.3f}")
    lines.append("   On the mesh the ring takes (N-1) x(KV) and TokenRing about (N+1) x(Q) (two Q-only steps, N-1 with")
    lines.append("   an output): the ring wins once 2 H_kv / H < (N+1)/(N-1), i.e. H_kv < 20.6 of 32 at N = 8 (between 32 and 16).")
    lines.append("   On a ring topology TokenRing's outputs take the shorter way to their owner, up to N / 2 hops, and")
    lines.append("   share links with the Q hops and with each other, so there the ring wins even without GQA.")


def part_placement(lines: list[str]) -> None:
    root = HERE.parent / "topologies"
    shape = AttentionShape(seq=32768, heads=32, kv_heads=8, head_dim=128, causal=True)
    device = Device(125, 0.5)
    lines.append("3. placement: causal attention, S = 32768, H = 32, H_kv = 8, d = 128, 125 TFLOP/s x 0.5; "
                 "time per layer (ms)")
    lines.append(f"   {'fabric':<46} {'zigzag_ring':>12} {'tokenring':>10} {'ulysses':>9}")
    fabrics = [("4 GPUs, full mesh 25 GB/s", full_mesh(4, B, A), 4), ("4 GPUs, ring 25 GB/s", ring(4, B, A), 4),
               ("4 GPUs, PCIe tree (pcie4_a10)", load_topology(root / "pcie4_a10.yaml"), 4),
               ("8 GPUs, PCIe two sockets (pcie8_2socket)", load_topology(root / "pcie8_2socket.yaml"), 8),
               ("8 GPUs, one NVLink server (rail64)", load_topology(root / "rail64.yaml"), 8),
               ("16 GPUs, two rail-optimized servers (rail64)", load_topology(root / "rail64.yaml"), 16)]
    for label, topo, n in fabrics:
        times = [simulate(s, shape, topo, device, n).time_s * 1e3 for s in ("zigzag_ring", "tokenring", "ulysses")]
        lines.append(f"   {label:<46} {times[0]:>12.3f} {times[1]:>10.3f} {times[2]:>9.3f}")
    shape = AttentionShape(seq=24000, heads=32, head_dim=128, dtype="fp16")
    lines.append("   non-causal, S = 24000, H = H_kv = 32, fp16, 4 GPUs, compute ~ free (comm-bound): time per layer (ms)")
    lines.append(f"   {'fabric':<46} {'ring':>12} {'tokenring':>10} {'ulysses':>9}")
    free = Device(tflops=1e6, efficiency=1.0)
    for label, topo, n in fabrics[:3]:
        times = [simulate(s, shape, topo, free, n).time_s * 1e3 for s in ("ring", "tokenring", "ulysses")]
        lines.append(f"   {label:<46} {times[0]:>12.3f} {times[1]:>10.3f} {times[2]:>9.3f}")
    lines.append("   TokenRing moves Q (half of K + V) per hop and returns outputs on links or directions Q does not use:")
    lines.append("   it wins on the mesh and on a 4-GPU ring (outputs go back 1-2 hops the other way; at 8 GPUs, section")
    lines.append("   2, they pile up and it loses). In the PCIe box each connection is held to 12.9 GB/s by the peer-to-")
    lines.append("   peer transport (section 4), half a link: the ring's one connection per GPU leaves half of every")
    lines.append("   link idle, TokenRing's Q and outputs fill it, and TokenRing wins there too.")


README_A10 = {"ring step (communication-bound)": 7.6e-3, "tokenring step 0": 3.5e-3, "tokenring step 1": 3.5e-3,
              "tokenring step 2 (Q and outputs at once)": 4.6e-3}  # the TokenRing README's figures ("about")


def part_a10(lines: list[str]) -> None:
    from netsim.scenario.attention import load_attention_scenario, simulate_attention

    cfg, topo = load_attention_scenario(HERE.parent / "netsim" / "data" / "examples" / "cp_a10.yaml")
    runs = simulate_attention(cfg, topo)
    ring, token = runs["zigzag_ring"][0].step_spans(), runs["tokenring"][0].step_spans()
    lines.append("4. The TokenRing README's case: 4 A10 GPUs on PCIe switches (PIX pairs 0-1 and 2-3, PXB across),")
    lines.append(f"   causal zigzag, forward, S = {cfg.seq}, H = {cfg.heads}, d = {cfg.head_dim}, fp16; compute "
                 f"{cfg.tflops:g} TFLOP/s x {cfg.efficiency:g} (a zigzag block in 3.2 ms, as on the published profile).")
    lines.append("   The box is calibrated from the Ring Attention measurement alone: 98.3 MB of K and V per hop in")
    lines.append("   ~7.6 ms = 12.9 GB/s per connection (connection_bandwidth in pcie4_a10.yaml); nothing else is fitted.")
    lines.append(f"   {'step':<42} {'README':>8} {'netsim':>8} {'error':>7}")
    for (label, measured), got in zip(README_A10.items(), (ring[0], token[0], token[1], token[2])):
        lines.append(f"   {label:<42} {measured * 1e3:>6.1f}ms {got * 1e3:>6.2f}ms {100 * (got / measured - 1):>+6.1f}%")
    lines.append(f"   per layer: zigzag_ring {runs['zigzag_ring'][0].time_s * 1e3:.2f} ms, tokenring "
                 f"{runs['tokenring'][0].time_s * 1e3:.2f} ms, ulysses {runs['ulysses'][0].time_s * 1e3:.2f} ms; "
                 f"TokenRing steps {', '.join(f'{x * 1e3:.2f}' for x in token)} ms")
    lines.append("   TokenRing's Q steps take the Q message (49.2 MB) at 12.9 GB/s, 3.8 ms; the README's 3.5 ms is 9%")
    lines.append("   faster (its connections reach ~14 GB/s when Q travels alone). Step 2 is the first where Q and")
    lines.append("   outputs travel at once (the README blames PXB); its span here also covers the outputs of step 1,")
    lines.append("   sent once that block ends, and comes out at 4.62 ms against the README's 4.6.")


def main() -> int:
    lines: list[str] = []
    for part in (part_closed_forms, part_gqa, part_placement, part_a10):
        part(lines)
    publish("attention", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
