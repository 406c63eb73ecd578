"""Ragged multivariate series whose classes differ only in the order of their events."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._errors import InputError

__all__ = ["make_temporal_order"]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_classes": [Interval(Integral, 2, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_events": [Interval(Integral, 2, None, closed="left")],
        "min_length": [Interval(Integral, 2, None, closed="left")],
        "max_length": [Interval(Integral, 2, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_temporal_order(
    n_samples: int = 200, *, n_classes: int = 3, n_features: int = 3, n_events: int = 4,
    min_length: int = 20, max_length: int = 60, noise: float = 0.3,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Generate series in which only the order of the same events tells the classes apart.

    ``n_events`` event prototypes (vectors drawn from a standard normal, shared by all
    classes) are drawn once; each class is a distinct permutation of them. A sample of
    class ``c`` has a length drawn uniformly from ``[min_length, max_length]``, split into
    one segment per event with random proportions (a random time warp), holds each event's
    prototype over its segment in the class's order, and gets Gaussian noise of standard
    deviation ``noise``. The segment proportions do not depend on the class, so the time
    average of a series (mean pooling) carries no information about its class: an
    order-blind classifier stays at chance.

    Parameters
    ----------
    n_samples : int, default=200
        Number of series; classes are balanced up to one sample.
    n_classes : int, default=3
        Number of classes, at most ``n_events!``.
    n_features : int, default=3
        Number of features per time step.
    n_events : int, default=4
        Number of events in every series.
    min_length, max_length : int, default=20, 60
        Range of the series lengths (inclusive); ``min_length >= n_events``.
    noise : float, default=0.3
        Standard deviation of the additive Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Determines all random draws. Pass an int for reproducible output.

    Returns
    -------
    X : list of ndarray of shape (T_i, n_features)
        The series, float64, lengths varying.
    y : ndarray of shape (n_samples,)
        Integer class labels in ``range(n_classes)``.

    Examples
    --------
    >>> from sktdtw.datasets import make_temporal_order
    >>> X, y = make_temporal_order(n_samples=6, n_classes=2, random_state=0)
    >>> len(X), X[0].shape[1], sorted(set(y.tolist()))
    (6, 3, [0, 1])
    """
    if min_length < n_events:
        raise InputError(
            f"min_length={min_length} must be at least n_events={n_events}: every event "
            "needs one time step"
        )
    if max_length < min_length:
        raise InputError(f"max_length={max_length} must be >= min_length={min_length}")
    if n_classes > math.factorial(n_events):
        raise InputError(
            f"n_classes={n_classes} exceeds the {math.factorial(n_events)} orders of "
            f"n_events={n_events} events"
        )
    rng = check_random_state(random_state)
    prototypes = rng.standard_normal((n_events, n_features))
    orders = []
    while len(orders) < n_classes:
        order = rng.permutation(n_events)
        if not any(np.array_equal(order, seen) for seen in orders):
            orders.append(order)
    y = rng.permutation(np.arange(n_samples) % n_classes)
    X = []
    for label in y:
        length = rng.randint(min_length, max_length + 1)
        proportions = rng.uniform(0.5, 1.5, size=n_events)
        # One step per event, the rest split by the proportions; rounding keeps the total.
        bounds = np.round(np.cumsum(proportions) / proportions.sum() * (length - n_events))
        durations = np.diff(np.concatenate([[0], bounds])).astype(np.intp) + 1
        series = np.repeat(prototypes[orders[label]], durations, axis=0)
        X.append(series + noise * rng.standard_normal(series.shape))
    return X, y
