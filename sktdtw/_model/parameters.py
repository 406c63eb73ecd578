"""The learned parameters and their parametrisation, so that training is unit-free.

The classifier learns ``C'`` and ``V'`` with ``C = origin + scale * C'`` and
``W = base * exp(V')``, per feature. With feature scaling the origin and base are the
initial centroids and weights, ``scale`` the features' standard deviations, and ``C'``,
``V'`` start at 0: the distance ``sum W |C - X|`` then moves, per optimiser step, by the
same amount whatever the units of each feature, weight decay pulls towards the initial
values, and the starting values are reproduced exactly. The identity parametrisation
(origin 0, scale and base 1) learns ``C`` and ``log W`` themselves, as the paper does. The
data are never copied or rescaled.
"""

import numpy as np
import torch

from .._source import packed_gradient

__all__ = ["LearnedPrototypes", "Parametrization", "derivative_scale", "feature_std"]

# Features whose standard deviation lies within 2**-32 .. 2**32 are trained in their own
# units: their weight gradients (at most about 2**32 times the path length and the batch
# size) stay far inside float32's range.
_OWN_UNITS_EXPONENT = 32


def feature_std(source, chunk, pooled=False):
    """Standard deviation per feature over all time steps of a SeriesSource (float64; 1
    for a constant feature), read ``chunk`` series at a time. ``pooled``: one standard
    deviation for all features (the root of their mean variance), repeated per feature."""

    def values():
        for _, batch in source.chunks(chunk):
            rows = batch.values.cpu().numpy().astype(np.float64)
            del batch  # hold one chunk, not two, while the next is read
            yield rows

    return _std(values(), source.n_features, pooled)


def derivative_scale(source, chunk):
    """The factor of each appended derivative feature (float32, one per feature of
    ``source``) that gives it the standard deviation of its feature (one pass, ``chunk``
    series at a time), so that a series and its derivative start with equal weight."""
    n_features = source.n_features

    def values_and_slopes():
        for _, batch in source.chunks(chunk):
            # float64: the difference of two float32 values may overflow float32.
            rows = batch.values.double()
            slopes = packed_gradient(rows, batch.offsets)
            del batch  # hold one chunk, not two, while the next is read
            yield torch.cat([rows, slopes], dim=1).cpu().numpy()

    std = _std(values_and_slopes(), 2 * n_features)
    return (std[:n_features] / std[n_features:]).astype(np.float32)


def _std(chunks, n_features, pooled=False):
    """:func:`feature_std` of the float64 ``(rows, n_features)`` arrays of ``chunks``."""
    shift = total = squares = None
    count = 0
    for values in chunks:
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

    ``origin`` and ``base`` are ``(n_centroids, L, F)`` tensors (or None for 0 and 1),
    ``scale`` an ``(F,)`` tensor (or None for 1).
    """

    def __init__(self, origin=None, scale=None, base=None):
        self.origin = origin
        self.scale = scale
        self.base = base

    @classmethod
    def standard(cls, centroids, weights, std):
        """Learn offsets from the initial ``centroids`` and ``weights`` in units of the
        features' standard deviations ``std`` (NumPy, one per feature)."""
        scale = torch.from_numpy(np.asarray(std, dtype=np.float32))
        return cls(centroids, scale.to(centroids.device), weights)

    def units(self):
        """The powers of two ``u`` (an ``(F,)`` tensor) by which training multiplies the
        data, or None where every feature keeps its units: ``2**-e`` for a feature whose
        standard deviation is about ``2**e`` with ``|e| > 32``, else 1."""
        if self.scale is None:
            return None
        _, exponent = torch.frexp(self.scale)
        exponent = torch.where(exponent.abs() > _OWN_UNITS_EXPONENT, exponent, 0)
        if not bool(exponent.any()):
            return None
        return torch.ldexp(torch.ones_like(self.scale), -exponent)

    def initial(self, centroids, log_weights):
        """The learned values to start from, given the initial centroids and log-weights."""
        if self.origin is None:
            return centroids, log_weights
        return torch.zeros_like(centroids), torch.zeros_like(log_weights)

    def centroids(self, learned, units=None):
        """The centroids ``C`` of the learned ``C'``; ``u C`` given the ``units``."""
        if self.origin is None:
            return learned
        if units is None:
            return self.origin + self.scale * learned
        return self.origin * units + (self.scale * units) * learned

    def weights(self, learned_log, units=None):
        """The weights ``W`` of the learned ``V'``; ``W / u`` given the ``units``, the
        division made before ``V'`` enters, so that no gradient passes through ``W``."""
        weights = learned_log.exp()
        if self.base is None:
            return weights
        return (self.base if units is None else self.base / units) * weights

    def state_dict(self):
        return {"origin": self.origin, "scale": self.scale, "base": self.base}

    @classmethod
    def from_state_dict(cls, state, device):
        return cls(**{k: None if v is None else v.to(device) for k, v in state.items()})


class LearnedPrototypes:
    """What training learns: the offsets ``C'`` (``centroid_offsets``) and ``V'``
    (``log_weight_offsets``), tensors ``(n_centroids, L, F)``, in their
    :class:`Parametrization`, and the class index of each centroid (grouped by class)."""

    def __init__(self, centroid_offsets, log_weight_offsets, parametrization, centroid_class):
        self.centroid_offsets, self.log_weight_offsets = centroid_offsets, log_weight_offsets
        self.parametrization = parametrization
        self.centroid_class = centroid_class

    def centroids(self, units=None):
        return self.parametrization.centroids(self.centroid_offsets, units)

    def weights(self, units=None):
        return self.parametrization.weights(self.log_weight_offsets, units)

    def frozen(self, units=None):
        """Centroids and weights of the current values, cut from the graph."""
        return (self.parametrization.centroids(self.centroid_offsets.detach(), units),
                self.parametrization.weights(self.log_weight_offsets.detach(), units))

    def offsets(self):
        """Copies of ``(C', V')``, cut from the graph (to return to with
        :meth:`set_offsets`)."""
        return self.centroid_offsets.detach().clone(), self.log_weight_offsets.detach().clone()

    def set_offsets(self, offsets):
        self.centroid_offsets, self.log_weight_offsets = offsets

    def state_dict(self):
        # Tensors only: a checkpoint is read back with torch.load(weights_only=True). The
        # keys are the checkpoint format's (version 2), which names C' and V' "C" and "V".
        return {
            "C": self.centroid_offsets.detach(), "V": self.log_weight_offsets.detach(),
            "parametrization": self.parametrization.state_dict(),
            "centroid_class": torch.from_numpy(self.centroid_class),
        }

    @classmethod
    def from_state_dict(cls, state, device):
        return cls(
            state["C"].to(device), state["V"].to(device),
            Parametrization.from_state_dict(state["parametrization"], device),
            state["centroid_class"].numpy(),
        )
