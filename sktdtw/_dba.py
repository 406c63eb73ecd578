"""DTW barycenter averaging (DBA) under the weighted-DTW op with unit weights.

The centroids DejaVid starts from: per class, up to
``n_samples`` training series are averaged by DBA under the same DTW variant as the
classifier: from the medoid of the series resampled to the centroid length, align the
series as they are and set each step to the median of the frames aligned to it (the
minimiser of the L1 point cost), until the alignment cost stops falling.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import numpy.typing as npt
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import validate_data

from ._errors import InputError
from ._persistence import VersionedPickleMixin
from ._series import check_series_list, check_targets
from ._source import as_source, split_batch
from ._typing import SeriesLike
from .dtw import PackedBatch, weighted_dtw, weighted_dtw_path
from .dtw._backends import BACKEND_NAMES

__all__ = ["DBAInitializer", "dba_barycenter", "prototype_counts"]

# Assignment/update rounds of the per-class k-means of DBAInitializer(n_prototypes > 1).
_KMEANS_MAX_ROUNDS = 10
# A class gets at most one prototype per this many of its series.
_SERIES_PER_PROTOTYPE = 5


def prototype_counts(n_prototypes, sizes):
    """``n_prototypes`` per class, at most one per _SERIES_PER_PROTOTYPE of the class's
    ``sizes`` series and at least one."""
    return np.minimum(n_prototypes, np.maximum(1, np.asarray(sizes) // _SERIES_PER_PROTOTYPE))


def _resample(series, length):
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
    lengths = torch.tensor([len(x) for x in series], dtype=torch.int64)
    return PackedBatch(values, torch.cat([lengths.new_zeros(1), torch.cumsum(lengths, 0)]))


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
    bounds = np.concatenate([[0], np.cumsum(counts.reshape(length, n).sum(1))])
    return np.stack([np.median(frames[bounds[i]:bounds[i + 1]], axis=0)
                     for i in range(length)])


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
    candidates = _resample(series, length)
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


@validate_params(
    {
        "series": ["array-like"],
        "length": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "feature_weights": ["array-like", None],
        "diagonal": ["boolean"],
        "backend": [StrOptions(set(BACKEND_NAMES))],
        "return_n_iter": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def dba_barycenter(
    series: SeriesLike, length: int, *, max_iter: int = 100, tol: float = 1e-5,
    feature_weights: npt.ArrayLike | None = None, diagonal: bool = False,
    backend: str = "auto", return_n_iter: bool = False,
) -> np.ndarray | tuple[np.ndarray, int]:
    """DTW barycenter of a set of series, as DejaVid initialises its centroids.

    DBA (Petitjean et al., 2011) under DejaVid's distance: the barycenter of ``length``
    steps starts at the medoid of the series resampled to ``length`` (linear
    interpolation at ``linspace(0, T - 1, length)``), the one with the least total
    distance to the series, and is refined by DBA updates: align every series as it is
    (weighted DTW with the same weight ``feature_weights[f]`` at every step, by default 1,
    i.e. the L1 point cost) and set each barycenter step and feature to the median of the
    frames aligned to it, the value that minimises the L1 cost along the alignments (the
    mean minimises a squared cost). The total alignment cost never rises; iteration stops
    when an update lowers it by ``tol`` times it or less, or after ``max_iter`` updates.

    Parameters
    ----------
    series : list of array-like of shape (T_i, n_features), or ndarray
        The series to average, ragged or not (forms accepted by the estimators).
    length : int
        Length of the barycenter (the centroid length ``L``).
    max_iter : int, default=100
        Maximum number of DBA updates; ``0`` returns the medoid.
    tol : float, default=1e-5
        Stop when an update lowers the total alignment cost by at most this fraction.
    feature_weights : array-like of shape (n_features,), default=None
        Weight of each feature in the point cost of the alignments (e.g. the inverse of
        its standard deviation, so that no feature dominates by its units); ``None``
        weighs all features 1.
    diagonal : bool, default=False
        Allow diagonal moves in the DTW alignments.
    backend : {"auto", "torch", "cpu", "cuda"}, default="auto"
        Backend of the weighted-DTW op (computations run on the CPU).
    return_n_iter : bool, default=False
        Also return the number of updates run.

    Returns
    -------
    barycenter : ndarray of shape (length, n_features)
        float64.
    n_iter : int
        Number of DBA updates kept (each lowered the cost); only if ``return_n_iter``.

    See Also
    --------
    DBAInitializer : One barycenter per class.

    Examples
    --------
    >>> import numpy as np
    >>> from sktdtw import dba_barycenter
    >>> series = [np.array([[0.0], [0.0], [1.0]]), np.array([[0.0], [1.0], [1.0], [1.0]])]
    >>> dba_barycenter(series, 2, diagonal=True).ravel()
    array([0., 1.])
    """
    # float32, as the estimators hold the series, then averaged in float64.
    series = [x.astype(np.float64) for x in check_series_list(series, input_name="series")]
    return _barycenter(series, length, max_iter, tol, feature_weights, diagonal, backend,
                       return_n_iter)


def _barycenter(series, length, max_iter, tol, feature_weights, diagonal, backend,
                return_n_iter=True):
    batch = _pack(series)
    candidates = _resample(series, length)
    start = torch.from_numpy(
        candidates[_medoid(batch, candidates, feature_weights, diagonal, backend)].copy()
    )
    barycenter, n_iter = _dba_updates(
        batch, start, feature_weights, max_iter, tol, diagonal, backend
    )
    barycenter = barycenter.numpy()
    return (barycenter, n_iter) if return_n_iter else barycenter


class DBAInitializer(VersionedPickleMixin, BaseEstimator):
    """Per-class DTW barycenters: the centroids DejaVid starts from.

    For every class, up to ``n_samples`` training series are drawn uniformly without
    replacement and averaged with :func:`dba_barycenter`. With ``n_prototypes > 1`` they
    are instead clustered by k-means under the same DTW with DBA centers (k-means++
    seeding from the medoid, then assignment and DBA steps until the assignment is
    stable), giving several barycenters per class. Classes are processed in parallel
    with joblib.

    Parameters
    ----------
    centroid_length : int, default=8
        Length ``L`` of each centroid.
    n_samples : int, default=50
        Maximum number of series per class used for the barycenter.
    max_iter : int, default=100
        Maximum number of DBA updates per class (per center and k-means step with
        ``n_prototypes > 1``); ``0`` gives the medoids.
    tol : float, default=1e-5
        A barycenter's updates stop when one lowers its total alignment cost by at most
        this fraction (see :func:`dba_barycenter`).
    n_prototypes : int or array-like of shape (n_classes,), default=1
        Number of barycenters per class. A class gets at most one per 5 of its drawn
        series (and at least one): fewer series cannot shape a prototype of their own.
        An array gives each class's number exactly (at most its drawn series; k-means
        even for 1), as :class:`DejaVidClassifier` does so that its cross-fits on part
        of the data have the prototypes of the model on all of it.
    feature_weights : array-like of shape (n_features,), default=None
        Weight of each feature in the point cost of the alignments (see
        :func:`dba_barycenter`); ``None`` weighs all features 1.
    diagonal : bool, default=False
        Allow diagonal moves in the DTW alignments.
    backend : {"auto", "torch", "cpu", "cuda"}, default="auto"
        Backend of the weighted-DTW op.
    random_state : int, RandomState instance or None, default=None
        Seeds the choice of series per class and the k-means++ seeding. Pass an int for
        reproducible output.
    n_jobs : int, default=None
        Number of classes processed in parallel. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context; ``-1`` means all processors.

    Attributes
    ----------
    centroids_ : ndarray of shape (n_centroids, centroid_length, n_features)
        The barycenters, float64, grouped by class in the order of ``classes_``
        (``n_centroids == n_classes`` when ``n_prototypes=1``).
    centroid_class_ : ndarray of shape (n_centroids,)
        Index in ``classes_`` of the class of each barycenter (non-decreasing).
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features of each time step seen in ``fit``.
    n_iter_ : ndarray of shape (n_classes,)
        Number of DBA updates run for each class (of k-means rounds with
        ``n_prototypes > 1``).

    See Also
    --------
    dba_barycenter : The barycenter of one set of series.
    DejaVidClassifier : Starts from these centroids with ``init="dba"``.

    Examples
    --------
    >>> from sktdtw import DBAInitializer
    >>> from sktdtw.datasets import make_temporal_order
    >>> X, y = make_temporal_order(n_samples=40, random_state=0)
    >>> init = DBAInitializer(centroid_length=6, random_state=0).fit(X, y)
    >>> init.centroids_.shape
    (3, 6, 3)
    """

    _parameter_constraints: dict = {
        "centroid_length": [Interval(Integral, 1, None, closed="left")],
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_prototypes": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "feature_weights": ["array-like", None],
        "diagonal": ["boolean"],
        "backend": [StrOptions(set(BACKEND_NAMES))],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self, centroid_length=8, n_samples=50, max_iter=100, tol=1e-5, n_prototypes=1,
        feature_weights=None, diagonal=False, backend="auto", random_state=None, n_jobs=None,
    ):
        self.centroid_length = centroid_length
        self.n_samples = n_samples
        self.max_iter = max_iter
        self.tol = tol
        self.n_prototypes = n_prototypes
        self.feature_weights = feature_weights
        self.diagonal = diagonal
        self.backend = backend
        self.random_state = random_state
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: SeriesLike, y: npt.ArrayLike) -> DBAInitializer:
        """Compute one barycenter per class.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), ndarray, or Sequence
            Training series: a ragged list, a 3-D array ``(n, T, F)`` (trailing all-NaN
            rows are padding), a 2-D array ``(n, T)`` of univariate series, or a lazy
            sequence (e.g. an on-disk store) of which only the chosen series are read.
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : object
            Fitted initializer.
        """
        y = validate_data(self, X="no_validation", y=y)
        # Only the series each class uses are read (validated as read, if X is lazy).
        source = as_source(X)
        classes, y_index = check_targets(y, len(source))
        n_features = source.n_features
        rng = check_random_state(self.random_state)
        picked = []
        for k in range(len(classes)):
            in_class = np.flatnonzero(y_index == k)
            size = min(self.n_samples, in_class.size)
            picked.append(np.sort(rng.choice(in_class, size=size, replace=False)))

        feature_weights = self._check_feature_weights(n_features)
        counts = self._prototype_counts([index.size for index in picked])
        seeds = rng.randint(np.iinfo(np.int32).max, size=len(picked))
        # A generator: joblib reads a class's series only when it dispatches that class, so
        # a lazy X holds the series of a few classes at a time, not of all of them.
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(self._class_centers)(
                split_batch(source.read(index)), feature_weights, seed, count
            )
            for index, seed, count in zip(picked, seeds, counts)
        )
        # Set only now: a fit that fails leaves the estimator as it was.
        self.classes_, self.n_features_in_ = classes, n_features
        self.centroids_ = np.concatenate([centers for centers, _ in results])
        self.centroid_class_ = np.repeat(
            np.arange(len(results)), [len(centers) for centers, _ in results]
        )
        self.n_iter_ = np.array([n_iter for _, n_iter in results])
        return self

    def _prototype_counts(self, sizes):
        """The number of barycenters of each class, whose drawn series number ``sizes``;
        None for every class with ``n_prototypes=1`` (one DBA barycenter each)."""
        if isinstance(self.n_prototypes, Integral):
            if self.n_prototypes == 1:
                return [None] * len(sizes)
            return list(prototype_counts(self.n_prototypes, sizes))
        counts = np.asarray(self.n_prototypes)
        if (counts.shape != (len(sizes),) or not np.issubdtype(counts.dtype, np.integer)
                or not ((counts >= 1) & (counts <= sizes)).all()):
            raise InputError(
                f"n_prototypes must be an int or {len(sizes)} integers (one per class), "
                f"each from 1 to the class's drawn series {list(sizes)}; got "
                f"{self.n_prototypes!r}"
            )
        return [int(c) for c in counts]

    def _check_feature_weights(self, n_features):
        if self.feature_weights is None:
            return None
        weights = np.asarray(self.feature_weights, dtype=np.float64)
        if weights.shape != (n_features,) or not (np.isfinite(weights) & (weights > 0)).all():
            raise InputError(
                f"feature_weights must be {n_features} finite positive numbers (one per "
                f"feature); got an array of shape {weights.shape}"
            )
        return weights

    def _class_centers(self, series, feature_weights, seed, n_centers):
        """The ``(n_centers, L, F)`` barycenters of one class's series and the updates
        (or k-means rounds) run; ``n_centers=None``: one DBA barycenter."""
        series = [x.astype(np.float64) for x in series]
        if n_centers is None:
            barycenter, n_iter = _barycenter(
                series, self.centroid_length, self.max_iter, self.tol, feature_weights,
                self.diagonal, self.backend,
            )
            return barycenter[None], n_iter
        return _dba_kmeans(
            series, n_centers, self.centroid_length, feature_weights, self.max_iter,
            self.tol, self.diagonal, self.backend, np.random.RandomState(seed),
        )
