"""The op as registered PyTorch operators: opcheck, torch.compile, and no double backward."""

import pytest
import torch

from sktdtw.dtw import PackedBatch, available_backends, pack_series, weighted_dtw

BACKENDS = [b for b in ("torch", "cpu") if b in available_backends()]


def _inputs(seed=0, F=3, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    packed = pack_series([torch.randn(t, F, generator=g) for t in (5, 1, 8)], n_features=F)
    C = torch.randn(2, 4, F, generator=g)
    W = torch.rand(2, 4, F, generator=g) + 0.5
    values = packed.values.clone().requires_grad_(requires_grad)
    return values, packed.offsets, C.requires_grad_(requires_grad), W.requires_grad_(requires_grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fecw", [False, True], ids=["dp", "fecw"])
def test_opcheck(backend, fecw):
    # Schema, fake (meta) implementation against the real one, autograd registration, and
    # AOT dispatch with static and dynamic shapes.
    values, offsets, C, W = _inputs()
    Cp, Wp = (C.detach() + 0.1, W.detach() * 1.5) if fecw else (None, None)
    torch.library.opcheck(
        torch.ops.sktdtw.weighted_dtw.default,
        (values, offsets, C, W, Cp, Wp, False, backend),
    )
    dist, path = torch.ops.sktdtw.weighted_dtw(values, offsets, C, W, Cp, Wp, False, backend)
    for need_values_grad in (False, True):
        torch.library.opcheck(
            torch.ops.sktdtw.weighted_dtw_backward.default,
            (values.detach(), offsets, C.detach(), W.detach(), path, torch.ones_like(dist),
             need_values_grad, backend),
            test_utils=("test_schema", "test_faketensor"),
        )


def test_double_backward_says_it_is_not_supported():
    values, offsets, C, W = _inputs()
    dist = weighted_dtw(PackedBatch(values, offsets), C, W)
    (dC,) = torch.autograd.grad(dist.sum(), C, create_graph=True)
    with pytest.raises(RuntimeError, match="weighted_dtw_backward"):
        torch.autograd.grad(dC.sum(), C)


@pytest.mark.parametrize("backend", BACKENDS)
def test_encoder_fine_tuned_through_the_op_compiles_without_graph_breaks(backend):
    # A training step of an encoder under the op: fullgraph=True fails on any graph break,
    # and the compiled step must give the eager step's loss and gradients.
    torch.manual_seed(0)
    values, offsets, C, W = _inputs(F=6, requires_grad=False)
    encoder = torch.nn.Linear(6, 6)
    labels = torch.tensor([0, 1, 0])

    def step(values, C, W):
        z = encoder(values)
        dist, _ = torch.ops.sktdtw.weighted_dtw(z, offsets, C, W, None, None, False, backend)
        return torch.nn.functional.cross_entropy(-dist, labels)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    results = []
    for fn in (step, compiled):
        encoder.zero_grad()
        loss = fn(values, C, W)
        loss.backward()
        results.append((loss.detach(), encoder.weight.grad.clone()))
    (eager_loss, eager_grad), (compiled_loss, compiled_grad) = results
    torch.testing.assert_close(compiled_loss, eager_loss)
    torch.testing.assert_close(compiled_grad, eager_grad)
    assert float(eager_grad.abs().sum()) > 0  # the gradient reached the encoder
