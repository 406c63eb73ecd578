"""The compiled CPU backend (``sktdtw._core``, C++ with OpenMP and runtime SIMD dispatch)."""

import torch
import torch.nn.functional as nnf

try:
    from ... import _core
except ImportError:  # a source checkout without the compiled module
    _core = None

from .._packing import check_path_shape

# Cost-matrix workspace (elements, 4 MiB of float32): samples are processed in chunks whose
# cost matrix stays in cache for the DP that reads it right after. A long sample needs
# L x T_b per class being aligned, four classes per thread (fewer made the tiles slower):
# the workspace grows to that, never with K x T (benchmarks/bench_memory.py).
_WORKSPACE_ELEMENTS = 1 << 20


class _Call:
    """Arguments of one kernel call: contiguous CPU tensors and their shapes.

    Few features (fewer than four SIMD vectors) are zero-padded to whole vectors, with zero
    weights on the padding, so the kernels never take their slow partial-vector path on
    every cell; the sums are unchanged. Large feature counts are passed as they are.
    """

    def __init__(self, values, offsets, C, W, path=None):
        if values.device.type != "cpu" or C.device.type != "cpu":
            raise ValueError("the cpu backend needs CPU tensors")
        if values.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"the cpu backend supports float32 and float64, not {values.dtype}")
        self.is_double = values.dtype == torch.float64
        self.K, self.L, self.F = C.shape
        self.B = offsets.numel() - 1
        lanes = _core.cpu_vector_lanes(self.is_double)
        pad = (-self.F) % lanes if self.F < 4 * lanes else 0
        if pad:
            values, C, W = (nnf.pad(t, (0, pad)) for t in (values, C, W))
        self.values, self.C, self.W = values.contiguous(), C.contiguous(), W.contiguous()
        self.offsets = offsets.to(torch.int64).contiguous()
        self.padded_F = self.F + pad
        if path is not None:  # the kernels check the ranges, this the extent
            check_path_shape(path, self.B, self.K, self.L)
            self.path = path.contiguous()

    def args(self):
        return (self.is_double, self.values.data_ptr(), self.offsets.data_ptr(), self.B,
                self.padded_F, self.C.data_ptr(), self.W.data_ptr(), self.K, self.L)

    def unpad(self, t):
        return t[..., :self.F].contiguous() if self.padded_F != self.F else t


class CPUBackend:
    """C++ kernels: L1-GEMM cost tiles, in-place per-pair DP, path-only cost and gradients."""

    name = "cpu"

    @staticmethod
    def is_available():
        return _core is not None

    @staticmethod
    def path(values, offsets, C, W, diagonal, with_path=True):
        call = _Call(values, offsets, C, W)
        K, L = call.K, call.L
        longest = int((call.offsets[1:] - call.offsets[:-1]).max())
        size = min(K * L * int(call.offsets[-1]),
                   max(_WORKSPACE_ELEMENTS, L * longest * min(K, 4 * _core.get_num_threads())))
        workspace = call.values.new_empty(size)
        dist = call.values.new_empty((call.B, K))
        path = torch.empty((call.B, K, L, 2), dtype=torch.int32) if with_path else None
        _core.cpu_path(*call.args(), bool(diagonal), workspace.data_ptr(), size,
                       dist.data_ptr(), path.data_ptr() if with_path else 0)
        return dist, path

    @staticmethod
    def path_cost(values, offsets, C, W, path):
        call = _Call(values, offsets, C, W, path)
        dist = call.values.new_empty((call.B, call.K))
        _core.cpu_path_cost(*call.args(), call.path.data_ptr(), dist.data_ptr())
        return dist

    @staticmethod
    def path_grad(values, offsets, C, W, path, grad_dist, need_values_grad):
        call = _Call(values, offsets, C, W, path)
        path = call.path
        grad_dist = grad_dist.to(call.values.dtype).contiguous()
        dC, dW = torch.empty_like(call.C), torch.empty_like(call.W)
        dX = torch.zeros_like(call.values) if need_values_grad else None
        _core.cpu_path_grad(*call.args(), path.data_ptr(), grad_dist.data_ptr(), dC.data_ptr(),
                            dW.data_ptr(), 0 if dX is None else dX.data_ptr())
        return call.unpad(dC), call.unpad(dW), None if dX is None else call.unpad(dX)
