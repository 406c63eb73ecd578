"""The compiled CPU backend (``sktdtw._core``, C++ with OpenMP and runtime SIMD dispatch)."""

import os

from ._compiled import CompiledBackend, _core, address, aligned_width

# SKTDTW_CPU_ISA caps the instruction set that the kernels dispatch to (``_core`` reads it
# when it loads), so that one machine can test every instruction set it has.
ISA_CAPS = ("baseline", "avx2", "avx512")
if os.environ.get("SKTDTW_CPU_ISA", ISA_CAPS[-1]) not in ISA_CAPS:
    raise ValueError(
        f"SKTDTW_CPU_ISA must be one of {', '.join(ISA_CAPS)}; "
        f"got {os.environ['SKTDTW_CPU_ISA']!r}"
    )

# Cost-matrix workspace (elements, 4 MiB of float32): samples are processed in chunks whose
# cost matrix stays in cache for the DP that reads it right after. A long sample needs
# L x T_b per class being aligned, four classes per thread (fewer made the tiles slower):
# the workspace grows to that, never with K x T (benchmarks/bench_memory.py). Rows of few
# features use per-thread slots of it, one L x T_max block or more each; up to 4 features
# and several classes, (L + vector lanes) x T_max each (a sample's DP against a vector of
# classes at once, where the workspace holds a slot per thread).
_WORKSPACE_ELEMENTS = 1 << 20


class CPUBackend(CompiledBackend):
    """C++ kernels: L1-GEMM cost tiles, in-place per-pair DP, path-only cost and gradients."""

    name = "cpu"

    @staticmethod
    def is_available():
        return _core is not None

    @staticmethod
    def feature_width(n_features, dtype):
        """Rows of up to ``cpu_sequential_features`` features as they are: their kernels add a
        cell's features one by one (padding would be work) and read a row's partial last
        vector whole; longer rows 64-byte aligned, for their whole-vector feature chunks."""
        if n_features <= _core.cpu_sequential_features:
            return n_features
        return aligned_width(n_features)

    @staticmethod
    def _workspace_bound(call):
        longest = int((call.offsets[1:] - call.offsets[:-1]).max())
        threads = _core.get_num_threads()
        return min(
            call.K * call.L * call.n_rows,
            max(_WORKSPACE_ELEMENTS, call.L * longest * min(call.K, 4 * threads)),
        )

    @classmethod
    def _path_grad(cls, call, path, grad_dist, dC, dW, dX):
        cls._run(
            "path_grad", call.batch(), path.data_ptr(), grad_dist.data_ptr(), dC.data_ptr(),
            dW.data_ptr(), address(dX),
        )
