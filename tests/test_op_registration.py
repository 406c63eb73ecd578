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


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
def test_a_training_step_reads_its_paths_once(monkeypatch):
    # Each full read of a path is a host synchronisation on a GPU: the forward's path_cost
    # trusts the path the same call has just found, the backward operator checks the path
    # it is given (it is callable with any path).
    from sktdtw.dtw._backends import _compiled

    calls = []

    def counted(*args):
        calls.append(1)
        return check_paths(*args)

    check_paths = _compiled.check_paths
    monkeypatch.setattr(_compiled, "check_paths", counted)
    values, offsets, C, W = _inputs()
    dist = weighted_dtw(PackedBatch(values, offsets), C, W, path_centroids=C.detach() + 0.1,
                        path_weights=W.detach(), backend="cpu")
    assert calls == []
    dist.sum().backward()
    assert calls == [1]


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
def test_batches_longer_than_int32_paths_are_refused_before_any_copy():
    from sktdtw.dtw._backends import get_backend

    huge = torch.zeros(1, 2).expand(2**31, 2)  # no memory behind it
    offsets = torch.tensor([0, 2**31])
    C = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match="paths are int32"):
        get_backend("cpu", huge.device).path(huge, offsets, C, torch.ones_like(C), False)
