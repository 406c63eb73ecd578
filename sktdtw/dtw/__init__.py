"""The learned weighted DTW op and its functional API.

``weighted_dtw`` / ``weighted_dtw_path`` compute, for a ragged batch of series and K
centroid series with per-step, per-feature weights, the DTW distance (no diagonal moves by
default) and the warping paths, differentiably; the recurrence and its tie rules are in
the Notes of :func:`weighted_dtw_path`.
"""

from ._backends import (
    BACKEND_NAMES,
    available_backends,
    get_num_threads,
    max_num_threads,
    set_num_threads,
)
from ._op import DistanceOverflowError, weighted_dtw, weighted_dtw_path
from ._packing import PackedBatch, ParameterValueError, offsets_from_lengths, pack_series

__all__ = [
    "BACKEND_NAMES",
    "DistanceOverflowError",
    "PackedBatch",
    "ParameterValueError",
    "available_backends",
    "get_num_threads",
    "max_num_threads",
    "offsets_from_lengths",
    "pack_series",
    "set_num_threads",
    "weighted_dtw",
    "weighted_dtw_path",
]
