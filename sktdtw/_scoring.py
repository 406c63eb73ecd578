"""How distances become class scores: prototypes to classes, training logits, and the
temperature that calibrates ``predict_proba``."""

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["class_distances", "distance_spread", "fit_temperature", "training_logits"]

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


def fit_temperature(logits, targets):
    """The temperature ``t > 0`` minimising the log-loss of ``softmax(logits / t)``.

    The log-loss is convex in ``1 / t``, so a bounded scalar search over ``log(1 / t)``
    finds it. Logits that do not separate the classes at all give a large temperature
    (near-uniform probabilities), never a degenerate one.
    """
    logits = np.asarray(logits, dtype=np.float64)
    # Searched in units of the logits' typical spread over the classes, whatever their scale.
    spread = logits.std(1).mean()
    if not spread > 0:
        return 1.0  # all logits tie: every temperature gives the uniform distribution
    logits = logits / spread
    rows = np.arange(len(targets))

    def log_loss(log_inverse):
        return -log_softmax(logits * np.exp(log_inverse), axis=1)[rows, targets].mean()

    result = minimize_scalar(log_loss, bounds=(-12.0, 12.0), method="bounded")
    return float(spread * np.exp(-result.x))
