"""The weighted-DTW op, registered with ``torch.library`` over a packed ragged batch.

``sktdtw::weighted_dtw`` (distances and paths) and ``sktdtw::weighted_dtw_backward`` are
custom operators with fake (meta) implementations, so that ``torch.compile`` keeps them as
single nodes of a graph, and the first's gradient is registered as the second. The second
has no gradient of its own: a double backward raises, saying so.
"""

from __future__ import annotations

import torch

from .._typing import SeriesLike
from ._backends import get_backend
from ._packing import (
    PackedBatch,
    check_finite,
    check_packed,
    check_parameters,
    pack_series,
    pad_features,
)

__all__ = ["DistanceOverflowError", "weighted_dtw", "weighted_dtw_path"]


@torch.library.custom_op("sktdtw::weighted_dtw", mutates_args=())
def _weighted_dtw(
    values: torch.Tensor, offsets: torch.Tensor, C: torch.Tensor, W: torch.Tensor,
    Cp: torch.Tensor | None, Wp: torch.Tensor | None, diagonal: bool, backend: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """dist = cost of the path under (C, W); the path comes from (Cp, Wp) if given."""
    be = get_backend(backend, values.device)
    if Cp is None:
        dist, path = be.path(values, offsets, C, W, diagonal)
    else:
        _, path = be.path(values, offsets, Cp, Wp, diagonal)
        dist = be.path_cost(values, offsets, C, W, path, trusted_path=True)
    check_finite_distances(dist, values, offsets)
    return dist, path


@_weighted_dtw.register_fake
def _(values, offsets, C, W, Cp, Wp, diagonal, backend):
    K, L, _ = C.shape
    B = offsets.shape[0] - 1
    return values.new_empty((B, K)), values.new_empty((B, K, L, 2), dtype=torch.int32)


@torch.library.custom_op("sktdtw::weighted_dtw_backward", mutates_args=())
def _weighted_dtw_backward(
    values: torch.Tensor, offsets: torch.Tensor, C: torch.Tensor, W: torch.Tensor,
    path: torch.Tensor, grad_dist: torch.Tensor, need_values_grad: bool, backend: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dX, dC, dW) of sum(grad_dist * dist) along the fixed path (the envelope
    (sub-)gradient of the minimum over paths); dX is empty unless ``need_values_grad``."""
    be = get_backend(backend, values.device)
    # A registered operator may be called with any path: it is checked here, once per
    # step (the forward's path_cost trusts the path it has just found).
    dC, dW, dX = be.path_grad(values, offsets, C, W, path, grad_dist, need_values_grad)
    return (values.new_empty((0, values.shape[1])) if dX is None else dX), dC, dW


@_weighted_dtw_backward.register_fake
def _(values, offsets, C, W, path, grad_dist, need_values_grad, backend):
    dX = torch.empty_like(values) if need_values_grad else values.new_empty((0, values.shape[1]))
    return dX, torch.empty_like(C), torch.empty_like(W)


def _setup_context(ctx, inputs, output):
    values, offsets, C, W, _, _, _, backend = inputs
    ctx.save_for_backward(values, offsets, C, W, output[1])
    ctx.backend = backend
    ctx.mark_non_differentiable(output[1])


def _backward(ctx, grad_dist, _grad_path):
    values, offsets, C, W, path = ctx.saved_tensors
    need_x, _, need_c, need_w = ctx.needs_input_grad[:4]
    if not (need_x or need_c or need_w):
        return (None,) * 8
    dX, dC, dW = _weighted_dtw_backward(
        values, offsets, C, W, path, grad_dist.contiguous(), need_x, ctx.backend
    )
    return (
        dX if need_x else None, None, dC if need_c else None, dW if need_w else None,
        None, None, None, None,
    )


_weighted_dtw.register_autograd(_backward, setup_context=_setup_context)


class DistanceOverflowError(ValueError):
    """A distance of finite inputs that exceeds the largest float of its dtype.

    ``sample`` is the position of the sample in the op's batch; ``renamed(i)`` is the same
    error naming it ``i`` instead (e.g. its index in an estimator's ``X``).
    """

    def __init__(self, sample, centroid, dtype):
        self.sample, self.centroid, self.dtype = sample, centroid, dtype
        name = str(dtype).replace("torch.", "")
        super().__init__(
            f"the weighted-DTW distance of sample {sample} to centroid {centroid} overflows "
            f"{name} (it exceeds {torch.finfo(dtype).max:.3g}): the values of the series, or "
            f"of the centroids and weights, are too large for {name}; scale the data down "
            "(e.g. standardise the features)"
        )

    def renamed(self, sample):
        return DistanceOverflowError(sample, self.centroid, self.dtype)


def check_finite_distances(dist, values, offsets):
    """Raise for the first sample whose distance is not finite.

    The parameters are finite (always checked). A sample with a non-finite value (only
    possible when the caller skipped the batch's scan, ``check_input=False``) is a
    ValueError naming it; otherwise a point cost or a sum along a path exceeded the largest
    float of the dtype: DistanceOverflowError.
    """
    finite = torch.isfinite(dist)
    if bool(finite.all()):
        return
    check_finite(values, offsets)
    b = int(torch.nonzero(~finite.all(1))[0])
    raise DistanceOverflowError(b, int(torch.nonzero(~finite[b])[0]), dist.dtype)


def _prepare(X, centroids, weights, path_centroids, path_weights, backend, check_input):
    """Validate the op's inputs; ``check_input=False`` skips only the scan of the batch's
    values."""
    centroids, weights = check_parameters(centroids, weights)
    if (path_centroids is None) != (path_weights is None):
        raise ValueError("give both path_centroids and path_weights, or neither")
    if path_centroids is not None:
        path_centroids, path_weights = check_parameters(
            path_centroids.detach(), path_weights.detach(), "path_centroids", "path_weights",
        )
        if path_centroids.shape != centroids.shape:
            raise ValueError(
                f"path_centroids have shape {tuple(path_centroids.shape)} but centroids "
                f"have {tuple(centroids.shape)}"
            )
        if path_centroids.dtype != centroids.dtype or path_centroids.device != centroids.device:
            raise ValueError("path_centroids must match centroids in dtype and device")
    if not check_input and isinstance(X, PackedBatch):
        # The caller validated the values once (e.g. a training loop over mini-batches of
        # checked data); the O(batch) structure is checked on every call all the same.
        check_packed(X.values, X.offsets, centroids.shape[2])
        if X.values.dtype != centroids.dtype or X.values.device != centroids.device:
            raise ValueError(
                f"values ({X.values.dtype}, {X.values.device}) must match the centroids "
                f"({centroids.dtype}, {centroids.device}) in dtype and device"
            )
        packed = PackedBatch(X.values.contiguous(), X.offsets)
    else:
        packed = pack_series(
            X, n_features=centroids.shape[2], dtype=centroids.dtype, device=centroids.device
        )
    backend = get_backend(backend, centroids.device)
    # The backend's feature layout, laid out once per call so that every primitive finds
    # it in place; autograd cuts the gradients back to the caller's features.
    width = backend.feature_width(centroids.shape[2], centroids.dtype)
    values, C, W, Cp, Wp = (
        None if t is None else pad_features(t, width)
        for t in (packed.values, centroids, weights, path_centroids, path_weights)
    )
    return PackedBatch(values, packed.offsets), C, W, Cp, Wp, backend


def weighted_dtw_path(
    X: SeriesLike | PackedBatch, centroids: torch.Tensor, weights: torch.Tensor, *,
    diagonal: bool = False, path_centroids: torch.Tensor | None = None,
    path_weights: torch.Tensor | None = None, backend: str = "auto", check_input: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted DTW distances of a ragged batch to K centroid series, with the paths.

    The cost of aligning centroid step ``i`` of class ``k`` with sample step ``j`` is
    ``sum_f weights[k, i, f] * |centroids[k, i, f] - X_b[j, f]|``; the distance is the total
    cost along the cheapest monotone warping path (right/down moves only unless
    ``diagonal=True``), not normalised.

    Parameters
    ----------
    X : list of array-like of shape (T_b, F), 3-D array, or (values, offsets) pair
        The batch. Tensors must share the dtype and device of ``centroids`` (and may
        require grad); NumPy arrays are converted.
    centroids : torch.Tensor of shape (K, L, F)
        Centroid series, float32 or float64.
    weights : torch.Tensor of shape (K, L, F)
        Strictly positive weights.
    diagonal : bool, default=False
        Allow diagonal moves (the paper's ablation).
    path_centroids, path_weights : torch.Tensor of shape (K, L, F), optional
        Frozen parameters that choose the path (FECW); the distance is then the cost of
        that path under ``centroids``/``weights``. No gradient flows into them.
    backend : {"auto", "torch", "cpu", "cuda"}, default="auto"
        "auto" picks the compiled backend for the tensors' device, else "torch".
    check_input : bool, default=True
        Scan the batch's values for non-finite ones (O(batch)). False skips that scan
        only, and only for a ``PackedBatch`` (other inputs are always scanned), whose values
        the caller has validated; a non-finite value that then makes a distance non-finite
        is still a ValueError naming the sample, but one that does not (a minimum can pass
        over it) gives undefined distances. Checked either way: shapes, dtypes, devices
        and offsets (O(batch)), so no input reaches the compiled kernels out of bounds, and
        that the centroids, weights and path parameters are finite and the weights
        strictly positive (O(K * L * F)).

    Returns
    -------
    dist : torch.Tensor of shape (B, K)
        Differentiable with respect to ``centroids``, ``weights`` and tensor samples.
    path : torch.Tensor of shape (B, K, L, 2), int32
        ``path[b, k, i] = (lo, hi)``: centroid step ``i`` is aligned with sample steps
        ``lo..hi`` (inclusive).

    Raises
    ------
    ValueError
        For an invalid batch (naming the sample) or invalid parameters.

    Notes
    -----
    **The recurrence.** With ``cost[i, j]`` as above, ``D[0, 0] = cost[0, 0]`` and
    ``D[i, j] = cost[i, j] + min(D[i - 1, j], D[i, j - 1])`` (out of range: +inf; with
    ``diagonal=True`` also ``D[i - 1, j - 1]``); the distance is ``D[L - 1, T_b - 1]``, the
    cost summed over the path's cells (``L + T_b - 1`` of them without diagonal moves).
    **Ties**, the same in every backend: the backtrack steps back to ``(i, j - 1)`` unless
    ``(i - 1, j)`` is strictly smaller; with diagonal moves it takes ``(i - 1, j)`` only if
    strictly smallest, else ``(i, j - 1)`` if strictly smaller than the diagonal, else the
    diagonal. The gradients hold the path fixed (the sub-gradient of the minimum over
    paths).

    **Memory.** The CPU backend runs the DP of a pair in place on its ``L x T_b`` block of
    the cost matrix, and holds the blocks of up to four classes per thread: its workspace
    is ``min(K * L * N, max(2**20, min(K, 4 * threads) * L * T_max))`` elements of the
    dtype (``N``: the batch's total steps, ``T_max``: its longest series, ``threads``:
    :func:`~sktdtw.dtw.get_num_threads`), so for long series it grows by
    ``4 * L * T_max`` elements per thread: K=51, L=64, T=200000 in float32 take 205 MB per
    thread. :func:`~sktdtw.dtw.set_num_threads` bounds it. The CUDA backend's workspace is
    at most 2**27 elements. The outputs come on top: ``dist`` and ``path`` (``B * K * L *
    8`` bytes).

    Examples
    --------
    >>> import torch
    >>> from sktdtw.dtw import weighted_dtw_path
    >>> X = [torch.zeros(3, 2), torch.ones(5, 2)]
    >>> C = torch.zeros(1, 2, 2)
    >>> dist, path = weighted_dtw_path(X, C, torch.ones_like(C))
    >>> dist
    tensor([[ 0.],
            [12.]])
    >>> path[1, 0].tolist()
    [[0, 0], [0, 4]]
    """
    packed, C, W, Cp, Wp, be = _prepare(
        X, centroids, weights, path_centroids, path_weights, backend, check_input
    )
    return _weighted_dtw(packed.values, packed.offsets, C, W, Cp, Wp, bool(diagonal), be.name)


def weighted_dtw(
    X: SeriesLike | PackedBatch, centroids: torch.Tensor, weights: torch.Tensor, *,
    diagonal: bool = False, path_centroids: torch.Tensor | None = None,
    path_weights: torch.Tensor | None = None, backend: str = "auto", check_input: bool = True,
) -> torch.Tensor:
    """Weighted DTW distances ``(B, K)``; see :func:`weighted_dtw_path` for parameters.

    Examples
    --------
    >>> import torch
    >>> from sktdtw.dtw import weighted_dtw
    >>> C = torch.tensor([[[0.0], [1.0]]])
    >>> X = [torch.tensor([[0.0], [1.0], [1.0]])]
    >>> weighted_dtw(X, C, torch.ones_like(C))  # no diagonal move: one step pays |0 - 1|
    tensor([[1.]])
    >>> weighted_dtw(X, C, torch.ones_like(C), diagonal=True)
    tensor([[0.]])
    """
    packed, C, W, Cp, Wp, be = _prepare(
        X, centroids, weights, path_centroids, path_weights, backend, check_input
    )
    needs_grad = torch.is_grad_enabled() and (
        packed.values.requires_grad or C.requires_grad or W.requires_grad
    )
    if Cp is None and not needs_grad:  # inference: no path to keep, so none is traced
        dist = be.path(packed.values, packed.offsets, C, W, bool(diagonal), with_path=False)[0]
        check_finite_distances(dist, packed.values, packed.offsets)
        return dist
    return _weighted_dtw(packed.values, packed.offsets, C, W, Cp, Wp, bool(diagonal), be.name)[0]
