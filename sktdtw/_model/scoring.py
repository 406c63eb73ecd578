"""How the learned prototypes score series: distances to classes, training logits, and
whether training helped."""

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from ..dtw import DistanceOverflowError, PackedBatch, weighted_dtw

__all__ = [
    "ClassScorer", "InitialDistances", "class_distances", "distance_spread", "training_logits",
    "warn_if_not_learned",
]

# Added to the per-sample standard deviation of the distances in the z-score logits.
_ZSCORE_EPS = 1e-5


def class_distances(dist, centroid_class):
    """Distances ``(B, n_classes)`` of each sample to each class: the least distance to
    the class's centroids (``dist`` is ``(B, n_centroids)``, torch; ``centroid_class`` the
    non-decreasing class index of each centroid, every class present). With one centroid
    per class, ``dist`` itself."""
    n_classes = int(centroid_class[-1]) + 1
    if dist.shape[1] == n_classes:
        return dist
    index = torch.as_tensor(centroid_class, device=dist.device).expand_as(dist)
    out = dist.new_full((dist.shape[0], n_classes), torch.inf)
    return out.scatter_reduce(1, index, dist, reduce="amin")


def training_logits(dist, logit_norm, scale):
    """Class scores (torch) from class distances: the z-score over each sample's classes
    (the paper's), ``-dist`` (``"none"``) or ``-dist / scale`` (``"scaled"``)."""
    if logit_norm == "none":
        return -dist
    if logit_norm == "scaled":
        return -dist / scale
    centred = dist - dist.mean(1, keepdim=True)
    return -centred / (dist.std(1, keepdim=True) + _ZSCORE_EPS)


def distance_spread(dist):
    """The ``"scaled"`` logits' divisor: the mean over samples of the standard deviation
    of their class distances (a float; 1 when all distances tie). Dividing by it makes the
    logits unitless, whatever the data's units, lengths and number of features."""
    spread = float(torch.as_tensor(dist, dtype=torch.float64).std(1).mean())
    return spread if np.isfinite(spread) and spread > 0 else 1.0


@dataclass(frozen=True)
class ClassScorer:
    """Class distances of series under given centroids and weights: the weighted DTW of
    the op (``diagonal``, ``backend``), reduced to classes by ``centroid_class``."""

    centroid_class: np.ndarray
    diagonal: bool
    backend: str

    def batch_distances(self, batch, centroids, weights, **op_options):
        """Differentiable class distances ``(B, n_classes)`` of a PackedBatch."""
        dist = weighted_dtw(
            batch, centroids, weights, diagonal=self.diagonal, backend=self.backend,
            **op_options,
        )
        return class_distances(dist, self.centroid_class)

    @torch.no_grad()
    def source_distances(self, source, index, centroids, weights, chunk):
        """Exact class distances ``(len(index), n_classes)``, float64, of the samples
        ``index`` of a SeriesSource, read ``chunk`` at a time onto the centroids' device."""
        chunks = []
        for first in range(0, len(index), chunk):
            try:
                # Read inside the call: no chunk outlives its distances.
                dist = self.batch_distances(
                    _read(source, index[first:first + chunk], centroids.device), centroids,
                    weights,
                )
            except DistanceOverflowError as exc:  # name the sample by its index in X
                raise exc.renamed(int(index[first + exc.sample])) from None
            chunks.append(dist.cpu().numpy().astype(np.float64))
        return np.concatenate(chunks)


@dataclass(frozen=True)
class InitialDistances:
    """Class distances ``(n, n_classes)`` of some training samples under the initial
    prototypes (``dist``) and the ``"scaled"`` logits' divisor they give
    (``logit_scale``, :func:`distance_spread`)."""

    dist: np.ndarray
    logit_scale: float

    @classmethod
    def of(cls, dist):
        return cls(dist, distance_spread(dist))

    def state_dict(self):
        # The checkpoint format's (version 2) names.
        return {"logit_scale": self.logit_scale, "initial_dist": torch.from_numpy(self.dist)}

    @classmethod
    def from_state_dict(cls, state):
        return cls(state["initial_dist"].numpy(), state["logit_scale"])


def _read(source, index, device):
    """The samples ``index`` of a SeriesSource, packed on ``device``."""
    return PackedBatch(*(t.to(device) for t in source.read(index)))


def warn_if_not_learned(initial, final, targets, where, stacklevel=5):
    """A ConvergenceWarning when the kept model's class scores ``final`` of the ``where``
    samples (``"training"``, ``"validation"``, ``"out-of-fold"``; the argmin is its
    prediction: distances, or calibrated logits negated) classify clearly worse than the
    initial class distances (by more than two binomial standard errors), or no better
    than always predicting the commonest class."""
    chance = np.bincount(targets).max() / len(targets)
    before = float(np.mean(initial.argmin(1) == targets))
    after = float(np.mean(final.argmin(1) == targets))
    # At least one sample's worth: a single error is no evidence when all were right.
    tolerance = 2 * np.sqrt(max(before * (1 - before), 1 / len(targets)) / len(targets))
    if after >= before - tolerance and after > chance:
        return
    reason = (
        f"below the {before:.3f} of the initial centroids" if after < before
        else f"no better than always predicting the commonest class ({chance:.3f})"
    )
    # Held-out samples chose the kept epoch: where even it falls short, no epoch helps.
    verdict = ("training did not help" if where == "training"
               else "at no epoch count does the model tell the classes apart on samples it "
                    "did not learn from")
    warnings.warn(
        f"DejaVidClassifier's {where} accuracy after training is {after:.3f}, {reason}: "
        f"{verdict}. Try the defaults of learning_rate, weight_init, feature_scaling and "
        "logit_norm, a smaller learning_rate or centroid_learning_rate, another "
        "centroid_length, or more max_epochs.",
        ConvergenceWarning,
        # By default the user's call: here <- a method of fit <- fit <- _fit_context.
        stacklevel=stacklevel,
    )
