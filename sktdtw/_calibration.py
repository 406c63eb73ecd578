"""The temperature that calibrates ``predict_proba``, fitted on samples the model did not
learn from."""

import warnings

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

from ._errors import InputWarning

__all__ = ["calibrated_temperature", "cross_fitted_distances", "fit_temperature"]


def fit_temperature(logits, targets):
    """The temperature ``t > 0`` minimising the cross-entropy of ``softmax(logits / t)``
    against Platt's smoothed targets.

    A sample of class ``c`` (``n_c`` samples) targets ``(n_c + 1) / (n_c + 2)`` on ``c``
    and the rest evenly on the other classes (Platt, 1999). With hard targets the log-loss
    of logits that separate the classes has no minimum: it falls as ``t -> 0`` and is flat
    to float precision long before, so the temperature would be whatever rounding left
    (and infinitely confident). The cross-entropy is convex in ``1 / t``, so a bounded
    scalar search over ``log(1 / t)`` finds its unique minimum. Logits that do not separate
    the classes at all give a large temperature (near-uniform probabilities).
    """
    logits = np.asarray(logits, dtype=np.float64)
    # Searched in units of the logits' typical spread over the classes, whatever their scale.
    spread = logits.std(1).mean()
    if not spread > 0:
        return 1.0  # all logits tie: every temperature gives the uniform distribution
    logits = logits / spread
    n_samples, n_classes = logits.shape
    rows = np.arange(n_samples)
    n_of_class = np.bincount(targets, minlength=n_classes)[targets]
    on_target = (n_of_class + 1) / (n_of_class + 2)
    soft = np.repeat(((1 - on_target) / (n_classes - 1))[:, None], n_classes, axis=1)
    soft[rows, targets] = on_target

    def cross_entropy(log_inverse):
        return -(soft * log_softmax(logits * np.exp(log_inverse), axis=1)).sum(1).mean()

    result = minimize_scalar(cross_entropy, bounds=(-12.0, 12.0), method="bounded")
    return float(spread * np.exp(-result.x))


def cross_fitted_distances(estimator, classes, source, y_index, n_splits):
    """Out-of-fold class distances ``(n_samples, n_classes)`` of ``n_splits`` stratified
    cross-fits of copies of ``estimator`` without calibration, checkpoint or warm start."""
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=0)
    fold_model = clone(estimator).set_params(
        calibration=None, checkpoint=None, verbose=0, warm_start=False
    )
    dist = np.empty((len(y_index), classes.size))
    for fit_index, held_index in folds.split(np.zeros(len(y_index)), y_index):
        with warnings.catch_warnings():
            # Warnings of the cross-fits would repeat those of the fit itself.
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", InputWarning)
            fold_model.fit(source.subset(fit_index), classes[y_index[fit_index]])
        dist[held_index] = fold_model.transform(source.subset(held_index))
    return dist


def calibrated_temperature(
    estimator, classes, source, y_index, scoring_dist, scoring_index, no_refit
):
    """The ``temperature_`` of an estimator being fitted to the labels ``classes[y_index]``
    (None without calibration), fitted on class distances of samples the model did not
    learn from: out-of-fold distances of
    ``calibration_cv`` cross-fits, else (``no_refit``: a validation split, whose samples
    ``scoring_index`` are held out, or a warm start, whose training no fresh cross-fit
    repeats; ``calibration_cv=None``; a class of one sample) the scoring samples'
    distances ``scoring_dist``."""
    if estimator.calibration is None:
        return None
    n_splits = min(estimator.calibration_cv or 0, np.bincount(y_index).min())
    if no_refit or n_splits < 2:
        return fit_temperature(-scoring_dist, y_index[scoring_index])
    dist = cross_fitted_distances(estimator, classes, source, y_index, n_splits)
    return fit_temperature(-dist, y_index)
