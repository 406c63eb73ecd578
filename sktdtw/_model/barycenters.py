"""DTW barycenter averaging (DBA) under the weighted-DTW op with unit weights.

The centroids DejaVid starts from: per class, up to ``n_samples`` training series are
averaged by DBA under the same DTW variant as the classifier: from the medoid of the series
resampled to the centroid length, align the series as they are and set each step to the
median of the frames aligned to it (the minimiser of the L1 point cost), until the
alignment cost stops falling. :class:`~sktdtw.DBAInitializer` and the classifier's
``init="dba"`` both call :func:`class_barycenters` with their :class:`BarycenterSettings`.
"""

import dataclasses
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.utils import check_random_state

from .._errors import InputError
from .._source import split_batch
from ..dtw import PackedBatch, offsets_from_lengths, weighted_dtw, weighted_dtw_path

__all__ = [
    "BarycenterSettings", "ClassBarycenters", "barycenter", "class_barycenters",
    "prototype_counts", "resample",
]

# Assignment/update rounds of the per-class k-means of DBAInitializer(n_prototypes > 1).
_KMEANS_MAX_ROUNDS = 10
# A class gets at most one prototype per this many of its series.
_SERIES_PER_PROTOTYPE = 5


def prototype_counts(n_prototypes, sizes):
    """``n_prototypes`` per class, at most one per _SERIES_PER_PROTOTYPE of the class's
    ``sizes`` series and at least one."""
    return np.minimum(n_prototypes, np.maximum(1, np.asarray(sizes) // _SERIES_PER_PROTOTYPE))


def resample(series, length):
    """Linear interpolation of each ``(T, F)`` series at ``linspace(0, T - 1, length)``.

    Returns an array of shape ``(n_series, length, F)``, float64.
    """
    out = np.empty((len(series), length, series[0].shape[1]), dtype=np.float64)
    for n, x in enumerate(series):
        pos = np.linspace(0.0, x.shape[0] - 1, length)
        left = np.floor(pos).astype(np.intp)
        right = np.minimum(left + 1, x.shape[0] - 1)
        frac = (pos - left)[:, None]
        out[n] = x[left] * (1.0 - frac) + x[right] * frac
    return out


def _alignment_weights(feature_weights, n, length, n_features):
    """Weights ``(n, length, n_features)`` of the DTW point cost: ``feature_weights`` (or
    ones) at every step."""
    if feature_weights is None:
        return torch.ones(n, length, n_features, dtype=torch.float64)
    w = torch.as_tensor(feature_weights, dtype=torch.float64)
    return w.expand(n, length, n_features)


def _pack(series):
    """The series as one float64 PackedBatch (the op's ragged layout)."""
    values = torch.from_numpy(np.concatenate(series).astype(np.float64, copy=False))
    return PackedBatch(values, offsets_from_lengths([len(x) for x in series]))


def _pairwise(batch, centers, feature_weights, diagonal, backend):
    """DTW distances ``(n_series, n_centers)`` of the packed series to ``centers``."""
    centers = torch.as_tensor(centers)
    weights = _alignment_weights(feature_weights, *centers.shape)
    return weighted_dtw(batch, centers, weights, diagonal=diagonal, backend=backend)


def _medoid(batch, candidates, feature_weights, diagonal, backend):
    """Index of the candidate (a series resampled to the barycenter's length) with the
    least total DTW distance to the series."""
    dist = _pairwise(batch, torch.from_numpy(candidates), feature_weights, diagonal, backend)
    return int(torch.argmin(dist.sum(0)))


def _aligned_medians(values, starts, path):
    """Each step's per-feature median of the frames its warping paths align to it: the
    step that minimises the L1 cost along those paths.

    ``values``: the packed frames ``(N, F)``; ``starts``: each series' first row;
    ``path``: ``(n, L, 2)`` inclusive frame ranges per step.
    """
    n, length, _ = path.shape
    lo = (path[:, :, 0] + starts[:, None]).T.ravel()  # step-major: step 0 of every series,
    counts = (path[:, :, 1] - path[:, :, 0] + 1).T.ravel()  # then step 1, ...
    first = np.repeat(np.cumsum(counts) - counts, counts)
    frames = values[np.repeat(lo, counts) + np.arange(counts.sum()) - first]
    sizes = counts.reshape(length, n).sum(1)
    medians = np.empty((length, values.shape[1]))
    start = 0
    # np.median's values (the middle frame, or the mean of the middle two, and + 0.0 as its
    # mean adds: never -0.0) from one np.partition per step: np.median's own overhead
    # outweighed its work on DBA's runs of a few dozen frames.
    for i, size in enumerate(sizes):
        low, high = (size - 1) // 2, size // 2
        part = np.partition(frames[start:start + size], sorted({low, high}), axis=0)
        medians[i] = (part[high] if low == high else (part[low] + part[high]) / 2) + 0.0
        start += size
    return medians


def _dba_updates(batch, barycenter, feature_weights, max_iter, tol, diagonal, backend):
    """DBA updates of ``barycenter`` ``(L, F)`` over the series of ``batch``, as they
    are: align every series, set each step to the median of the frames aligned to it,
    until an update lowers the total alignment cost by ``tol`` times it or less (it never
    raises it: the median minimises the cost along the paths, the next alignment can only
    lower it further), or ``max_iter`` updates. Returns the barycenter (float64 tensor)
    and the number of updates kept."""
    values, starts = batch.values.numpy(), batch.offsets[:-1].numpy()
    weights = _alignment_weights(feature_weights, 1, *barycenter.shape)

    def aligned(center):
        dist, path = weighted_dtw_path(
            batch, center[None], weights, diagonal=diagonal, backend=backend
        )
        return float(dist.sum()), path[:, 0].numpy()

    cost, path = aligned(barycenter)
    n_iter = 0
    for _ in range(max_iter):
        updated = torch.from_numpy(_aligned_medians(values, starts, path))
        updated_cost, updated_path = aligned(updated)
        if updated_cost < cost:  # rounding aside, always
            barycenter, n_iter = updated, n_iter + 1
        if updated_cost >= cost - tol * cost:
            break
        cost, path = updated_cost, updated_path
    return barycenter, n_iter


def _dba_kmeans(series, n_clusters, length, feature_weights, max_iter, tol, diagonal,
                backend, rng):
    """k-means under DTW with DBA centers (Petitjean et al.) of the series.

    Seeding is k-means++ among the series resampled to ``length`` (the first center the
    medoid, each next one drawn with probability proportional to the squared distance to
    the nearest center so far); then assignment and DBA steps (``max_iter`` DBA updates
    per center and step) alternate until the assignment no longer changes, for at most
    ``_KMEANS_MAX_ROUNDS`` rounds. A cluster left empty keeps its center. Returns
    ``(n_clusters, L, F)`` float64 and the number of rounds run.
    """
    n, batch = len(series), _pack(series)
    candidates = resample(series, length)
    chosen = [_medoid(batch, candidates, feature_weights, diagonal, backend)]
    while len(chosen) < n_clusters:
        nearest = _pairwise(
            batch, torch.from_numpy(candidates[chosen]), feature_weights, diagonal, backend
        ).min(1).values.numpy()
        nearest[chosen] = 0.0
        p = nearest**2
        if p.sum() > 0:
            chosen.append(int(rng.choice(n, p=p / p.sum())))
        else:  # every series is at distance 0 of a center: any other one
            chosen.append(int(np.setdiff1d(np.arange(n), chosen)[0]))
    centers = [torch.from_numpy(candidates[i].copy()) for i in chosen]
    assignment = None
    rounds = 0
    while rounds < _KMEANS_MAX_ROUNDS:
        rounds += 1
        dist = _pairwise(batch, torch.stack(centers), feature_weights, diagonal, backend)
        updated = dist.argmin(1).numpy()
        if assignment is not None and np.array_equal(updated, assignment):
            break
        assignment = updated
        for c in range(n_clusters):
            members = np.flatnonzero(assignment == c)
            if members.size:
                centers[c], _ = _dba_updates(
                    _pack([series[i] for i in members]), centers[c], feature_weights,
                    max_iter, tol, diagonal, backend,
                )
    return torch.stack(centers).numpy(), rounds



def barycenter(series, length, max_iter, tol, feature_weights, diagonal, backend):
    """The DBA barycenter ``(length, F)`` float64 of float64 ``series`` (see
    :func:`~sktdtw.dba_barycenter`) and the number of updates kept."""
    batch = _pack(series)
    candidates = resample(series, length)
    start = torch.from_numpy(
        candidates[_medoid(batch, candidates, feature_weights, diagonal, backend)].copy()
    )
    center, n_iter = _dba_updates(
        batch, start, feature_weights, max_iter, tol, diagonal, backend
    )
    return center.numpy(), n_iter


@dataclass(frozen=True)
class BarycenterSettings:
    """How the barycenters of every class are computed: the parameters of
    :class:`~sktdtw.DBAInitializer`, all but ``random_state``, which
    :func:`class_barycenters` takes apart."""

    centroid_length: int
    n_samples: int = 50
    max_iter: int = 100
    tol: float = 1e-5
    n_prototypes: int | np.ndarray = 1
    feature_weights: np.ndarray | None = None
    diagonal: bool = False
    backend: str = "auto"
    n_jobs: int | None = None

    @classmethod
    def of_params(cls, params):
        """The settings among a DBAInitializer's ``params`` (``get_params()``)."""
        return cls(**{field.name: params[field.name] for field in dataclasses.fields(cls)})


@dataclass(frozen=True)
class ClassBarycenters:
    """The barycenters ``(n_centroids, L, F)`` float64 of every class (grouped by class),
    the class index of each, and the DBA updates (k-means rounds) run for each class."""

    centroids: np.ndarray
    centroid_class: np.ndarray
    n_iter: np.ndarray


def class_barycenters(source, y_index, n_classes, settings, random_state):
    """The barycenters of every class of a SeriesSource (class indices ``y_index``).

    For every class, up to ``settings.n_samples`` series are drawn uniformly without
    replacement (from ``random_state``, then the seeds of each class's k-means++) and
    averaged; only the drawn series are read. Classes run in parallel with joblib.
    """
    rng = check_random_state(random_state)
    picked = []
    for k in range(n_classes):
        in_class = np.flatnonzero(y_index == k)
        size = min(settings.n_samples, in_class.size)
        picked.append(np.sort(rng.choice(in_class, size=size, replace=False)))
    feature_weights = _checked_feature_weights(settings.feature_weights, source.n_features)
    counts = _centers_per_class(settings.n_prototypes, [index.size for index in picked])
    seeds = rng.randint(np.iinfo(np.int32).max, size=len(picked))
    # A generator: joblib reads a class's series only when it dispatches that class, so
    # a lazy source holds the series of a few classes at a time, not of all of them.
    results = Parallel(n_jobs=settings.n_jobs)(
        delayed(_class_centers)(
            split_batch(source.read(index)), settings, feature_weights, seed, count
        )
        for index, seed, count in zip(picked, seeds, counts)
    )
    return ClassBarycenters(
        np.concatenate([centers for centers, _ in results]),
        np.repeat(np.arange(len(results)), [len(centers) for centers, _ in results]),
        np.array([n_iter for _, n_iter in results]),
    )


def _centers_per_class(n_prototypes, sizes):
    """The number of barycenters of each class, whose drawn series number ``sizes``;
    None for every class with ``n_prototypes=1`` (one DBA barycenter each)."""
    if isinstance(n_prototypes, Integral):
        if n_prototypes == 1:
            return [None] * len(sizes)
        return list(prototype_counts(n_prototypes, sizes))
    counts = np.asarray(n_prototypes)
    if (counts.shape != (len(sizes),) or not np.issubdtype(counts.dtype, np.integer)
            or not ((counts >= 1) & (counts <= sizes)).all()):
        raise InputError(
            f"n_prototypes must be an int or {len(sizes)} integers (one per class), "
            f"each from 1 to the class's drawn series {list(sizes)}; got "
            f"{n_prototypes!r}"
        )
    return [int(c) for c in counts]


def _checked_feature_weights(feature_weights, n_features):
    if feature_weights is None:
        return None
    weights = np.asarray(feature_weights, dtype=np.float64)
    if weights.shape != (n_features,) or not (np.isfinite(weights) & (weights > 0)).all():
        raise InputError(
            f"feature_weights must be {n_features} finite positive numbers (one per "
            f"feature); got an array of shape {weights.shape}"
        )
    return weights


def _class_centers(series, settings, feature_weights, seed, n_centers):
    """The ``(n_centers, L, F)`` barycenters of one class's series and the updates
    (or k-means rounds) run; ``n_centers=None``: one DBA barycenter."""
    series = [x.astype(np.float64) for x in series]
    s = settings
    if n_centers is None:
        center, n_iter = barycenter(
            series, s.centroid_length, s.max_iter, s.tol, feature_weights, s.diagonal,
            s.backend,
        )
        return center[None], n_iter
    return _dba_kmeans(
        series, n_centers, s.centroid_length, feature_weights, s.max_iter, s.tol,
        s.diagonal, s.backend, np.random.RandomState(seed),
    )
