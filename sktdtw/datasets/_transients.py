"""Univariate series of sharp transients at random onsets, after the Trace data set."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

__all__ = ["make_transients"]

# The four transient shapes, as functions of the steps since the onset (0, 1, ...).
_SHAPES = (
    lambda s: np.ones(s.size),                                     # a step up
    lambda s: np.where(s < 6, 2.0, 1.0),                           # a step with an overshoot
    lambda s: np.where(s < 40, np.sin(s / 40 * 2 * np.pi), 0.0),   # one period of a sine
    lambda s: np.where(s < 50, 1.0, 0.0),                          # a pulse
)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_timestamps": [Interval(Integral, 100, None, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_transients(
    n_samples: int = 200, *, n_timestamps: int = 275, noise: float = 0.1,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Generate flat series with one sharp transient of a class's shape at a random onset.

    Four classes, in the manner of the Trace data set (simulated instrument faults): a
    step up, a step up with a 6-step overshoot to twice its height, one 40-step period
    of a sine, and a 50-step pulse. The onset is drawn uniformly from the steps
    ``[0.22, 0.58) * n_timestamps`` of every series, so that the classes differ by
    their shapes, not by where they occur; Gaussian noise of standard deviation
    ``noise`` is added.

    Parameters
    ----------
    n_samples : int, default=200
        Number of series; the classes take turns (balanced up to one sample).
    n_timestamps : int, default=275
        Length of every series (Trace's).
    noise : float, default=0.1
        Standard deviation of the additive Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Determines all random draws. Pass an int for reproducible output.

    Returns
    -------
    X : list of ndarray of shape (n_timestamps, 1)
        The series, float64.
    y : ndarray of shape (n_samples,)
        Integer class labels in ``range(4)``.

    Examples
    --------
    >>> from sktdtw.datasets import make_transients
    >>> X, y = make_transients(n_samples=8, random_state=0)
    >>> len(X), X[0].shape, sorted(set(y.tolist()))
    (8, (275, 1), [0, 1, 2, 3])
    """
    rng = check_random_state(random_state)
    steps = np.arange(n_timestamps)
    first, last = int(0.22 * n_timestamps), int(0.58 * n_timestamps)
    y = np.arange(n_samples) % len(_SHAPES)
    X = []
    for label in y:
        onset = rng.randint(first, last)
        series = np.zeros(n_timestamps)
        series[onset:] = _SHAPES[label](steps[onset:] - onset)
        X.append((series + noise * rng.standard_normal(n_timestamps))[:, None])
    return X, y
