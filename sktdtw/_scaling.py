"""The learned parametrisation of the centroids and weights, so that training is
unit-free.

The classifier learns ``C'`` and ``V'`` with ``C = origin + scale * C'`` and
``W = base * exp(V')``, per feature. With ``feature_scaling="standard"`` the origin and
base are the initial centroids and weights, ``scale`` the features' standard deviations,
and ``C'``, ``V'`` start at 0: the distance ``sum W |C - X|`` then moves, per optimiser
step, by the same amount whatever the units of each feature, weight decay pulls towards
the initial values, and the starting values are reproduced exactly. The identity
parametrisation (origin 0, scale and base 1) learns ``C`` and ``log W`` themselves, as
the paper does. The data are never copied or rescaled.
"""

import numpy as np
import torch

from ._series import packed_chunks

__all__ = ["Parametrization", "feature_std"]

def feature_std(series, n_features, chunk, pooled=False):
    """Standard deviation per feature over all time steps of ``series`` (float64; 1 for a
    constant feature), read ``chunk`` series at a time. ``pooled``: one standard deviation
    for all features (the root of their mean variance), repeated per feature."""
    shift = total = squares = None
    count = 0
    for _, values, _ in packed_chunks(series, n_features=n_features, chunk=chunk):
        values = values.astype(np.float64)
        if shift is None:
            # Moments of the data minus a first estimate of the mean: one pass, without the
            # cancellation of E[x^2] - E[x]^2 when the mean dwarfs the spread.
            shift = values.mean(0)
            total, squares = np.zeros(n_features), np.zeros(n_features)
        values -= shift
        total += values.sum(0)
        squares += np.square(values).sum(0)
        count += len(values)
    mean = total / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    # A feature whose spread is below float32 rounding of its mean is constant.
    variance[np.sqrt(variance) <= 1e-7 * np.abs(shift + mean)] = 0.0
    if pooled:
        variance = np.full(n_features, variance.mean())
    std = np.sqrt(variance)
    std[~(std > 0)] = 1.0
    return std


class Parametrization:
    """The map from the learned ``(C', V')`` to centroids and weights.

    ``origin`` and ``base`` are ``(n_centroids, L, width)`` tensors (or None for 0 and
    1), ``scale`` a ``(width,)`` tensor (or None for 1); features beyond the data's, the
    op's padding, have scale 1.
    """

    def __init__(self, origin=None, scale=None, base=None):
        self.origin = origin
        self.scale = scale
        self.base = base

    @classmethod
    def standard(cls, centroids, weights, std):
        """Learn offsets from the initial (padded) ``centroids`` and ``weights`` in units
        of the features' standard deviations ``std`` (NumPy, one per data feature)."""
        scale = np.ones(centroids.shape[-1], dtype=np.float32)
        scale[:len(std)] = std
        return cls(centroids, torch.from_numpy(scale).to(centroids.device), weights)

    def initial(self, centroids, log_weights):
        """The learned values to start from, given the initial centroids and log-weights."""
        if self.origin is None:
            return centroids, log_weights
        return torch.zeros_like(centroids), torch.zeros_like(log_weights)

    def centroids(self, learned):
        if self.origin is None:
            return learned
        return self.origin + self.scale * learned

    def weights(self, learned_log):
        weights = learned_log.exp()
        return weights if self.base is None else self.base * weights

    def state_dict(self):
        return {"origin": self.origin, "scale": self.scale, "base": self.base}
