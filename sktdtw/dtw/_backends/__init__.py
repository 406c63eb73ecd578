"""Backends of the weighted-DTW op.

Each backend offers the same three primitives (DESIGN.md section 2) and nothing else:

``path(values, offsets, C, W, diagonal, with_path=True) -> (dist, path)``
    Full cost, DP and backtrack: distances ``(B, K)`` and int32 paths ``(B, K, L, 2)``
    (``path`` is None with ``with_path=False``: distances only, no backtracking).
``path_cost(values, offsets, C, W, path) -> dist``
    The cost of given paths under ``(C, W)``.
``path_grad(values, offsets, C, W, path, grad_dist, need_values_grad) -> (dC, dW, dX)``
    Gradients of ``sum(grad_dist * path_cost(...))``; ``dX`` is None unless asked for.
"""

from ._torch import TorchBackend

__all__ = ["available_backends", "get_backend", "get_num_threads", "set_num_threads"]


def _compiled(name):
    try:
        if name == "cpu":
            from ._cpu import CPUBackend as backend
        else:
            from ._cuda import CUDABackend as backend
    except ImportError:
        return None
    return backend if backend.is_available() else None


def available_backends():
    """Names of the backends usable in this installation, fastest first."""
    return [n for n in ("cuda", "cpu") if _compiled(n) is not None] + ["torch"]


def get_backend(name, device):
    """Resolve ``name`` ("auto", "torch", "cpu" or "cuda") for tensors on ``device``."""
    if name not in ("auto", "torch", "cpu", "cuda"):
        raise ValueError(f"backend must be 'auto', 'torch', 'cpu' or 'cuda'; got {name!r}")
    wanted = device.type if name == "auto" else name
    if name == "torch":
        return TorchBackend
    if wanted in ("cpu", "cuda") and wanted != device.type:
        raise ValueError(f"backend {name!r} cannot run on tensors on device {device}")
    backend = _compiled(wanted)
    if backend is not None:
        return backend
    if name == "auto":
        return TorchBackend
    raise ValueError(
        f"backend {name!r} is not available in this build of sktdtw "
        f"(available: {available_backends()})"
    )


def set_num_threads(n):
    """Threads used by the compiled CPU kernels (``0`` or ``None``: OpenMP's default).

    Results do not depend on it: every sum has a fixed order whatever the thread count.
    """
    from ._cpu import _core

    if _core is not None:
        _core.set_num_threads(int(n or 0))


def get_num_threads():
    """Threads the compiled CPU kernels use (1 when they are not built)."""
    from ._cpu import _core

    return _core.get_num_threads() if _core is not None else 1
