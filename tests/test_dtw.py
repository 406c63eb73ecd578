"""The weighted-DTW op: every backend against the NumPy oracle, tslearn and each other."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from tslearn.metrics import dtw_path_from_metric

from sktdtw.dtw import PackedBatch, available_backends, pack_series, weighted_dtw, weighted_dtw_path
from sktdtw.dtw._backends import get_backend

import dtw_oracle as oracle
from conftest import subprocess_env

pytestmark = pytest.mark.numerics

BACKENDS = [b for b in ("torch", "cpu") if b in available_backends()]

# (n_samples, n_classes, centroid_length, n_features, min_T, max_T)
SHAPES = {
    "T=1": (6, 3, 4, 5, 1, 1),
    "L=1": (6, 3, 1, 5, 1, 9),
    "F=1": (6, 3, 4, 1, 1, 9),
    "L>T": (6, 3, 9, 4, 1, 5),
    "F tail": (5, 2, 3, 19, 2, 7),
    "F=100": (7, 5, 6, 100, 1, 40),
    "F=2000": (3, 2, 3, 2000, 2, 6),
    "many pairs": (40, 10, 8, 6, 5, 25),
}


def make_batch(shape, seed, integer=False, dtype=torch.float32):
    B, K, L, F, t_min, t_max = shape
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t_min, t_max + 1, size=B)
    if integer:  # small integers: every sum is exact, so ties are real and must match
        X = [rng.integers(-2, 3, size=(t, F)).astype(np.float64) for t in lengths]
        C = rng.integers(-2, 3, size=(K, L, F)).astype(np.float64)
        W = rng.choice([0.5, 1.0, 2.0], size=(K, L, F))
    else:
        X = [rng.normal(size=(t, F)) for t in lengths]
        C = rng.normal(size=(K, L, F))
        W = rng.uniform(0.2, 2.0, size=(K, L, F))

    def tensor(a):
        return torch.tensor(a, dtype=dtype)

    return X, [tensor(x) for x in X], tensor(C), tensor(W)


def oracle_path_cost(X, C, W, path):
    """(B, K) float64 costs of given paths under (C, W), from the oracle's cost matrices."""
    cost = np.zeros(path.shape[:2])
    for b, x in enumerate(X):
        for k in range(C.shape[0]):
            matrix = oracle.cost_matrix(np.asarray(x, np.float64), C[k], W[k])
            cost[b, k] = sum(matrix[i, j] for i, j in oracle.cells_of(path[b, k]))
    return cost


def assert_paths_optimal(path, ref_path, X, C, W, rtol=1e-5):
    """``path`` is ``ref_path`` (the oracle's, or another backend's) except where float
    rounding made another path optimal: exact ties are checked on exact arithmetic
    (test_tie_rules_equal_oracle_on_exact_arithmetic); on continuous data a path may differ
    only if, in float64, it costs what ``ref_path`` costs under the (C, W) that chose it,
    up to float32 rounding of the sums."""
    path, ref_path = np.asarray(path), np.asarray(ref_path)
    differs = (path != ref_path).reshape(*path.shape[:2], -1).any(-1)
    if differs.any():
        C, W = np.asarray(C, np.float64), np.asarray(W, np.float64)
        cost, ref = oracle_path_cost(X, C, W, path), oracle_path_cost(X, C, W, ref_path)
        np.testing.assert_allclose(cost[differs], ref[differs], rtol=rtol)


def test_compiled_cpu_backend_is_built():
    # An installed sktdtw must carry its compiled core; a silent fallback would hide a
    # broken build.
    assert "cpu" in available_backends()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("shape", list(SHAPES), ids=list(SHAPES))
def test_distance_and_path_equal_oracle(backend, diagonal, shape):
    X_np, X, C, W = make_batch(SHAPES[shape], seed=len(shape))
    dist, path = weighted_dtw_path(X, C, W, diagonal=diagonal, backend=backend)
    ref_dist, ref_path = oracle.weighted_dtw_path(
        X_np, C.double().numpy(), W.double().numpy(), diagonal
    )
    # float32 sums against float64: the same paths but for ties within rounding.
    assert_paths_optimal(path.numpy(), ref_path, X_np, C, W)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5)
    assert path.dtype == torch.int32 and path.shape == (len(X), C.shape[0], C.shape[1], 2)


# 19 classes: the compiled core's DP then runs a vector of classes at once for few features
# (one per lane, 2 to 16 lanes by instruction set and dtype), with a partial last group.
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("n_classes", [4, 19])
def test_tie_rules_equal_oracle_on_exact_arithmetic(backend, diagonal, n_classes):
    # Integer data makes every float sum exact, so the oracle's ties are the backend's ties.
    X_np, X, C, W = make_batch((30, n_classes, 5, 3, 1, 12), seed=7, integer=True)
    dist, path = weighted_dtw_path(X, C, W, diagonal=diagonal, backend=backend)
    ref_dist, ref_path = oracle.weighted_dtw_path(
        X_np, C.double().numpy(), W.double().numpy(), diagonal
    )
    np.testing.assert_array_equal(path.numpy(), ref_path)
    np.testing.assert_array_equal(dist.numpy(), ref_dist)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("n_classes", [3, 19])
def test_every_grouping_of_rows_equals_oracle_on_exact_arithmetic(backend, diagonal, n_classes):
    # The compiled DP accumulates rows 8 at a time, then in passes of 4, 2 and 1: every
    # centroid length from 1 to 20 meets each combination of them (and T from 1, one
    # column). On integer data the ties are real, so paths and distances must be exact.
    for L in range(1, 21):
        X_np, X, C, W = make_batch((12, n_classes, L, 2, 1, 30), seed=L, integer=True)
        dist, path = weighted_dtw_path(X, C, W, diagonal=diagonal, backend=backend)
        ref_dist, ref_path = oracle.weighted_dtw_path(
            X_np, C.double().numpy(), W.double().numpy(), diagonal
        )
        np.testing.assert_array_equal(path.numpy(), ref_path, err_msg=f"L={L}")
        np.testing.assert_array_equal(dist.numpy(), ref_dist, err_msg=f"L={L}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("diagonal", [False, True])
def test_separate_path_parameters(backend, diagonal):
    X_np, X, C, W = make_batch(SHAPES["many pairs"], seed=3)
    rng = np.random.default_rng(4)
    Cp = C + torch.tensor(rng.normal(scale=0.5, size=C.shape), dtype=C.dtype)
    Wp = W * torch.tensor(rng.uniform(0.5, 2.0, size=W.shape), dtype=W.dtype)
    dist, path = weighted_dtw_path(
        X, C, W, diagonal=diagonal, path_centroids=Cp, path_weights=Wp, backend=backend
    )
    ref_dist, ref_path = oracle.weighted_dtw_path(
        X_np, C.double().numpy(), W.double().numpy(), diagonal,
        Cp.double().numpy(), Wp.double().numpy(),
    )
    assert_paths_optimal(path.numpy(), ref_path, X_np, Cp, Wp)  # chosen under (Cp, Wp)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5)
    # The frozen path is not the live optimum in general: the live DTW is never costlier.
    live = weighted_dtw(X, C, W, diagonal=diagonal, backend=backend)
    assert bool((live <= dist * (1 + 1e-6)).all())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "shape, integer",
    # Integer data: many cells have c == x exactly, where sign(0) = 0 must add nothing.
    [
        ("F tail", False),
        ("many pairs", False),
        ("L>T", False),
        ("F=100", False),
        ("many pairs", True),
    ],
)
def test_gradients_equal_oracle(backend, shape, integer):
    X_np, X, C, W = make_batch(SHAPES[shape], seed=11, integer=integer)
    X = [x.requires_grad_() for x in X]
    C.requires_grad_()
    W.requires_grad_()
    dist, path = weighted_dtw_path(X, C, W, backend=backend)
    G = torch.randn(dist.shape, generator=torch.Generator().manual_seed(0))
    dist.backward(G)
    dC, dW, dX = oracle.path_grads(
        X_np,
        C.detach().double().numpy(),
        W.detach().double().numpy(),
        path.numpy(),
        G.double().numpy(),
    )
    np.testing.assert_allclose(C.grad.numpy(), dC, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(W.grad.numpy(), dW, rtol=1e-4, atol=1e-4)
    for x, ref in zip(X, dX):
        np.testing.assert_allclose(x.grad.numpy(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fecw", [False, True])
def test_gradcheck_float64(backend, fecw):
    _, X, C, W = make_batch((4, 3, 3, 4, 1, 6), seed=5, dtype=torch.float64)
    values = torch.cat(X).requires_grad_()
    offsets = torch.tensor(np.cumsum([0] + [len(x) for x in X]))
    C.requires_grad_()
    logW = W.log().requires_grad_()
    frozen = dict(path_centroids=C.detach() + 0.1, path_weights=W.detach()) if fecw else {}

    def f(values, C, logW):
        return weighted_dtw(PackedBatch(values, offsets), C, logW.exp(), backend=backend, **frozen)

    assert torch.autograd.gradcheck(f, (values, C, logW), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("diagonal", [False, True])
def test_backends_agree_on_large_ragged_batch(diagonal):
    if len(BACKENDS) < 2:
        pytest.skip("only one backend built")
    X_np, X, C, W = make_batch((60, 12, 8, 300, 1, 40), seed=21)
    X = [x.requires_grad_() for x in X]
    packed = pack_series([x.detach() for x in X], n_features=300)
    G = torch.full((60, 12), 1 / (60 * 12))
    results = {}
    for backend in BACKENDS:
        Cb, Wb = C.clone().requires_grad_(), W.clone().requires_grad_()
        for x in X:
            x.grad = None
        dist, path = weighted_dtw_path(X, Cb, Wb, diagonal=diagonal, backend=backend)
        dist.backward(G)
        results[backend] = (dist, path, Cb.grad, Wb.grad, torch.cat([x.grad for x in X]))
    (d0, p0, *g0), (d1, p1, *g1) = results.values()
    # Other summation orders: the distances agree to float32 rounding, the paths but for
    # ties within it.
    torch.testing.assert_close(d0, d1, rtol=1e-5, atol=0)
    assert_paths_optimal(p0.numpy(), p1.numpy(), X_np, C, W)
    # Each op's gradients are the other backend's along the op's own paths.
    b0, b1 = BACKENDS
    for other, path, grads in ((b1, p0, g0), (b0, p1, g1)):
        reference = get_backend(other, C.device).path_grad(*packed, C, W, path, G, True)
        for a, b in zip(grads, reference):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_diagonal_unit_weights_match_tslearn(backend):
    X_np, X, C, _ = make_batch((8, 3, 6, 4, 1, 12), seed=9)
    dist, path = weighted_dtw_path(X, C, torch.ones_like(C), diagonal=True, backend=backend)
    for b, x in enumerate(X_np):
        for k in range(C.shape[0]):
            cells, d = dtw_path_from_metric(C[k].double().numpy(), x, metric="cityblock")
            np.testing.assert_allclose(dist[b, k].item(), d, rtol=1e-5)
            assert oracle.cells_of(path[b, k].numpy()) == [tuple(c) for c in cells]


# Feature counts around every change of the CPU kernels' summation layout: fewer than one
# vector, whole and partial vectors, the sequential-rule limit (128), one and several cache
# chunks (512 floats, 256 doubles), and HMDB51's 1459.
RULE_FEATURES = [1, 2, 3, 7, 9, 16, 17, 64, 70, 127, 128, 129, 200, 256, 257, 513, 1459]


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("n_classes", [3, 19])
@pytest.mark.parametrize("n_features", RULE_FEATURES)
def test_path_cost_of_the_chosen_path_is_the_distance_bit_for_bit(
    n_features, n_classes, diagonal, dtype
):
    # The compiled core adds a cell's feature terms in one order in the cost matrix and in
    # path_cost, and a path's cells in the DP's order: the FECW distance under the
    # parameters that chose the path is the DP's distance exactly, on every ISA
    # (SKTDTW_CPU_ISA, run by .ci/run) and thread count.
    from sktdtw import _core

    _, X, C, W = make_batch((9, n_classes, 5, n_features, 1, 12), seed=n_features, dtype=dtype)
    before = _core.get_num_threads()
    try:
        for threads in (1, 2):
            _core.set_num_threads(threads)
            dp = weighted_dtw(X, C, W, diagonal=diagonal, backend="cpu")
            traced, _ = weighted_dtw_path(X, C, W, diagonal=diagonal, backend="cpu")
            fecw = weighted_dtw(X, C, W, diagonal=diagonal, path_centroids=C, path_weights=W,
                                backend="cpu")
            assert torch.equal(traced, dp)
            assert torch.equal(fecw, dp), f"{int((fecw != dp).sum())} of {dp.numel()} differ"
    finally:
        _core.set_num_threads(before)


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("diagonal", [False, True])
@pytest.mark.parametrize("n_classes", [5, 16, 19])
@pytest.mark.parametrize("n_features", [1, 2, 4])
def test_a_pair_does_not_depend_on_the_classes_beside_it(n_features, n_classes, diagonal, dtype):
    # Up to 4 features the compiled DP runs a vector of classes at once, a class per lane
    # (the full vector width or half of it, whichever leaves fewer lanes idle: in float32
    # on AVX-512, 16 classes take 16 lanes, 5 and 19 take 8), from 2 * K >= lanes on. One
    # sample against one class takes the per-pair DP on every instruction set (its
    # workspace, L x T, has no room for a row of D per lane). Each lane does that DP's
    # operations, so the results are equal bit for bit, the lanes past the last class (a
    # partial group) changing nothing.
    shape = (6, n_classes, 9, n_features, 1, 40)
    _, X, C, W = make_batch(shape, seed=n_features, dtype=dtype)
    dist, path = weighted_dtw_path(X, C, W, diagonal=diagonal, backend="cpu")
    untraced = weighted_dtw(X, C, W, diagonal=diagonal, backend="cpu")
    assert torch.equal(untraced, dist)
    for b, x in enumerate(X):
        for k in range(C.shape[0]):
            one_dist, one_path = weighted_dtw_path([x], C[k : k + 1], W[k : k + 1],
                                                   diagonal=diagonal, backend="cpu")
            assert torch.equal(one_dist[0, 0], dist[b, k]), f"sample {b}, class {k}"
            assert torch.equal(one_path[0, 0], path[b, k]), f"sample {b}, class {k}"


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
# 3 features: a vector of classes at once (path_by_class_lanes); 77: the cost blocks of a
# sample at a time in per-thread slots (path_by_sample); 200: the whole chunk's cost
# matrix, then the DP.
@pytest.mark.parametrize("n_features", [3, 77, 200])
def test_cpu_results_do_not_depend_on_thread_count_or_chunking(monkeypatch, n_features):
    from sktdtw import _core
    from sktdtw.dtw._backends import _cpu

    # 80 samples of up to 60 steps: enough work (K * L * steps >= 2**17) for several threads.
    _, X, C, W = make_batch((80, 9, 8, n_features, 1, 60), seed=13)
    G = torch.randn(80, 9, generator=torch.Generator().manual_seed(1))

    def run():
        Cg, Wg = C.clone().requires_grad_(), W.clone().requires_grad_()
        Xg = [x.clone().requires_grad_() for x in X]
        dist, path = weighted_dtw_path(Xg, Cg, Wg, backend="cpu")
        dist.backward(G)
        return [dist, path, Cg.grad, Wg.grad] + [x.grad for x in Xg]

    before = _core.get_num_threads()
    try:
        _core.set_num_threads(1)
        one = run()
        _core.set_num_threads(3)
        three = run()
        monkeypatch.setattr(_cpu, "_WORKSPACE_ELEMENTS", 9 * 8 * 45)  # forces many chunks
        chunked = run()
        # The smallest workspace, L x T x 4 classes per thread: the classes of the
        # longest samples are aligned in groups of 4 (the tiling bounding memory), and
        # with few features fewer threads run than asked when their slots do not fit.
        monkeypatch.setattr(_cpu, "_WORKSPACE_ELEMENTS", 1)
        tiled_three = run()
        _core.set_num_threads(1)
        tiled = run()
    finally:
        _core.set_num_threads(before)
    for a, *others in zip(one, three, chunked, tiled_three, tiled):
        assert all(torch.equal(a, b) for b in others)


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("n_features", [3, 300])  # per-sample slots, the cost matrix
def test_cpu_primitives_take_no_classes(n_features):
    # The op refuses K = 0; the backend called directly returns empty results (path's
    # per-sample class groups and path_cost's class blocks once divided by zero there).
    from sktdtw.dtw._backends._cpu import CPUBackend

    values, offsets = torch.randn(10, n_features), torch.tensor([0, 4, 10])
    C = W = torch.ones(0, 5, n_features)
    dist, path = CPUBackend.path(values, offsets, C, W, False)
    assert dist.shape == (2, 0) and path.shape == (2, 0, 5, 2)
    assert CPUBackend.path_cost(values, offsets, C, W, path).shape == (2, 0)
    dC, dW, dX = CPUBackend.path_grad(values, offsets, C, W, path, torch.ones(2, 0), True)
    assert dC.shape == dW.shape == (0, 5, n_features) and not dX.any()


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize(
    "entry, value, match",
    [
        ((1, 0, 1, 1), 1000, "sample 1 has a range outside"),  # past the sample's end
        ((1, 0, 0, 0), -1, "sample 1 has a range outside"),  # before its start
        ((2, 1, 1, 0), 99, "sample 2 has a range outside"),  # lo > hi
        (None, None, "int32 tensor of shape"),  # int64 paths
    ],
)
def test_cpu_rejects_bad_paths(entry, value, match):
    from sktdtw.dtw._backends._cpu import CPUBackend

    _, X, C, W = make_batch((3, 2, 2, 3, 2, 4), seed=2)
    packed = pack_series(X, n_features=3)
    _, path = CPUBackend.path(packed.values, packed.offsets, C, W, False)
    bad = path.long() if entry is None else path.clone()
    if entry is not None:
        bad[entry] = value
    with pytest.raises(ValueError, match=match):
        CPUBackend.path_cost(packed.values, packed.offsets, C, W, bad)
    with pytest.raises(ValueError, match=match):
        CPUBackend.path_grad(packed.values, packed.offsets, C, W, bad, torch.ones(3, 2), True)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_features", [1, 5, 17, 63, 64, 70, 129, 200])
def test_feature_layout_is_invisible(backend, n_features):
    # The compiled backends lay features out in rows of their own width (64-byte rows; the
    # CPU's rows of up to 128 features as they are, their last partial vector read whole
    # from the next row): distances, paths and gradients must be those of the caller's
    # features, through the op and through the primitives called directly with plain tensors.
    X_np, X, C, W = make_batch((5, 3, 4, n_features, 1, 9), seed=n_features)
    X = [x.requires_grad_() for x in X]
    C.requires_grad_()
    W.requires_grad_()
    dist, path = weighted_dtw_path(X, C, W, backend=backend)
    C64, W64 = C.detach().double().numpy(), W.detach().double().numpy()
    ref_dist, ref_path = oracle.weighted_dtw_path(X_np, C64, W64)
    assert_paths_optimal(path.numpy(), ref_path, X_np, C64, W64)  # up to ties in rounding
    np.testing.assert_allclose(dist.detach().numpy(), ref_dist, rtol=1e-5)
    G = torch.randn(dist.shape, generator=torch.Generator().manual_seed(0))
    dist.backward(G)
    dC, dW, dX = oracle.path_grads(X_np, C64, W64, path.numpy(), G.double().numpy())
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(C.grad.numpy(), dC, **tol)
    np.testing.assert_allclose(W.grad.numpy(), dW, **tol)
    for x, ref in zip(X, dX):
        np.testing.assert_allclose(x.grad.numpy(), ref, **tol)

    be = get_backend(backend, C.device)
    packed = pack_series([x.detach() for x in X], n_features=n_features)
    C, W = C.detach(), W.detach()
    _, direct_path = be.path(*packed, C, W, False)
    assert torch.equal(direct_path, path)
    np.testing.assert_allclose(be.path_cost(*packed, C, W, path).numpy(), ref_dist, rtol=1e-5)
    direct = be.path_grad(*packed, C, W, path, G, True)
    for grad, ref in zip(direct, (dC, dW, np.concatenate(dX))):
        assert grad.shape == ref.shape
        np.testing.assert_allclose(grad.numpy(), ref, **tol)


@pytest.mark.parametrize("max_elements", [1, 7, 30, 61, 1000])
def test_sample_chunks_are_greedy_and_fit(max_elements):
    from sktdtw.dtw._backends._compiled import sample_chunks
    from sktdtw.dtw._packing import offsets_from_lengths

    lengths = [3, 1, 7, 2, 2, 9, 1, 4]
    offsets = offsets_from_lengths(lengths)
    np.testing.assert_array_equal(offsets.numpy(), np.concatenate([[0], np.cumsum(lengths)]))
    per_row = 3
    chunks = sample_chunks(offsets, int(offsets[-1]), per_row, max_elements)
    # Consecutive, covering every sample once, with the rows of their samples.
    assert [c[0] for c in chunks] == [0] + [c[1] for c in chunks[:-1]]
    assert chunks[-1][1] == len(lengths)
    for b0, b1, row0, row1 in chunks:
        assert (row0, row1) == (int(offsets[b0]), int(offsets[b1]))
        # Fits, unless it is one sample too long on its own; and no next sample would fit.
        assert per_row * (row1 - row0) <= max_elements or b1 == b0 + 1
        if b1 < len(lengths):
            assert per_row * (int(offsets[b1 + 1]) - row0) > max_elements


def test_inputs_may_be_numpy_lists_3d_arrays_or_packed():
    X_np, X, C, W = make_batch((4, 2, 3, 2, 5, 5), seed=1)
    expected = weighted_dtw(X, C, W)
    torch.testing.assert_close(weighted_dtw(X_np, C, W), expected)
    torch.testing.assert_close(weighted_dtw(np.stack(X_np), C, W), expected)
    packed = pack_series(X, n_features=2)
    torch.testing.assert_close(weighted_dtw(packed, C, W), expected)
    torch.testing.assert_close(weighted_dtw(tuple(packed), C, W), expected)


C0 = torch.ones(2, 3, 4)
W0 = torch.ones(2, 3, 4)


@pytest.mark.parametrize(
    "X, centroids, weights, match",
    [
        ([], C0, W0, "X is empty"),
        ([np.ones((3, 4)), np.ones((0, 4))], C0, W0, "sample 1 has length 0"),
        ([np.ones((3, 4)), np.ones((3, 5))], C0, W0, "sample 1 has 5 features"),
        ([np.ones((3, 4)), np.array([[1, 2, np.nan, 4]])], C0, W0, "sample 1 contains non-finite"),
        ([np.ones((3, 4)), np.full((2, 4), np.inf)], C0, W0, "sample 1 contains non-finite"),
        ([np.ones(4)], C0, W0, r"sample 0 has shape \(4,\)"),
        ([torch.ones(3, 4, dtype=torch.int64)], C0, W0, "sample 0 has dtype torch.int64"),
        ([torch.ones(3, 4, dtype=torch.float64)], C0, W0, "sample 0 has dtype torch.float64"),
        ([np.array([["a"] * 4])], C0, W0, "sample 0 has dtype <U1"),
        ([torch.ones(3, 4, device="meta")], C0, W0, "sample 0 is on device meta"),
        ([np.ones((3, 4))], C0, -W0, "weights must be strictly positive"),
        ([np.ones((3, 4))], C0, W0 * 0, "weights must be strictly positive"),
        ([np.ones((3, 4))], C0, torch.ones(2, 3, 5), "weights have shape"),
        ([np.ones((3, 4))], C0.long(), W0.long(), "centroids must be float32 or float64"),
        ([np.ones((3, 4))], C0 * np.nan, W0, "centroids contain non-finite"),
        ([np.ones((3, 4))], torch.ones(3, 4), torch.ones(3, 4), "must have shape"),
        ([np.ones((3, 4))], torch.ones(2, 0, 4), torch.ones(2, 0, 4), "must have shape"),
        ("abc", C0, W0, "X must be a list"),
    ],
)
def test_bad_input_raises_clear_error(X, centroids, weights, match):
    with pytest.raises(ValueError, match=match):
        weighted_dtw(X, centroids, weights)


def test_bad_offsets_path_parameters_and_backend_raise():
    values = torch.ones(5, 4)
    with pytest.raises(ValueError, match="offsets must"):
        weighted_dtw((values, torch.tensor([0, 2, 4])), C0, W0)
    with pytest.raises(ValueError, match="sample 1 has length 0"):
        weighted_dtw((values, torch.tensor([0, 2, 2, 5])), C0, W0)
    with pytest.raises(ValueError, match="both path_centroids and path_weights"):
        weighted_dtw([values], C0, W0, path_centroids=C0)
    with pytest.raises(ValueError, match="path_weights must be strictly positive"):
        weighted_dtw([values], C0, W0, path_centroids=C0, path_weights=-W0)
    with pytest.raises(ValueError, match="backend must be"):
        weighted_dtw([values], C0, W0, backend="gpu")
    with pytest.raises(ValueError, match="cannot run on tensors on device cpu"):
        weighted_dtw([values], C0, W0, backend="cuda")


def test_backend_names_are_what_backend_accepts():
    from sktdtw.dtw import BACKEND_NAMES

    assert BACKEND_NAMES[0] == "auto" and available_backends()[-1] == "torch"
    assert set(available_backends()) <= set(BACKEND_NAMES[1:])
    cpu = torch.device("cpu")
    for name in set(BACKEND_NAMES) - {"cuda"}:
        assert get_backend(name, cpu).name in available_backends()
    with pytest.raises(ValueError, match="one of 'auto', 'cuda', 'cpu', 'torch'; got 'gpu'"):
        get_backend("gpu", cpu)


def test_check_input_false_skips_validation_but_gives_same_result():
    _, X, C, W = make_batch((5, 3, 4, 6, 1, 9), seed=8)
    packed = pack_series(X, n_features=6)
    torch.testing.assert_close(
        weighted_dtw(packed, C, W, check_input=False), weighted_dtw(packed, C, W)
    )
    # Only a PackedBatch bypasses the checks: anything else is still validated.
    with pytest.raises(ValueError, match="sample 0 has length 0"):
        weighted_dtw([np.ones((0, 6))], C, W, check_input=False)


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
def test_thread_count_is_settable():
    from sktdtw.dtw import get_num_threads, set_num_threads

    before = get_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
        set_num_threads(None)
        assert get_num_threads() >= 1
    finally:
        set_num_threads(before)


_USER_LIMITS = {
    "OMP_NUM_THREADS=1": ({"OMP_NUM_THREADS": "1"}, ""),
    "torch.set_num_threads(1)": ({}, "torch.set_num_threads(1)"),
    "threadpoolctl": ({}, "threadpoolctl.threadpool_limits(1)"),
}


@pytest.mark.skipif("cpu" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("limit", list(_USER_LIMITS))
def test_kernel_threads_follow_the_users_limit(limit):
    # Each in a fresh interpreter: OMP_NUM_THREADS is read when OpenMP loads. The kernels
    # run with get_num_threads() threads (unless set_num_threads says otherwise).
    env_vars, statement = _USER_LIMITS[limit]
    env = subprocess_env(**env_vars)
    if not env_vars:
        env.pop("OMP_NUM_THREADS", None)
    code = (
        "import threadpoolctl, torch\n"
        "from sktdtw.dtw import get_num_threads\n"
        "default = get_num_threads()\n"
        f"limiter = {statement or 'None'}\n"
        "limited = get_num_threads()\n"
        "if isinstance(limiter, threadpoolctl.threadpool_limits):\n"
        "    limiter.restore_original_limits()\n"
        "print(default, limited, get_num_threads())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    default, limited, after = map(int, done.stdout.split())
    assert limited == 1
    if limit == "OMP_NUM_THREADS=1":
        assert default == 1
    elif limit == "threadpoolctl":
        assert after == default  # the limit lifted, the kernels' default is back


def test_3d_array_errors_name_the_sample():
    with pytest.raises(ValueError, match="sample 0 has 5 features"):
        weighted_dtw(np.ones((3, 4, 5)), C0, W0)
    with pytest.raises(ValueError, match="sample 0 has length 0"):
        weighted_dtw(np.ones((3, 0, 4)), C0, W0)
    X = np.ones((3, 4, 4))
    X[2, 1, 3] = np.nan
    with pytest.raises(ValueError, match="sample 2 contains non-finite values .* at step 1"):
        weighted_dtw(X, C0, W0)
