"""Context-parallel attention: message sizes, closed forms, link directions, real-tensor equivalence."""

import pytest
import torch

from netsim.errors import ConfigError
from netsim.sim import Simulation
from netsim.topology import full_mesh, ring
from netsim.training.attention import attend
from netsim.workloads.attention import AttentionShape, Device, Send, run_attention, schedule

MHA = dict(seq=6144, heads=8, head_dim=64, batch=2)  # 6144 = 2 x 3 x 1024: every N here splits it
GQA = dict(seq=6144, heads=8, kv_heads=2, head_dim=64, batch=2)


def sends(sched, kind):
    return [t for t in sched.tasks if isinstance(t, Send) and t.kind == kind]


@pytest.mark.parametrize("dims", [MHA, GQA])
@pytest.mark.parametrize("n", [2, 4, 8])
def test_ring_sends_kv_one_hop_forward(dims, n):
    for causal in (False, True):
        shape = AttentionShape(causal=causal, **dims)
        for scheme in ("ring", "zigzag_ring"):
            sched = schedule(scheme, shape, n)
            kv = sends(sched, "kv")
            assert len(kv) == n * (n - 1) and not sends(sched, "out") and not sends(sched, "q")
            per = 2 * dims["batch"] * (dims["seq"] // n) * dims.get("kv_heads", dims["heads"]) * dims["head_dim"] * 2
            assert all(s.nbytes == per and s.dst == (s.src + 1) % n for s in kv)


@pytest.mark.parametrize("dims", [MHA, GQA])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_tokenring_non_causal_message_sizes(dims, n):
    shape = AttentionShape(**dims)
    sched = schedule("tokenring", shape, n)
    b, s, h, d = dims["batch"], dims["seq"] // n, dims["heads"], dims["head_dim"]
    q = sends(sched, "q")
    assert len(q) == n * (n - 1) and all(m.nbytes == b * s * h * d * 2 and m.dst == (m.src + 1) % n for m in q)
    out = sends(sched, "out")
    assert len(out) == n * (n - 1)
    assert all(m.nbytes == b * s * h * d * 2 + b * h * s * 4 for m in out)  # O in bf16, lse in fp32
    for m in out:  # the output of step j returns to the Q's owner r - j, sent at step j + 1
        j = m.step - 1
        assert m.dst == (m.src - j) % n
    assert not sends(sched, "kv")


@pytest.mark.parametrize("dims", [MHA, GQA])
@pytest.mark.parametrize("n", [2, 3, 4, 8])
def test_tokenring_zigzag_causal_sends_full_or_half(dims, n):
    # chunk c = S / 2N tokens; rank r holds chunks r and 2N-1-r; Q goes to r - 1. At step s rank r sends
    # the whole Q (2 chunks) when it has not wrapped (r >= 1 and r + s < N), else only the late chunk;
    # the output of step j goes to the owner r + j, whole if r + j < N, else half.
    shape = AttentionShape(causal=True, **dims)
    sched = schedule("tokenring", shape, n)
    b, c, h, d = dims["batch"], dims["seq"] // (2 * n), dims["heads"], dims["head_dim"]
    for m in sends(sched, "q"):
        r, step = m.src, m.step
        assert m.dst == (r - 1) % n
        assert m.nbytes == b * c * h * d * 2 * (2 if r >= 1 and r + step < n else 1)
    for m in sends(sched, "out"):
        j = m.step - 1
        r = m.src
        assert m.dst == (r + j) % n
        chunks = 2 if r + j < n else 1
        assert m.nbytes == chunks * (b * c * h * d * 2 + b * h * c * 4)
    assert len(sends(sched, "out")) == n * (n - 1)


def test_ulysses_all_to_all_pieces():
    n = 4
    for dims in (MHA, GQA):
        shape = AttentionShape(**dims)
        sched = schedule("ulysses", shape, n)
        b, s, h, d = dims["batch"], dims["seq"] // n, dims["heads"], dims["head_dim"]
        kv = max(dims.get("kv_heads", h) // n, 1)
        a2a = sends(sched, "a2a")
        assert len(a2a) == 2 * n * (n - 1)
        inbound = [m for m in a2a if m.step == 0]
        assert all(m.nbytes == b * s * (h // n) * d * 2 + 2 * b * s * kv * d * 2 for m in inbound)
    with pytest.raises(ConfigError, match="heads"):
        schedule("ulysses", AttentionShape(seq=4096, heads=6, head_dim=64), 4)


def reference(q, k, v, causal):
    group = q.shape[2] // k.shape[2]
    return torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.repeat_interleave(group, 2).transpose(1, 2), v.repeat_interleave(group, 2).transpose(1, 2),
        is_causal=causal).transpose(1, 2)


@pytest.mark.parametrize("n", [2, 3, 4, 8])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kv_heads", [4, 1])
def test_schedules_compute_attention_with_real_tensors(n, causal, kv_heads):
    torch.manual_seed(n)
    seq = 16 * n
    q = torch.randn(2, seq, 4, 8)
    k, v = torch.randn(2, seq, kv_heads, 8), torch.randn(2, seq, kv_heads, 8)
    expected = reference(q, k, v, causal)
    shape = AttentionShape(seq=seq, heads=4, kv_heads=kv_heads, head_dim=8, causal=causal)
    for scheme in ("ring", "zigzag_ring", "tokenring"):
        out = attend(schedule(scheme, shape, n), q, k, v)
        assert torch.allclose(out, expected, atol=2e-6, rtol=1e-5), scheme


def test_a_schedule_missing_a_message_is_caught():
    shape = AttentionShape(seq=64, heads=4, head_dim=8)
    sched = schedule("tokenring", shape, 4)
    dropped = next(i for i, t in enumerate(sched.tasks) if isinstance(t, Send) and t.kind == "q" and t.step == 1)
    broken = type(sched)(sched.scheme, sched.ranks, shape, sched.owner, sched.chunk_tokens,
                         sched.tasks[:dropped] + sched.tasks[dropped + 1:], sched.steps)
    with pytest.raises(ValueError, match="never receives"):
        broken.dependencies()
    q = torch.randn(1, 64, 4, 8)
    with pytest.raises(ValueError):
        attend(broken, q, q, q)


def timed(scheme, shape, topo, device, n):
    sim = Simulation(topo)
    result = run_attention(sim, topo.gpus[:n], schedule(scheme, shape, n), device)
    sim.run()
    return result(), sim


def test_comm_bound_ring_and_tokenring_closed_forms():
    # Compute nearly free; each rank's loop posts a step's messages, computes, waits for them all.
    # Ring Attention: N - 1 steps of one K, V hop (kv bytes at B plus the latency), then the last block.
    # TokenRing: Q alone at steps 0 and 1, Q and the previous step's output (O + lse, a little larger)
    # at steps 2..N-2, outputs alone at step N - 1 and after the loop.
    n, bw, lat = 4, 10e9, 5e-6
    shape = AttentionShape(seq=8192, heads=8, head_dim=128)
    device = Device(tflops=1e6, efficiency=1.0)
    tokens = 8192 // n
    block = shape.flops(tokens, tokens) / 1e18
    topo = full_mesh(n, bw, lat)
    r, _ = timed("ring", shape, topo, device, n)
    assert r.time_s == pytest.approx((n - 1) * (shape.kv_bytes(tokens) / bw + lat) + block, rel=1e-9)
    t, _ = timed("tokenring", shape, topo, device, n)
    expected = 2 * (shape.q_bytes(tokens) / bw + lat) + (n - 1) * (shape.out_bytes(tokens) / bw + lat)
    assert t.time_s == pytest.approx(expected, rel=1e-9)


def test_compute_bound_configuration_hides_all_communication():
    n = 4
    shape = AttentionShape(seq=65536, heads=32, head_dim=128)
    device = Device(tflops=100, efficiency=0.5)
    tokens = 65536 // n
    block = device.seconds(shape.flops(tokens, tokens))
    topo = full_mesh(n, 100e9, 1e-6)
    for scheme in ("ring", "zigzag_ring"):
        run, _ = timed(scheme, shape, topo, device, n)
        assert run.time_s == pytest.approx(n * block, rel=1e-12) and run.exposed_comm_s == pytest.approx(0, abs=1e-12)


def test_tokenring_uses_both_directions_of_a_ring_and_ring_attention_one():
    n = 6
    shape = AttentionShape(seq=6 * 512, heads=8, head_dim=64)
    topo = ring(n, 25e9, 1e-6)
    device = Device(100, 0.5)
    for scheme, both in (("ring", False), ("tokenring", True)):
        _, sim = timed(scheme, shape, topo, device, n)
        names = list(topo.link_names)
        used = {names[i] for i, b in enumerate(sim.meter.total) if b > 0}
        forward = {f"gpu{i}->gpu{(i + 1) % n}" for i in range(n)}
        backward = {f"gpu{(i + 1) % n}->gpu{i}" for i in range(n)}
        assert forward <= used
        assert (backward <= used) if both else not (backward & used)


def test_bad_shapes_are_config_errors():
    with pytest.raises(ConfigError) as err:
        AttentionShape(seq=4096, heads=8, kv_heads=3, head_dim=64)
    assert err.value.field == "kv_heads"
    with pytest.raises(ConfigError) as err:
        schedule("zigzag_ring", AttentionShape(seq=100, heads=8, head_dim=64), 4)
    assert err.value.field == "seq"
    with pytest.raises(ConfigError, match="unknown scheme"):
        schedule("striped", AttentionShape(seq=4096, heads=8, head_dim=64), 4)
