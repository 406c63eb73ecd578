"""What the compiled backends share: the ``_core`` module, the checks of their arguments,
the feature layout, the chunks of samples and the check of given paths.

Both backends call the same primitives of ``sktdtw._core``: ``{cpu,cuda}_path``,
``_path_cost`` and ``_path_grad``, the CUDA ones with the current stream as their last
argument.
"""
# The compiled primitives' arguments are described in src_cuda/dtw_batch.h.

import contextlib

import torch

from .._packing import check_path_shape, pad_features

try:
    from ... import _core
except ImportError:  # a source checkout without the compiled module
    _core = None


def aligned_width(n_features):
    """Feature count that starts every row of 64 or more features on a 64-byte boundary.

    The kernels load features in 64-byte vectors; aligned rows make those loads cheaper
    (about 15% on the CPU cost matrix at F=1459). Fewer features are left as they are:
    padding would add more work than it saves.
    """
    return n_features if n_features < 64 else -(-n_features // 16) * 16


def sample_chunks(offsets, n_rows, per_row, max_elements):
    """Chunks ``(b0, b1, row0, row1)`` of whole samples whose ``per_row * rows`` fits.

    A batch that fits is one chunk, decided from the shape alone (no device-to-host copy).
    Otherwise the offsets are read once and samples are grouped greedily; a sample that
    does not fit on its own still gets a chunk of its own.
    """
    B = offsets.numel() - 1
    max_rows = max(1, max_elements // max(1, per_row))
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


def check_paths(path, offsets, n_classes, length):
    """ValueError unless ``path`` is (B, K, L, 2) int32 on the batch's device with every range
    inside its sample; returns it contiguous. One host synchronisation on a GPU."""
    B = offsets.numel() - 1
    check_path_shape(path, B, n_classes, length)
    if path.device != offsets.device:
        raise ValueError(f"path is on {path.device} but the batch is on {offsets.device}")
    lengths = (offsets[1:] - offsets[:-1]).view(B, 1, 1)
    lo, hi = path.unbind(-1)
    bad = (lo < 0) | (lo > hi) | (hi >= lengths)
    if bool(bad.any()):  # the one host synchronisation
        b = int(torch.nonzero(bad.flatten(1).any(1))[0])
        raise ValueError(f"path of sample {b} has a range outside its {int(lengths[b])} steps")
    return path.contiguous()


class KernelCall:
    """The checked arguments of the kernels on one batch, in the backend's layout.

    Features are zero-padded to ``backend.feature_width`` (zero weights on the padding, so
    every cost is unchanged); gradients are cut back to the caller's features by ``unpad``.
    """

    def __init__(self, backend, values, offsets, C, W):
        device = values.device
        if device.type != backend.name or C.device != device or W.device != device:
            raise ValueError(
                f"the {backend.name} backend needs the batch, centroids and weights on one "
                f"{backend.name} device; got {device}, {C.device} and {W.device}"
            )
        if values.dtype not in (torch.float32, torch.float64):
            raise ValueError(
                f"the {backend.name} backend supports float32 and float64, not {values.dtype}"
            )
        if C.dtype != values.dtype or W.dtype != values.dtype:
            raise ValueError("the batch, centroids and weights must share one dtype")
        if values.shape[0] > torch.iinfo(torch.int32).max:  # no sample can be longer
            raise ValueError(
                f"the batch has {values.shape[0]} steps; paths are int32, so the "
                f"{backend.name} backend takes at most {torch.iinfo(torch.int32).max} per call"
            )
        self.device, self.is_double = device, values.dtype == torch.float64
        self.K, self.L, self.F = C.shape
        self.width = backend.feature_width(self.F, values.dtype)
        self.values, self.C, self.W = (
            pad_features(t, self.width).contiguous() for t in (values, C, W)
        )
        self.offsets = offsets.to(device=device, dtype=torch.int64).contiguous()
        self.n_samples, self.n_rows = self.offsets.numel() - 1, values.shape[0]

    def batch(self, b0=0, b1=None, row0=0, row1=None):
        """The kernels' first argument for samples [b0, b1), rows [row0, row1)."""
        b1 = self.n_samples if b1 is None else b1
        row1 = self.n_rows if row1 is None else row1
        return (
            self.is_double, self.values[row0:row1].data_ptr(), self.offsets[b0:].data_ptr(),
            b1 - b0, row1 - row0, self.width, row0, self.C.data_ptr(), self.W.data_ptr(),
            self.K, self.L,
        )

    def unpad(self, t):
        return t[..., :self.F].contiguous() if self.width != self.F else t


def address(t):
    """The data pointer of a tensor, or 0 (a null pointer) for None."""
    return 0 if t is None else t.data_ptr()


class CompiledBackend:
    """The three primitives over ``sktdtw._core``; a subclass names its device type (also
    the prefix of its kernels), its feature layout, its workspace bound and ``_path_grad``.
    """

    name = None

    @classmethod
    def _run(cls, primitive, *args):
        getattr(_core, f"{cls.name}_{primitive}")(*args)

    @staticmethod
    def _on(device):
        """The context in which kernels for ``device`` are launched."""
        return contextlib.nullcontext()

    @classmethod
    def path(cls, values, offsets, C, W, diagonal, with_path=True):
        call = KernelCall(cls, values, offsets, C, W)
        K, L = call.K, call.L
        with cls._on(call.device):
            bound = cls._workspace_bound(call)
            chunks = sample_chunks(call.offsets, call.n_rows, K * L, bound)
            rows = max(row1 - row0 for _, _, row0, row1 in chunks)
            # A chunk's whole cost matrix, or classes in groups for one sample longer than
            # the bound allows (dtw_batch.h: for_each_class_group); the CPU kernels cut it
            # into per-thread slots for rows of few features.
            size = max(L * rows, min(bound, K * L * rows))
            workspace = call.values.new_empty(size)
            dist = call.values.new_empty((call.n_samples, K))
            path = None
            if with_path:
                path = torch.empty((call.n_samples, K, L, 2), dtype=torch.int32, device=call.device)
            for b0, b1, row0, row1 in chunks:
                cls._run(
                    "path", call.batch(b0, b1, row0, row1), bool(diagonal), workspace.data_ptr(),
                    size, dist[b0:b1].data_ptr(), 0 if path is None else path[b0:b1].data_ptr(),
                )
        return dist, path

    @classmethod
    def path_cost(cls, values, offsets, C, W, path, trusted_path=False):
        """``trusted_path``: the path is what ``path`` has just produced for this batch, so
        only its shape is checked (a given path is read whole: a host synchronisation)."""
        call = KernelCall(cls, values, offsets, C, W)
        with cls._on(call.device):
            if trusted_path:
                check_path_shape(path, call.n_samples, call.K, call.L)
            else:
                path = check_paths(path, call.offsets, call.K, call.L)
            path = path.contiguous()
            dist = call.values.new_empty((call.n_samples, call.K))
            cls._run("path_cost", call.batch(), path.data_ptr(), dist.data_ptr())
        return dist

    @classmethod
    def path_grad(cls, values, offsets, C, W, path, grad_dist, need_values_grad):
        call = KernelCall(cls, values, offsets, C, W)
        with cls._on(call.device):
            path = check_paths(path, call.offsets, call.K, call.L)
            grad_dist = grad_dist.to(device=call.device, dtype=call.values.dtype).contiguous()
            dC, dW = torch.empty_like(call.C), torch.empty_like(call.W)
            dX = torch.zeros_like(call.values) if need_values_grad else None
            cls._path_grad(call, path, grad_dist, dC, dW, dX)
        return call.unpad(dC), call.unpad(dW), None if dX is None else call.unpad(dX)
