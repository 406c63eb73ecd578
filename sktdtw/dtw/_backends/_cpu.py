"""The compiled CPU backend (``sktdtw._core``, C++ with OpenMP and runtime SIMD dispatch)."""

import torch

try:
    from ... import _core
except ImportError:  # a source checkout without the compiled module
    _core = None

# Cost-matrix workspace bound (elements): samples are processed in chunks that fit.
_WORKSPACE_ELEMENTS = 1 << 23


def _ptr(t):
    return t.data_ptr()


def _check(values, offsets, C, W):
    if values.device.type != "cpu" or C.device.type != "cpu":
        raise ValueError("the cpu backend needs CPU tensors")
    if values.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the cpu backend supports float32 and float64, not {values.dtype}")
    values, C, W = values.contiguous(), C.contiguous(), W.contiguous()
    return values, offsets.contiguous().to(torch.int64), C, W


class CPUBackend:
    """C++ kernels: L1-GEMM cost tiles, in-place per-pair DP, path-only cost and gradients."""

    name = "cpu"

    @staticmethod
    def is_available():
        return _core is not None

    @staticmethod
    def path(values, offsets, C, W, diagonal):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B = offsets.numel() - 1
        lengths = offsets[1:] - offsets[:-1]
        cols = int(min(offsets[-1], max(int(lengths.max()), _WORKSPACE_ELEMENTS // (K * L))))
        workspace = values.new_empty((K * L, cols))
        dist = values.new_empty((B, K))
        path = torch.empty((B, K, L, 2), dtype=torch.int32)
        _core.cpu_path(
            values.dtype == torch.float64, _ptr(values), _ptr(offsets), B, F, _ptr(C), _ptr(W),
            K, L, bool(diagonal), _ptr(workspace), cols, _ptr(dist), _ptr(path),
        )
        return dist, path

    @staticmethod
    def path_cost(values, offsets, C, W, path):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B = offsets.numel() - 1
        path = path.contiguous()
        dist = values.new_empty((B, K))
        _core.cpu_path_cost(
            values.dtype == torch.float64, _ptr(values), _ptr(offsets), B, F, _ptr(C), _ptr(W),
            K, L, _ptr(path), _ptr(dist),
        )
        return dist

    @staticmethod
    def path_grad(values, offsets, C, W, path, grad_dist, need_values_grad):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B = offsets.numel() - 1
        path = path.contiguous()
        grad_dist = grad_dist.to(values.dtype).contiguous()
        dC, dW = torch.empty_like(C), torch.empty_like(W)
        dX = torch.zeros_like(values) if need_values_grad else None
        _core.cpu_path_grad(
            values.dtype == torch.float64, _ptr(values), _ptr(offsets), B, F, _ptr(C), _ptr(W),
            K, L, _ptr(path), _ptr(grad_dist), _ptr(dC), _ptr(dW), 0 if dX is None else _ptr(dX),
        )
        return dC, dW, dX
