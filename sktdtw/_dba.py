"""DBAInitializer and dba_barycenter: DTW barycenter averaging as estimators and
functions (the algorithm is :mod:`sktdtw._model.barycenters`)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import numpy.typing as npt
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import validate_data

from ._model.barycenters import BarycenterSettings, barycenter, class_barycenters
from ._persistence import VersionedPickleMixin
from ._source import as_source, check_series_list, check_targets
from ._typing import SeriesLike
from .dtw import BACKEND_NAMES

__all__ = ["DBAInitializer", "dba_barycenter"]


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
    center, n_iter = barycenter(
        series, length, max_iter, tol, feature_weights, diagonal, backend
    )
    return (center, n_iter) if return_n_iter else center



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
        result = class_barycenters(
            source, y_index, len(classes), BarycenterSettings.of_params(self.get_params()),
            self.random_state,
        )
        # Set only now: a fit that fails leaves the estimator as it was.
        self.classes_, self.n_features_in_ = classes, source.n_features
        self.centroids_, self.centroid_class_ = result.centroids, result.centroid_class
        self.n_iter_ = result.n_iter
        return self
