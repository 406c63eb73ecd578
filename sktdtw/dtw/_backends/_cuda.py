"""The compiled CUDA backend (``sktdtw._core`` built with ``SKTDTW_WITH_CUDA``).

Every output and workspace is allocated here with PyTorch on the tensors' device and the
kernels are queued on the current PyTorch stream of that device, so the caching allocator's
stream order keeps the workspaces alive for as long as the kernels use them. Batches whose
workspace would exceed ``_WORKSPACE_ELEMENTS`` are processed in chunks of whole samples.
"""

import torch

from .._packing import check_path_shape

try:
    from ... import _core
except ImportError:  # a source checkout without the compiled module
    _core = None

# Bound on a workspace (elements): the K*L x rows cost matrix of ``path`` and the
# 2 x K x rows int32 path index of the values gradient. 2**27 floats = 512 MiB.
_WORKSPACE_ELEMENTS = 1 << 27

_runtime_devices = None


def _compiled_with_cuda():
    return _core is not None and bool(getattr(_core, "has_cuda", False))


def _ptr(t):
    return t.data_ptr()


def _stream(device):
    return torch.cuda.current_stream(device).cuda_stream


def _check(values, offsets, C, W):
    if values.device.type != "cuda" or C.device != values.device or W.device != values.device:
        raise ValueError(
            "the cuda backend needs the batch, centroids and weights on one CUDA device; got "
            f"{values.device}, {C.device} and {W.device}"
        )
    if values.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the cuda backend supports float32 and float64, not {values.dtype}")
    if C.dtype != values.dtype or W.dtype != values.dtype:
        raise ValueError("the batch, centroids and weights must share one dtype")
    offsets = offsets.to(device=values.device, dtype=torch.int64).contiguous()
    return values.contiguous(), offsets, C.contiguous(), W.contiguous()


def _chunks(offsets, n_rows, per_row):
    """Sample chunks ``(b0, b1, row0, row1)`` whose ``per_row * rows`` fits the workspace.

    A batch that fits is one chunk, decided from the shape alone (no device-to-host copy).
    Otherwise the offsets are read once and samples are grouped greedily; a single sample
    that does not fit on its own still gets a chunk of its own.
    """
    B = offsets.numel() - 1
    max_rows = max(1, _WORKSPACE_ELEMENTS // max(1, per_row))
    if n_rows <= max_rows:
        return [(0, B, 0, n_rows)]
    host = offsets.cpu().tolist()
    chunks, b0 = [], 0
    while b0 < B:
        b1 = b0 + 1
        while b1 < B and host[b1 + 1] - host[b0] <= max_rows:
            b1 += 1
        chunks.append((b0, b1, host[b0], host[b1]))
        b0 = b1
    return chunks


def _check_paths(path, offsets, K, L):
    """ValueError unless path is (B, K, L, 2) int32 on the device with ranges in each sample."""
    B = offsets.numel() - 1
    check_path_shape(path, B, K, L)
    if path.device != offsets.device:
        raise ValueError(f"path is on {path.device} but the batch is on {offsets.device}")
    if not CUDABackend.validate_paths:
        return path.contiguous()
    lengths = (offsets[1:] - offsets[:-1]).view(B, 1, 1)
    lo, hi = path[..., 0], path[..., 1]
    bad = ((lo < 0) | (lo > hi) | (hi >= lengths)).flatten(1).any(1)
    if bool(bad.any()):  # the one host synchronisation of this check
        b = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"path of sample {b} has a range outside its {int(lengths[b])} steps"
        )
    return path.contiguous()


class CUDABackend:
    """CUDA kernels: tiled L1-GEMM cost matrix, per-pair DP, path-only cost and gradients."""

    name = "cuda"
    # Check every path given to path_cost / path_grad (one host sync per call). The kernels
    # clamp ranges to their sample either way, so an unchecked bad path cannot fault.
    validate_paths = True

    @staticmethod
    def is_available():
        global _runtime_devices
        if not (_compiled_with_cuda() and torch.cuda.is_available()):
            return False
        if _runtime_devices is None:  # our own (static) CUDA runtime must see the GPU too
            _runtime_devices = int(_core.cuda_device_count())
        return _runtime_devices > 0

    @staticmethod
    def path(values, offsets, C, W, diagonal, with_path=True):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B, N = offsets.numel() - 1, values.shape[0]
        with torch.cuda.device(values.device):
            chunks = _chunks(offsets, N, K * L)
            workspace = values.new_empty(K * L * max(r1 - r0 for _, _, r0, r1 in chunks))
            dist = values.new_empty((B, K))
            path = (torch.empty((B, K, L, 2), dtype=torch.int32, device=values.device)
                    if with_path else None)
            stream = _stream(values.device)
            for b0, b1, r0, r1 in chunks:
                _core.cuda_path(
                    values.dtype == torch.float64, _ptr(values[r0:r1]), _ptr(offsets[b0:]),
                    b1 - b0, r1 - r0, F, r0, _ptr(C), _ptr(W), K, L, bool(diagonal),
                    _ptr(workspace), _ptr(dist[b0:b1]), _ptr(path[b0:b1]) if with_path else 0, stream,
                )
        return dist, path

    @staticmethod
    def path_cost(values, offsets, C, W, path):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B, N = offsets.numel() - 1, values.shape[0]
        with torch.cuda.device(values.device):
            path = _check_paths(path, offsets, K, L)
            dist = values.new_empty((B, K))
            _core.cuda_path_cost(
                values.dtype == torch.float64, _ptr(values), _ptr(offsets), B, N, F, 0,
                _ptr(C), _ptr(W), K, L, _ptr(path), _ptr(dist), _stream(values.device),
            )
        return dist

    @staticmethod
    def path_grad(values, offsets, C, W, path, grad_dist, need_values_grad):
        values, offsets, C, W = _check(values, offsets, C, W)
        K, L, F = C.shape
        B, N = offsets.numel() - 1, values.shape[0]
        is_double = values.dtype == torch.float64
        with torch.cuda.device(values.device):
            path = _check_paths(path, offsets, K, L)
            grad_dist = grad_dist.to(device=values.device, dtype=values.dtype).contiguous()
            stream = _stream(values.device)
            dC, dW = torch.empty_like(C), torch.empty_like(W)
            _core.cuda_path_grad(
                is_double, _ptr(values), _ptr(offsets), B, N, F, 0, _ptr(C), _ptr(W), K, L,
                _ptr(path), _ptr(grad_dist), _ptr(dC), _ptr(dW), 0, 0, stream,
            )
            dX = None
            if need_values_grad:
                dX = torch.empty_like(values)  # every element is written
                chunks = _chunks(offsets, N, 2 * K)
                index = torch.empty(
                    2 * K * max(r1 - r0 for _, _, r0, r1 in chunks), dtype=torch.int32,
                    device=values.device,
                )
                for b0, b1, r0, r1 in chunks:
                    _core.cuda_path_grad(
                        is_double, _ptr(values[r0:r1]), _ptr(offsets[b0:]), b1 - b0, r1 - r0,
                        F, r0, _ptr(C), _ptr(W), K, L, _ptr(path[b0:b1]),
                        _ptr(grad_dist[b0:b1]), 0, 0, _ptr(dX[r0:r1]), _ptr(index), stream,
                    )
        return dC, dW, dX
