"""The CUDA backend: equal to the CPU backend wherever a GPU is visible.

Every test but the first carries the ``gpu`` marker and skips cleanly without a usable
CUDA backend (no GPU, a CPU-only PyTorch, or a build without the CUDA sources). The first
runs everywhere and checks that the build reports its CUDA support honestly.
"""

import copy

import numpy as np
import pytest
import torch

from sktdtw import DejaVidClassifier, _core
from sktdtw.datasets import make_temporal_order
from sktdtw.dtw import available_backends, weighted_dtw_path
from sktdtw.dtw._backends import _cuda, get_backend
from sktdtw.dtw._backends._cpu import CPUBackend
from sktdtw.dtw._backends._cuda import CUDABackend


def test_build_reports_cuda_honestly():
    assert isinstance(_core.has_cuda, bool)
    usable = _core.has_cuda and torch.cuda.is_available() and _core.cuda_device_count() > 0
    assert CUDABackend.is_available() == usable
    assert ("cuda" in available_backends()) == usable
    assert available_backends()[-1] == "torch"
    with pytest.raises(ValueError, match="cannot run on tensors on device cpu"):
        get_backend("cuda", torch.device("cpu"))
    if not _core.has_cuda:
        assert not hasattr(_core, "cuda_path")
    else:
        for name in ("cuda_path", "cuda_path_cost", "cuda_path_grad", "cuda_device_count"):
            assert callable(getattr(_core, name))


gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(
    not CUDABackend.is_available(), reason="needs a CUDA device and sktdtw built with CUDA"
)

# (lengths, K, L, F, diagonal): ragged batches and the edge shapes of docs/DESIGN.md section 4.
CASES = [
    ([5, 1, 7, 3], 3, 4, 5, False),
    ([1, 1, 1], 2, 3, 1, False),  # T_b = 1, F = 1
    ([9, 70, 2, 1], 5, 1, 33, True),  # L = 1
    ([3, 2, 4], 2, 9, 65, False),  # L > T_b
    ([3, 2, 4], 2, 9, 65, True),
    ([66, 3, 12, 1, 40], 7, 10, 70, True),  # rows and columns past one 64 x 64 tile
    ([33, 40, 25], 4, 8, 3001, False),  # F in the thousands
    (list(range(1, 151)), 41, 8, 37, False),  # many pairs, T_b up to 150
    (list(range(1, 151)), 41, 8, 37, True),
]


def _batch(lengths, K, L, F, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)
    values = torch.randn(int(offsets[-1]), F, generator=g, dtype=dtype)
    C = torch.randn(K, L, F, generator=g, dtype=dtype)
    W = torch.rand(K, L, F, generator=g, dtype=dtype) + 0.1
    G = torch.randn(len(lengths), K, generator=g, dtype=dtype)
    return values, offsets, C, W, G


def _to_cuda(*ts):
    return [t.cuda() for t in ts]


def _assert_close(actual, expected, rtol=1e-4):
    """Relative to each entry, and to the tensor's scale where sums of signs cancel."""
    expected = expected.to(actual.dtype)
    atol = rtol * float(expected.abs().max()) + 1e-12
    torch.testing.assert_close(actual.cpu(), expected, rtol=rtol, atol=atol)


def _assert_paths_equal_up_to_ties(values, offsets, C, W, path, dist_ref, path_ref):
    """Paths equal except where float rounding picked another optimal path."""
    differs = (path.cpu() != path_ref).flatten(2).any(2)  # (B, K)
    if bool(differs.any()):
        # Both paths must be optimal: the other path costs the same under (C, W).
        cost = CPUBackend.path_cost(values, offsets, C, W, path.cpu())
        _assert_close(cost[differs], dist_ref[differs])
    assert float(differs.double().mean()) < 0.05, "too many paths differ to be ties"


@gpu
@needs_cuda
@pytest.mark.parametrize("lengths,K,L,F,diagonal", CASES)
def test_cuda_equals_cpu(lengths, K, L, F, diagonal):
    values, offsets, C, W, G = _batch(lengths, K, L, F, seed=len(lengths) * 1000 + F)
    dist_ref, path_ref = CPUBackend.path(values, offsets, C, W, diagonal)
    gv, go, gC, gW, gG = _to_cuda(values, offsets, C, W, G)

    dist, path = CUDABackend.path(gv, go, gC, gW, diagonal)
    assert dist.device.type == "cuda" and path.dtype == torch.int32
    assert path.shape == path_ref.shape
    _assert_close(dist, dist_ref)
    _assert_paths_equal_up_to_ties(values, offsets, C, W, path, dist_ref, path_ref)

    # Cost and gradients along the same (CPU) paths, so ties cannot matter.
    gpath = path_ref.cuda()
    _assert_close(CUDABackend.path_cost(gv, go, gC, gW, gpath),
                  CPUBackend.path_cost(values, offsets, C, W, path_ref))
    dC, dW, dX = CUDABackend.path_grad(gv, go, gC, gW, gpath, gG, True)
    rC, rW, rX = CPUBackend.path_grad(values, offsets, C, W, path_ref, G, True)
    _assert_close(dC, rC)
    _assert_close(dW, rW)
    _assert_close(dX, rX)
    dC2, dW2, dX2 = CUDABackend.path_grad(gv, go, gC, gW, gpath, gG, False)
    assert dX2 is None
    # Deterministic: no atomics, fixed summation orders.
    assert torch.equal(dC2, dC) and torch.equal(dW2, dW)
    assert torch.equal(CUDABackend.path(gv, go, gC, gW, diagonal)[0], dist)


@gpu
@needs_cuda
@pytest.mark.parametrize("diagonal", [False, True])
def test_cuda_float64(diagonal):
    values, offsets, C, W, G = _batch([4, 17, 1, 30], 3, 6, 45, seed=7, dtype=torch.float64)
    dist_ref, path_ref = CPUBackend.path(values, offsets, C, W, diagonal)
    gv, go, gC, gW, gG = _to_cuda(values, offsets, C, W, G)
    dist, path = CUDABackend.path(gv, go, gC, gW, diagonal)
    assert dist.dtype == torch.float64
    _assert_close(dist, dist_ref, rtol=1e-10)
    _assert_paths_equal_up_to_ties(values, offsets, C, W, path, dist_ref, path_ref)
    # Gradients along the same (CPU) paths, so ties cannot matter.
    for a, b in zip(CUDABackend.path_grad(gv, go, gC, gW, path_ref.cuda(), gG, True),
                    CPUBackend.path_grad(values, offsets, C, W, path_ref, G, True)):
        _assert_close(a, b, rtol=1e-10)


@gpu
@needs_cuda
@pytest.mark.parametrize("diagonal", [False, True])
def test_cuda_chunked_equals_whole(monkeypatch, diagonal):
    """Batches bigger than the workspace bound are chunked, and a sample longer than the
    bound has its classes aligned in groups; results do not change."""
    values, offsets, C, W, G = _to_cuda(*_batch(list(range(1, 60)), 6, 8, 40, seed=3))
    whole = CUDABackend.path(values, offsets, C, W, diagonal)
    grads = CUDABackend.path_grad(values, offsets, C, W, whole[1], G, True)
    # A bound below one sample's needs: every sample becomes its own chunk, its classes
    # taken one at a time (L x T_b fits, K x L x T_b does not).
    monkeypatch.setattr(_cuda, "_WORKSPACE_ELEMENTS", 100)
    chunked = CUDABackend.path(values, offsets, C, W, diagonal)
    chunked_grads = CUDABackend.path_grad(values, offsets, C, W, whole[1], G, True)
    assert torch.equal(chunked[0], whole[0]) and torch.equal(chunked[1], whole[1])
    for a, b in zip(chunked_grads, grads):
        assert torch.equal(a, b)
    # A bound that groups several samples per chunk.
    monkeypatch.setattr(_cuda, "_WORKSPACE_ELEMENTS", 6 * 8 * 200)
    assert torch.equal(CUDABackend.path(values, offsets, C, W, diagonal)[1], whole[1])
    assert torch.equal(CUDABackend.path_grad(values, offsets, C, W, whole[1], G, True)[2], grads[2])


@gpu
@needs_cuda
def test_cuda_rejects_bad_paths():
    values, offsets, C, W, _ = _to_cuda(*_batch([3, 5], 2, 2, 4, seed=1))
    _, path = CUDABackend.path(values, offsets, C, W, False)
    bad = path.clone()
    bad[0, 1, 1, 1] = 3  # sample 0 has 3 steps
    with pytest.raises(ValueError, match="sample 0"):
        CUDABackend.path_cost(values, offsets, C, W, bad)
    with pytest.raises(ValueError, match="int32"):
        CUDABackend.path_cost(values, offsets, C, W, path.long())


@gpu
@needs_cuda
@pytest.mark.parametrize("diagonal", [False, True])
def test_cuda_op_fecw_and_autograd(diagonal):
    """The public op on CUDA tensors (backend="auto" picks cuda) with FECW path parameters.

    Each op's distance and gradients are checked against the CPU primitives along that op's
    own path, so they are checked whether or not rounding made the two ops pick different
    (equally cheap) paths; the paths themselves must be optimal up to ties.
    """
    values, offsets, C, W, G = _batch([12, 1, 30, 7, 19], 4, 8, 70, seed=11)
    Cf = C + 0.1 * torch.randn(C.shape, generator=torch.Generator().manual_seed(12))
    Wf = W * 1.1
    for device, backend in (("cuda", "auto"), ("cpu", "cpu")):
        x = values.to(device, copy=True).requires_grad_()
        c = C.to(device, copy=True).requires_grad_()
        v = W.log().to(device).requires_grad_()  # gradients reach V = log W through autograd
        w = v.exp()  # the weights this op gets (exp on the device may round differently)
        dist, path = weighted_dtw_path(
            (x, offsets.to(device)), c, w, diagonal=diagonal,
            path_centroids=Cf.to(device), path_weights=Wf.to(device), backend=backend,
        )
        assert dist.device.type == device and path.device.type == device
        (dist * G.to(device)).sum().backward()
        # The reference: the CPU primitives given this op's path and weights explicitly.
        cpath, cw = path.cpu(), w.detach().cpu()
        rC, rW, rX = CPUBackend.path_grad(values, offsets, C, cw, cpath, G, True)
        _assert_close(dist.detach(), CPUBackend.path_cost(values, offsets, C, cw, cpath))
        _assert_close(x.grad, rX)
        _assert_close(c.grad, rC)
        _assert_close(v.grad, rW * cw)  # d/dV = d/dW * W
        # The path is the DP's optimum under the frozen parameters, up to ties.
        ref_dist, ref_path = CPUBackend.path(values, offsets, Cf, Wf, diagonal)
        _assert_paths_equal_up_to_ties(values, offsets, Cf, Wf, path, ref_dist, ref_path)


def _on_cpu(fitted):
    """A copy of a fitted estimator that runs its inference on the CPU."""
    return copy.deepcopy(fitted).set_params(device="cpu")


@gpu
@needs_cuda
def test_dejavid_classifier_fits_on_cuda():
    """A fit on the GPU learns what the CPU fit learns, up to float32 rounding.

    The tolerances: the same fit with the torch backend instead of the compiled CPU one
    (other summation orders, as on the GPU) differs by 1.5e-7 relative in the parameters and
    2e-7 in the distances; 1e-4 and 1e-5 leave margins of 50x and more.
    """
    X, y = make_temporal_order(60, n_classes=3, n_features=4, random_state=0)
    params = dict(max_epochs=3, batch_size=16, dba_max_iter=5, random_state=0)
    gpu_fit = DejaVidClassifier(device="cuda", **params).fit(X, y)
    cpu_fit = DejaVidClassifier(device="cpu", **params).fit(X, y)
    assert isinstance(gpu_fit.centroids_, np.ndarray) and gpu_fit.centroids_.dtype == np.float32
    assert gpu_fit.n_epochs_ == cpu_fit.n_epochs_ == 3
    for name in ("centroids_", "weights_"):
        a, b = getattr(gpu_fit, name), getattr(cpu_fit, name)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * np.abs(b).max(), err_msg=name)
    np.testing.assert_allclose(gpu_fit.history_["loss"], cpu_fit.history_["loss"], rtol=1e-4)
    assert gpu_fit.distance_power_ == cpu_fit.distance_power_
    assert gpu_fit.temperature_ == pytest.approx(cpu_fit.temperature_, rel=1e-4)

    # Inference on the GPU equals CPU inference with the same (GPU-learned) parameters.
    dist = gpu_fit.transform(X)
    on_cpu = _on_cpu(gpu_fit)
    cpu_dist = on_cpu.transform(X)
    np.testing.assert_allclose(dist, cpu_dist, rtol=1e-5)
    np.testing.assert_allclose(dist, cpu_fit.transform(X), rtol=1e-4)
    # Every sample's nearest class wins by far more than the rounding above, so the labels
    # must be the same; and they are mostly right (a separable data set).
    nearest = np.sort(cpu_dist, axis=1)
    assert ((nearest[:, 1] - nearest[:, 0]) / nearest[:, 0]).min() > 1e-3
    np.testing.assert_array_equal(gpu_fit.predict(X), cpu_fit.predict(X))
    assert gpu_fit.score(X, y) >= 0.9
    proba = gpu_fit.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    # The softmax's Jacobian has infinity-norm <= 1/2, and the logits -dist ** p / T (p <= 1)
    # differ by at most 1e-5 * max(dist) ** p / T.
    bound = 0.5 * 1e-5 * cpu_dist.max() ** gpu_fit.distance_power_ / gpu_fit.temperature_
    np.testing.assert_allclose(proba, on_cpu.predict_proba(X), rtol=0, atol=bound)
