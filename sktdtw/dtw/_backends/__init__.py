"""Backends of the weighted-DTW op.

Each backend offers the same three primitives and its layout:

``path(values, offsets, C, W, diagonal, with_path=True) -> (dist, path)``
    Full cost, DP and backtrack: distances ``(B, K)`` and int32 paths ``(B, K, L, 2)``
    (``path`` is None with ``with_path=False``: distances only, no backtracking).
``path_cost(values, offsets, C, W, path) -> dist``
    The cost of given paths under ``(C, W)``; a path with a range outside its sample is
    refused (ValueError naming the sample).
``path_grad(values, offsets, C, W, path, grad_dist, need_values_grad) -> (dC, dW, dX)``
    Gradients of ``sum(grad_dist * path_cost(...))``; ``dX`` is None unless asked for.
``feature_width(n_features, dtype) -> int``
    The feature count the backend's kernels want rows padded to (with zeros, which change
    no cost). The primitives take plain tensors and pad them themselves, returning
    gradients of the caller's width; the op pads once per call instead, so that its
    primitives find the layout in place.
"""

from __future__ import annotations

import numbers
import os

from ._torch import TorchBackend

__all__ = [
    "BACKEND_NAMES", "available_backends", "get_backend", "get_num_threads",
    "max_num_threads", "set_num_threads",
]

# The values of ``backend=``: "auto", then the backends, fastest first.
BACKEND_NAMES = ("auto", "cuda", "cpu", "torch")


def _load(name):
    """The backend called ``name`` if it is usable in this installation, else None."""
    if name == "torch":
        return TorchBackend
    try:
        if name == "cpu":
            from ._cpu import CPUBackend as backend
        else:
            from ._cuda import CUDABackend as backend
    except ImportError:
        return None
    return backend if backend.is_available() else None


def available_backends() -> list[str]:
    """Names of the backends usable in this installation, fastest first."""
    return [name for name in BACKEND_NAMES[1:] if _load(name) is not None]


def get_backend(name, device):
    """Resolve ``name`` (one of ``BACKEND_NAMES``) for tensors on ``device``."""
    if name not in BACKEND_NAMES:
        names = ", ".join(repr(n) for n in BACKEND_NAMES)
        raise ValueError(f"backend must be one of {names}; got {name!r}")
    if name == "auto":  # the device's compiled backend where it is usable
        return (_load(device.type) if device.type in BACKEND_NAMES else None) or TorchBackend
    if name != "torch" and name != device.type:
        raise ValueError(f"backend {name!r} cannot run on tensors on device {device}")
    backend = _load(name)
    if backend is None:
        raise ValueError(
            f"backend {name!r} is not available in this build of sktdtw "
            f"(available: {available_backends()})"
        )
    return backend


def max_num_threads() -> int:
    """The largest thread count :func:`set_num_threads` accepts: 4 per CPU of the machine.

    More threads than that only slow the kernels down, and far more crash the process:
    libgomp's ``gomp_team_start`` puts per-thread start data on the calling thread's stack
    (``alloca``), so 100000 threads overflow it (SIGSEGV) before any thread starts.
    """
    return 4 * (os.cpu_count() or 1)


def set_num_threads(n: int | None) -> None:
    """Threads used by the compiled CPU kernels (``0`` or ``None``: OpenMP's default).

    Results do not depend on it: every sum has a fixed order whatever the thread count.
    Memory does: for long series each thread holds the cost blocks of four classes, ``4 *
    L * T_max`` elements (see the Notes of :func:`~sktdtw.dtw.weighted_dtw_path`).

    Parameters
    ----------
    n : int or None
        From 1 to :func:`max_num_threads`, or 0 / None for OpenMP's default.

    Raises
    ------
    TypeError
        If ``n`` is not an int (bool, float and str are refused).
    ValueError
        If ``n`` is negative or above :func:`max_num_threads`.
    """
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads takes an int or None; got {type(n).__name__} {n!r}")
    if not 0 <= n <= max_num_threads():
        raise ValueError(
            f"set_num_threads: n must be between 1 and {max_num_threads()} (4 per CPU of this "
            f"machine), or 0 / None for the default; got {n}"
        )
    from ._compiled import _core

    if _core is not None:
        _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the compiled CPU kernels use (1 when they are not built)."""
    from ._compiled import _core

    return _core.get_num_threads() if _core is not None else 1
