"""The classifier's starting point: the centroid length, the initial centroids from
``init``, and the initial log-weights, as :class:`InitSettings` configure them."""

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .._errors import InputError, InputWarning
from .._source import split_batch
from .barycenters import BarycenterSettings, class_barycenters, prototype_counts, resample
from .parameters import LearnedPrototypes, Parametrization, feature_std
from .selection import TRAINING_SERIES

__all__ = [
    "InitSettings", "WarmStart", "auto_centroid_length", "check_centroid_length",
    "initial_centroids", "initial_log_weights", "initial_prototypes", "prototypes_per_class",
]

# Bounds of centroid_length="auto".
_MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH = 8, 64
# A centroid_length beyond this many times the longest training series warns.
_FAR_BEYOND = 2
# Series per pass of init="mean": bounds the memory of the resampled chunk.
_MEAN_CHUNK = 1024
# Prototypes per class of init="dba" or "medoid" with n_prototypes="auto".
_AUTO_PROTOTYPES = 3


def auto_centroid_length(lengths):
    """``centroid_length="auto"``: half the median training length, within
    [_MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH] (16 for the paper's 33-window videos)."""
    half = int(round(float(np.median(lengths)) / 2))
    return int(np.clip(half, _MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH))


def check_centroid_length(length, lengths):
    """An InputWarning when a given ``centroid_length`` is far beyond the longest of the
    training ``lengths``.

    Honoured all the same (a parameter is not changed behind the user's back, and an
    ``init`` of that length must fit): the distances are right, only slow.
    """
    longest = int(np.max(lengths))
    if length > _FAR_BEYOND * longest:
        warnings.warn(
            f"centroid_length={length} is {length / longest:.0f} times the longest training "
            f"series ({longest} steps): every centroid step is aligned with a step of each "
            f"series, so the extra steps add little but multiply the cost of every distance "
            f"(centroid_length * T); use centroid_length <= {longest}, or 'auto'",
            InputWarning,
            stacklevel=5,  # the user's call: here <- _centroid_length <- fit <- _fit_context
        )


@dataclass(frozen=True)
class WarmStart:
    """The fitted prototypes a warm start continues from: centroids and weights
    ``(n_centroids, L, F)`` and the class index of each centroid."""

    centroids: np.ndarray
    centroid_class: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class InitSettings:
    """Where the prototypes of a fit start (see DejaVidClassifier's parameters of the same
    names).

    ``init`` is ``"dba"`` or ``"medoid"`` (class barycenters of ``barycenters``, whose
    centroid length, prototypes and feature weights are each model's), ``"initializer"``
    (those of a given DBAInitializer, ``barycenters`` as given), ``"mean"``, the initial
    centroids themselves, ``(n_classes * n_prototypes, L, F)``, or ``"warm start"``
    (those of ``warm_start``). ``n_series``:
    training series per class of the TRAINING_SERIES prototypes (``dba_samples``);
    ``chunk``: series per read of the passes over the data.
    """

    init: str | np.ndarray
    n_classes: int
    centroid_length: int
    n_prototypes: int | str = "auto"
    barycenters: BarycenterSettings | None = None
    weight_init: str = "ones"
    feature_scaling: str | None = "pooled"
    n_series: int = 50
    chunk: int = 16
    warm_start: WarmStart | None = None


def prototypes_per_class(settings, y_index):
    """The number of prototypes of each class that a model trained on the samples of
    class indices ``y_index`` starts from.

    For ``init="dba"`` or ``"medoid"``, :func:`prototype_counts` of the series its
    barycenters draw (``n_prototypes="auto"``: _AUTO_PROTOTYPES at most); for ``"mean"``,
    one; for a given initializer, its own; for an array, its rows per class; for a warm
    start, the fitted prototypes' own. Computed once
    from the data of the model that is kept, so that its cross-fits, on part of the data,
    start from as many prototypes as it does.
    """
    if settings.warm_start is not None:
        return np.bincount(settings.warm_start.centroid_class)
    init, n_prototypes = settings.init, settings.n_prototypes
    by_name = isinstance(init, str) and init != "initializer"
    if n_prototypes == "auto":
        if init == "initializer":
            return settings.barycenters.n_prototypes
        if not by_name:  # an array: its shape is checked against this
            return max(1, len(init) // (int(y_index.max()) + 1))
        n_prototypes = 1 if init == "mean" else _AUTO_PROTOTYPES
    if by_name and init != "mean" and n_prototypes > 1:
        return prototype_counts(
            n_prototypes, np.minimum(np.bincount(y_index), settings.barycenters.n_samples)
        )
    return n_prototypes


def initial_centroids(settings, source, y_index, n_prototypes, rng, feature_weights):
    """Initial centroids ``(n_centroids, L, F)`` float32 from ``settings.init`` and the
    class index of each (grouped by class).

    ``source``: the training SeriesSource; ``n_prototypes``: from
    :func:`prototypes_per_class`, or TRAINING_SERIES for one prototype per series of up to
    ``settings.n_series`` of each class; ``feature_weights``: None or the per-feature
    weights of the DBA alignments.
    """
    init, n_classes, length = settings.init, settings.n_classes, settings.centroid_length
    if isinstance(n_prototypes, str) and n_prototypes == TRAINING_SERIES:
        return _training_series(source, y_index, n_classes, length, settings.n_series, rng)
    if isinstance(init, str) and init == "mean":
        return _class_means(source, y_index, n_classes, length, n_prototypes)
    if isinstance(init, str):
        barycenters = _barycenter_settings(settings, n_prototypes, feature_weights)
        result = class_barycenters(
            source, y_index, n_classes, barycenters, rng.randint(np.iinfo(np.int32).max)
        )
        return result.centroids.astype(np.float32), result.centroid_class
    centroids = np.asarray(init, dtype=np.float64)
    shape = (n_classes * n_prototypes, length, source.n_features)
    if centroids.shape != shape:
        raise InputError(
            f"init has shape {centroids.shape}; expected (n_classes * n_prototypes, "
            f"centroid_length, n_features) = {shape}"
        )
    if not np.isfinite(centroids).all():
        raise InputError("init contains non-finite values")
    return centroids.astype(np.float32), np.repeat(np.arange(n_classes), n_prototypes)


def _barycenter_settings(settings, n_prototypes, feature_weights):
    """The barycenters of ``init``: a given initializer's (its n_prototypes must match),
    or ``"dba"``'s and ``"medoid"``'s, at this model's prototypes and feature weights."""
    barycenters = settings.barycenters
    if settings.init == "initializer":
        if np.any(barycenters.n_prototypes != n_prototypes):
            raise InputError(
                f"init has n_prototypes={barycenters.n_prototypes} but the classifier has "
                f"n_prototypes={n_prototypes}"
            )
        return barycenters
    return dataclasses.replace(
        barycenters, centroid_length=settings.centroid_length, n_prototypes=n_prototypes,
        feature_weights=feature_weights,
    )


def _training_series(source, y_index, n_classes, length, n_samples, rng):
    """Up to ``n_samples`` training series of each class, drawn, each resampled to
    ``length``: one prototype per series, as the references of a nearest neighbour."""
    centroids, centroid_class = [], []
    for k in range(n_classes):
        in_class = np.flatnonzero(y_index == k)
        picked = np.sort(rng.choice(in_class, size=min(n_samples, in_class.size), replace=False))
        centroids.append(resample(split_batch(source.read(picked)), length))
        centroid_class.append(np.full(picked.size, k))
    return np.concatenate(centroids).astype(np.float32), np.concatenate(centroid_class)


def _class_means(source, y_index, n_classes, length, n_prototypes):
    """``init="mean"``: every class's series resampled to ``length`` and averaged, read in
    chunks (the resampled series of a whole lazy set may not fit)."""
    if n_prototypes > 1:
        raise InputError(
            "init='mean' gives one centroid per class; use init='dba' or 'medoid' "
            f"with n_prototypes={n_prototypes}"
        )
    resampled_sum = np.zeros((n_classes, length, source.n_features))
    for index, batch in source.chunks(_MEAN_CHUNK):
        resampled = resample(split_batch(batch), length)
        del batch  # hold one chunk, not two, while the next is read
        np.add.at(resampled_sum, y_index[index], resampled)
    counts = np.bincount(y_index, minlength=n_classes)
    return (resampled_sum / counts[:, None, None]).astype(np.float32), np.arange(n_classes)


def initial_log_weights(shape, weight_init, generator):
    """Initial log-weights of the standardised features: zeros, or standard normal draws
    from ``generator`` (``weight_init="random"``)."""
    if weight_init == "random":
        return torch.randn(shape, generator=generator)
    return torch.zeros(shape)


def initial_prototypes(settings, source, y_index, n_prototypes, rng, generator, strategy,
                       device):
    """The prototypes a fit on the SeriesSource ``source`` (class indices ``y_index``)
    starts from, at their initial learned values: those of ``settings.warm_start``, else
    ``init``'s centroids (computed on rank 0 of ``strategy`` and broadcast; drawing from
    the RandomState ``rng``) and ``weight_init``'s log-weights (from the torch
    ``generator``), in the parametrisation of ``feature_scaling``, on ``device``."""
    # Passes over the data read a batch at a time: the fit holds no more.
    std = None
    if settings.feature_scaling is not None:
        pooled = settings.feature_scaling == "pooled"
        std = feature_std(source, settings.chunk, pooled=pooled)
    warm = settings.warm_start
    if warm is not None:
        centroids, centroid_class = warm.centroids, warm.centroid_class
        log_weights = torch.from_numpy(np.log(warm.weights))
    else:
        centroids, centroid_class = strategy.on_main(lambda: initial_centroids(
            settings, source, y_index, n_prototypes, rng, None if std is None else 1.0 / std,
        ))
        # Drawn on every rank: the generator then shuffles identically everywhere.
        log_weights = initial_log_weights(centroids.shape, settings.weight_init, generator)
    weights = log_weights.exp()
    if std is not None and warm is None:
        # Times 1 / std rounded once: data in units a power of two apart start from
        # weights exactly that power apart, and so train to the same model.
        weights = weights * torch.from_numpy(1.0 / std).float()
    C = torch.tensor(centroids, device=device)
    V = log_weights.to(device)
    param = (Parametrization() if std is None
             else Parametrization.standard(C, weights.to(device), std))
    return LearnedPrototypes(*param.initial(C, V), param, centroid_class)
