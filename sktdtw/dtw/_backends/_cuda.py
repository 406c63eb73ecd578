"""The compiled CUDA backend (``sktdtw._core`` built with ``SKTDTW_WITH_CUDA``).

Every output and workspace is allocated with PyTorch on the tensors' device and the
kernels are queued on the current PyTorch stream of that device, so the caching allocator's
stream order keeps the workspaces alive for as long as the kernels use them.
"""

import torch

from ._compiled import CompiledBackend, _core, aligned_width, sample_chunks

# Bound on a workspace (elements): the K*L x rows cost matrix of ``path`` and the
# 2 x K x rows int32 path index of the values gradient. 2**27 floats = 512 MiB.
_WORKSPACE_ELEMENTS = 1 << 27

_runtime_devices = None


class CUDABackend(CompiledBackend):
    """CUDA kernels: tiled L1-GEMM cost matrix, per-pair DP, path-only cost and gradients."""

    name = "cuda"

    @staticmethod
    def is_available():
        global _runtime_devices
        if not (_core is not None and getattr(_core, "has_cuda", False)):
            return False
        if not torch.cuda.is_available():
            return False
        if _runtime_devices is None:  # our own (static) CUDA runtime must see the GPU too
            _runtime_devices = int(_core.cuda_device_count())
        return _runtime_devices > 0

    @staticmethod
    def feature_width(n_features, dtype):
        """64-byte aligned rows: the cost kernel stages 32-byte runs of features per row."""
        return aligned_width(n_features)

    @staticmethod
    def _on(device):
        return torch.cuda.device(device)

    @classmethod
    def _run(cls, primitive, *args):
        super()._run(primitive, *args, torch.cuda.current_stream().cuda_stream)

    @staticmethod
    def _workspace_bound(call):
        return _WORKSPACE_ELEMENTS

    @classmethod
    def _path_grad(cls, call, path, grad_dist, dC, dW, dX):
        cls._run(
            "path_grad", call.batch(), path.data_ptr(), grad_dist.data_ptr(), dC.data_ptr(),
            dW.data_ptr(), 0, 0,
        )
        if dX is None:
            return
        chunks = sample_chunks(call.offsets, call.n_rows, 2 * call.K, _WORKSPACE_ELEMENTS)
        rows = max(row1 - row0 for _, _, row0, row1 in chunks)
        index = torch.empty(2 * call.K * rows, dtype=torch.int32, device=call.device)
        for b0, b1, row0, row1 in chunks:
            cls._run(
                "path_grad", call.batch(b0, b1, row0, row1), path[b0:b1].data_ptr(),
                grad_dist[b0:b1].data_ptr(), 0, 0, dX[row0:row1].data_ptr(), index.data_ptr(),
            )
