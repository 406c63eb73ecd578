"""Series with their first derivative appended as features, computed when read.

The derivative is that of :func:`numpy.gradient` along time: central differences inside a
series, one-sided at its ends, 0 for a series of one step. DTW on the derivative aligns
series by their local shape (slopes, peaks) rather than their level, which is what
derivative DTW (Keogh & Pazzani 2001) and its weighted combination with the raw series
(Gorecki & Luczak 2013) gain on shape-like data.
"""

import torch

from ..dtw import PackedBatch
from .source import SeriesSource

__all__ = ["DerivativeSource", "packed_gradient"]


def packed_gradient(values, offsets):
    """The time derivative of every series of a packed ``(N, F)`` tensor whose series
    start at ``offsets`` (as :func:`numpy.gradient` of each, along axis 0)."""
    n_rows = values.shape[0]
    lengths = offsets[1:] - offsets[:-1]
    first = torch.repeat_interleave(offsets[:-1], lengths, output_size=n_rows)
    last = torch.repeat_interleave(offsets[1:] - 1, lengths, output_size=n_rows)
    row = torch.arange(n_rows, device=values.device)
    before = torch.maximum(row - 1, first)
    after = torch.minimum(row + 1, last)
    span = (after - before).clamp_(min=1).to(values.dtype)  # 0 steps apart: one-step series
    return (values[after] - values[before]) / span[:, None]


class DerivativeSource(SeriesSource):
    """The series of ``base`` with their derivatives, times ``scale`` (one factor per
    feature of ``base``), appended as ``base.n_features`` more features."""

    def __init__(self, base, scale):
        self.base = base
        self.scale = torch.as_tensor(scale, dtype=torch.float64)
        self.n_features = 2 * base.n_features
        self.index = base.index
        self.device = base.device

    @property
    def base_lengths(self):
        return self.base.base_lengths

    @property
    def lengths_known(self):
        return self.base.lengths_known

    def checksums(self):
        """The checksums of the series as given (the derivatives follow from them)."""
        return self.base.checksums()

    def _read_base(self, positions):
        batch = self.base._read_base(positions)
        # float64: the difference of two float32 values may overflow float32 (scaled, the
        # slopes have the spread of the values, so they fit where the values do).
        slopes = packed_gradient(batch.values.double(), batch.offsets)
        slopes *= self.scale.to(slopes.device)
        return PackedBatch(torch.cat([batch.values, slopes.float()], dim=1), batch.offsets)

    def _view(self, index):
        return DerivativeSource(self.base._view(index), self.scale)

    def to(self, device):
        return DerivativeSource(self.base.to(device), self.scale)
