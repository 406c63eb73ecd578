"""Packing and validation of ragged batches for the weighted-DTW op.

A batch of series ``X_b`` of shape ``(T_b, F)`` travels through the op *packed*: one
``values`` tensor of shape ``(sum_b T_b, F)`` and ``offsets`` (int64, length ``B + 1``), so
no backend ever sees padding.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import torch

from .._typing import SeriesLike

__all__ = ["PackedBatch", "offsets_from_lengths", "pack_series"]


class PackedBatch(NamedTuple):
    """A ragged batch: sample ``b`` is ``values[offsets[b]:offsets[b + 1]]``."""

    values: torch.Tensor
    offsets: torch.Tensor

    @property
    def n_samples(self):
        return self.offsets.numel() - 1

    @property
    def lengths(self):
        return self.offsets[1:] - self.offsets[:-1]


def offsets_from_lengths(lengths: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
    """The int64 ``offsets`` (length ``B + 1``, on the lengths' device) of samples of
    ``lengths`` steps packed one after the other (a :class:`PackedBatch`'s offsets).

    Parameters
    ----------
    lengths : array-like or Tensor of shape (B,)
        The samples' numbers of steps.

    Returns
    -------
    offsets : Tensor of shape (B + 1,)
        int64; ``offsets[0] = 0`` and ``offsets[b + 1] - offsets[b] = lengths[b]``.

    Examples
    --------
    >>> from sktdtw.dtw import offsets_from_lengths
    >>> offsets_from_lengths([3, 1, 2])
    tensor([0, 3, 4, 6])
    """
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    offsets = lengths.new_zeros(lengths.numel() + 1)
    torch.cumsum(lengths, 0, out=offsets[1:])
    return offsets


def pad_features(t, width):
    """``t`` with its last axis zero-padded to ``width`` (differentiable), or ``t`` itself."""
    if t.shape[-1] == width:
        return t
    # A concatenation: two to three times faster than torch.nn.functional.pad here.
    return torch.cat([t, t.new_zeros(*t.shape[:-1], width - t.shape[-1])], -1)


def _is_packed_pair(X):
    """Whether ``X`` is a ``(values, offsets)`` pair rather than two series: its second item
    is not 2-D (every series is), or is a tensor of integers (no series may be); its
    dtype and shape are then checked as offsets'."""
    if not (isinstance(X, tuple) and len(X) == 2):
        return False
    values, offsets = X
    if getattr(values, "ndim", None) != 2:
        return False
    if isinstance(offsets, torch.Tensor):
        return offsets.ndim != 2 or not (offsets.dtype.is_floating_point
                                         or offsets.dtype.is_complex)
    try:
        return np.ndim(offsets) != 2
    except ValueError:  # ragged nested lists: a series, refused as one
        return False


def _as_float_tensor(x, index, dtype, device):
    """One sample as a tensor of ``dtype`` on ``device``, or a ValueError naming it."""
    if isinstance(x, torch.Tensor):
        if not x.dtype.is_floating_point:
            raise ValueError(
                f"sample {index} has dtype {x.dtype}; expected a floating-point tensor"
            )
        if x.dtype != dtype:
            raise ValueError(
                f"sample {index} has dtype {x.dtype} but the centroids have dtype {dtype}; "
                "convert one of them"
            )
        if x.device != device:
            raise ValueError(
                f"sample {index} is on device {x.device} but the centroids are on {device}"
            )
        return x
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValueError(
            f"sample {index} has dtype {arr.dtype}; expected real numbers (float or int)"
        )
    return torch.as_tensor(arr, dtype=dtype, device=device)


def pack_series(
    X: SeriesLike, *, n_features: int | None, dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> PackedBatch:
    """Validate a ragged batch and pack it.

    Parameters
    ----------
    X : list of array-like of shape (T_b, F), or PackedBatch, or (values, offsets)
        The series. Tensors must already have ``dtype`` and live on ``device``; NumPy
        arrays are converted.
    n_features : int
        Expected number of features ``F``.
    dtype : torch.dtype, default=torch.float32
    device : torch.device or str, default="cpu"

    Returns
    -------
    PackedBatch
        ``values`` of shape ``(sum_b T_b, F)`` (contiguous) and int64 ``offsets``.

    Raises
    ------
    ValueError
        Naming the offending sample: an empty batch, a series that is not 2-D, has length 0,
        another feature count, a non-real dtype, another device, or non-finite values.
    """
    device = torch.device(device)
    if isinstance(X, PackedBatch) or _is_packed_pair(X):
        values, offsets = X
        values = _as_float_tensor(values, "values", dtype, device)
        offsets = torch.as_tensor(offsets, device=device)
        kind = offsets.dtype
        if kind == torch.bool or kind.is_floating_point or kind.is_complex:
            raise ValueError(f"offsets have dtype {offsets.dtype}; expected integers (int64)")
        offsets = offsets.to(torch.int64)
        check_packed(values, offsets, n_features)
        check_finite(values, offsets)
        return PackedBatch(values.contiguous(), offsets)

    if isinstance(X, (torch.Tensor, np.ndarray)) and X.ndim == 3 and 0 not in X.shape:
        # Equal lengths: the array is already packed, up to a reshape.
        n, T, f = X.shape
        if f != n_features:
            raise ValueError(f"sample 0 has {f} features but the centroids have {n_features}")
        values = _as_float_tensor(X, 0, dtype, device).reshape(n * T, f).contiguous()
        offsets = torch.arange(0, n * T + 1, T, dtype=torch.int64, device=device)
        check_finite(values, offsets)
        return PackedBatch(values, offsets)
    if isinstance(X, (torch.Tensor, np.ndarray)) and X.ndim == 3:
        X = list(X)
    if not isinstance(X, (list, tuple)):
        raise ValueError(
            "X must be a list of (T_b, F) series, a 3-D array, or a (values, offsets) pair; "
            f"got {type(X).__name__}"
        )
    if len(X) == 0:
        raise ValueError("X is empty: need at least one series")
    tensors = []
    for b, x in enumerate(X):
        t = _as_float_tensor(x, b, dtype, device)
        if t.ndim != 2:
            raise ValueError(f"sample {b} has shape {tuple(t.shape)}; expected (T, F)")
        if t.shape[0] < 1:
            raise ValueError(f"sample {b} has length 0; every series needs T >= 1")
        if t.shape[1] != n_features:
            raise ValueError(
                f"sample {b} has {t.shape[1]} features but the centroids have {n_features}"
            )
        tensors.append(t)
    offsets = offsets_from_lengths([t.shape[0] for t in tensors]).to(device)
    values = torch.cat(tensors, 0)
    check_finite(values, offsets)
    return PackedBatch(values, offsets)


def check_packed(values, offsets, n_features):
    """The O(batch) checks that keep compiled kernels inside their arrays, always run.

    ``values`` must be a 2-D tensor of ``n_features`` columns and ``offsets`` a 1-D int64
    tensor on its device, starting at 0, strictly increasing and ending at ``len(values)``.
    """
    if not isinstance(values, torch.Tensor) or not isinstance(offsets, torch.Tensor):
        raise ValueError("a PackedBatch holds two tensors, values and offsets")
    if values.ndim != 2:
        raise ValueError(f"values have shape {tuple(values.shape)}; expected (n_rows, n_features)")
    if values.shape[1] != n_features:
        raise ValueError(
            f"values have {values.shape[1]} features but the centroids have {n_features}"
        )
    if offsets.dtype != torch.int64 or offsets.ndim != 1 or offsets.device != values.device:
        raise ValueError(
            f"offsets must be a 1-D int64 tensor on {values.device}; got {offsets.dtype} of "
            f"shape {tuple(offsets.shape)} on {offsets.device}"
        )
    if offsets.numel() < 2 or int(offsets[0]) != 0 or int(offsets[-1]) != values.shape[0]:
        raise ValueError(
            "offsets must have length n_samples + 1, start at 0 and end at len(values) "
            f"= {values.shape[0]}"
        )
    lengths = offsets[1:] - offsets[:-1]
    bad = torch.nonzero(lengths < 1)
    if bad.numel():
        b = int(bad[0])
        raise ValueError(
            f"sample {b} has length {int(lengths[b])}; every series needs T >= 1 (offsets "
            "must be strictly increasing)"
        )


def check_path_shape(path, n_samples, n_classes, length):
    """ValueError unless ``path`` is an int32 tensor of shape (B, K, L, 2)."""
    expected = (n_samples, n_classes, length, 2)
    if not isinstance(path, torch.Tensor) or path.dtype != torch.int32 or path.shape != expected:
        raise ValueError(
            f"path must be an int32 tensor of shape {expected}; got "
            f"{getattr(path, 'dtype', type(path).__name__)} {tuple(getattr(path, 'shape', ()))}"
        )


def check_finite(values, offsets):
    # One pass, no temporary: min and max propagate NaN, and are infinite if any value is.
    low, high = torch.aminmax(values)
    if bool(torch.isfinite(low) & torch.isfinite(high)):
        return
    finite_rows = torch.isfinite(values).all(dim=1)
    if not bool(finite_rows.all()):
        row = int(torch.nonzero(~finite_rows)[0])
        row_t = torch.tensor(row, device=offsets.device)
        b = int(torch.searchsorted(offsets, row_t, right=True)) - 1
        raise ValueError(
            f"sample {b} contains non-finite values (NaN or inf) at step {row - int(offsets[b])}"
        )


class ParameterValueError(ValueError):
    """Centroids or weights whose values are invalid: not finite, or weights not strictly
    positive (a training loop reports it as divergence)."""


def check_parameters(centroids, weights, name="centroids", weights_name="weights"):
    """Validate a (centroids, weights) pair of shape (K, L, F); return them contiguous.

    Shapes, dtypes and devices, and that the values are finite and the weights strictly
    positive: an O(K * L * F) scan, always run (ParameterValueError for the values).
    """
    if not isinstance(centroids, torch.Tensor) or not isinstance(weights, torch.Tensor):
        raise ValueError(f"{name} and {weights_name} must be torch tensors")
    if centroids.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be float32 or float64, got {centroids.dtype}")
    if centroids.ndim != 3 or min(centroids.shape) < 1:
        raise ValueError(
            f"{name} must have shape (n_classes, centroid_length, n_features) with every "
            f"size >= 1; got {tuple(centroids.shape)}"
        )
    if weights.shape != centroids.shape:
        raise ValueError(
            f"{weights_name} have shape {tuple(weights.shape)} but {name} have "
            f"{tuple(centroids.shape)}"
        )
    if weights.dtype != centroids.dtype or weights.device != centroids.device:
        raise ValueError(
            f"{weights_name} ({weights.dtype}, {weights.device}) must match {name} "
            f"({centroids.dtype}, {centroids.device}) in dtype and device"
        )
    with torch.no_grad():
        if not bool(torch.isfinite(centroids).all()):
            raise ParameterValueError(f"{name} contain non-finite values")
        if not bool(torch.isfinite(weights).all()):
            raise ParameterValueError(f"{weights_name} contain non-finite values")
        if not bool((weights > 0).all()):
            raise ParameterValueError(f"{weights_name} must be strictly positive")
    return centroids.contiguous(), weights.contiguous()
