"""The numerical pieces of real training: exchanged-value formats, outer steps, determinism."""

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from netsim.training.model import ModelConfig, TinyLM
from netsim.training.outer import OuterNesterov, average, pair_average
from netsim.training.quantize import payload_bytes, quantize


def test_fp8_round_trip_within_half_an_ulp():
    x = torch.randn(10000, generator=torch.Generator().manual_seed(0)) * 3
    q = quantize(x, "fp8")
    scale = x.abs().max() / 448
    normal = (x / scale).abs() >= 2.0 ** -6  # E4M3 normal range
    assert ((q - x).abs()[normal] <= x.abs()[normal] * 2.0 ** -4 + 1e-12).all()
    assert ((q - x).abs()[~normal] <= scale * 2.0 ** -10 + 1e-12).all()  # subnormal spacing 2^-9, half of it
    assert q.abs().max() <= x.abs().max() * (1 + 1e-6)


def test_e3m0_round_trip_within_a_third():
    x = torch.randn(10000, generator=torch.Generator().manual_seed(1))
    q = quantize(x, "e3m0")
    scale = x.abs().max()
    inside = x.abs() >= scale * 2.0 ** -6
    assert ((q - x).abs()[inside] <= x.abs()[inside] / 3 + 1e-7).all()
    assert ((q - x).abs()[~inside] <= scale * 2.0 ** -6 / 2 + 1e-7).all()
    levels = set((q[q != 0].abs() / scale).log2().round().tolist())
    assert levels <= set(range(-6, 1))  # only powers of two of the scale: 7 levels, plus zero


def test_bytes_on_the_wire():
    assert payload_bytes(1000, "e3m0") == 500 + 4 and payload_bytes(1000, "fp8") == 1000 + 4
    assert payload_bytes(1000, "bf16") == 2000 and payload_bytes(1001, "e3m0") == 501 + 4


def batches(seed, n, context=16):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (4, context + 1), generator=g) for _ in range(n)]


def test_diloco_h1_outer_lr1_without_momentum_is_ddp_with_sgd():
    torch.manual_seed(0)
    config = ModelConfig(layers=2, width=32, heads=4, context=16)
    base = TinyLM(config)
    start = parameters_to_vector(base.parameters()).detach().clone()
    data = batches(3, 3)
    lr = 0.05
    # DDP: average the workers' gradients, one SGD step
    grads = []
    for tokens in data:
        vector_to_parameters(start.clone(), base.parameters())
        base.zero_grad()
        base.loss(tokens).backward()
        grads.append(parameters_to_vector(p.grad for p in base.parameters()).clone())
    ddp = start - lr * average(grads)
    # DiLoCo, H = 1: each worker one SGD step, outer gradient = start - local, outer SGD lr 1, no momentum
    deltas = []
    for tokens in data:
        worker = TinyLM(config)
        vector_to_parameters(start.clone(), worker.parameters())
        opt = torch.optim.SGD(worker.parameters(), lr=lr)
        opt.zero_grad()
        worker.loss(tokens).backward()
        opt.step()
        deltas.append(start - parameters_to_vector(worker.parameters()).detach())
    outer = OuterNesterov(start, lr=1.0, momentum=0.0)
    diloco = outer.step(average(deltas))
    assert torch.allclose(diloco, ddp, rtol=1e-5, atol=1e-7)


def test_pair_averaging_preserves_the_mean():
    g = torch.Generator().manual_seed(2)
    vectors = [torch.randn(50, generator=g) for _ in range(6)]
    mixed = pair_average(vectors, [(0, 3), (1, 5), (2, 4)])
    assert torch.allclose(average(mixed), average(vectors), atol=1e-6)
    assert torch.equal(mixed[0], mixed[3])


def test_nesterov_matches_torch_sgd():
    params = torch.randn(20, generator=torch.Generator().manual_seed(4))
    grads = [torch.randn(20, generator=torch.Generator().manual_seed(10 + i)) for i in range(5)]
    ours = OuterNesterov(params, lr=0.7, momentum=0.9)
    ref = params.clone().requires_grad_(True)
    opt = torch.optim.SGD([ref], lr=0.7, momentum=0.9, nesterov=True)
    for g in grads:
        ours.step(g)
        ref.grad = g.clone()
        opt.step()
    assert torch.allclose(ours.params, ref.detach(), atol=1e-6)


def test_same_seed_same_losses_bit_for_bit():
    def run():
        torch.manual_seed(7)
        model = TinyLM(ModelConfig(layers=1, width=32, heads=2, context=16))
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        losses = []
        for tokens in batches(5, 3):
            opt.zero_grad()
            loss = model.loss(tokens)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    assert run() == run()


def test_encoded_exchanges_decode_to_the_quantised_values_in_payload_bytes():
    from netsim.training.quantize import FORMATS, decode, encode

    torch.manual_seed(0)
    for n in (0, 1, 7, 1000):
        for x in (torch.randn(n), torch.zeros(n), torch.randn(n) * 1e-3):
            for fmt in FORMATS:
                wire = encode(x, fmt)
                assert wire.numel() * wire.element_size() == payload_bytes(n, fmt)
                assert torch.equal(decode(wire, fmt, n), quantize(x, fmt))
