"""The calibration of ``predict_proba``: a power of the class distances, a temperature
and a weight of the class prior, fitted on the class distances of samples the model did
not learn from (:mod:`sktdtw._model.selection` provides them)."""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["DISTANCE_POWERS", "Calibration", "calibrated_logits", "fit_calibration",
           "fit_temperature"]

# The powers of the class distances a calibration chooses from. A distance is a sum over
# a path, right-skewed over samples: a few samples far from a class would set a temperature
# on the distances themselves (power 1) so large that it flattens the differences that
# decide the rest; a power below 1 compresses that tail.
DISTANCE_POWERS = (1.0, 0.5, 0.25)


def calibrated_logits(dist, temperature, intercept, power):
    """The logits of ``predict_proba`` for class distances ``dist``: their fitted
    ``power``, negated, over the fitted ``temperature``, plus the fitted ``intercept``."""
    return -np.power(dist, power) / temperature + intercept


@dataclass(frozen=True)
class Calibration:
    """A fitted calibration: the logits of distances ``d`` are
    ``-d ** power / temperature + intercept``."""

    temperature: float
    intercept: np.ndarray
    power: float

    def logits(self, dist):
        return calibrated_logits(dist, self.temperature, self.intercept, self.power)

    def in_units(self, unit):
        """The same calibration of distances measured in a unit ``1 / unit`` times as
        large (fitted on ``d / unit``, applied to ``d``)."""
        return Calibration(self.temperature * unit ** self.power, self.intercept, self.power)


def fit_temperature(logits, targets, intercept=0.0):
    """The temperature ``t > 0`` minimising the cross-entropy of
    ``softmax(logits / t + intercept)`` against Platt's smoothed targets.

    A sample of class ``c`` (``n_c`` samples) targets ``(n_c + 1) / (n_c + 2)`` on ``c``
    and the rest evenly on the other classes (Platt, 1999). With hard targets the log-loss
    of logits that separate the classes has no minimum: it falls as ``t -> 0`` and is flat
    to float precision long before, so the temperature would be whatever rounding left
    (and infinitely confident). The cross-entropy is convex in ``1 / t``, so a bounded
    scalar search over ``log(1 / t)`` finds its unique minimum. Logits that do not separate
    the classes at all give a large temperature (near-uniform probabilities, or the
    ``intercept``'s).
    """
    return _fit(np.asarray(logits, dtype=np.float64), targets, intercept)[0]


def fit_calibration(dist, targets, class_prior):
    """The :class:`Calibration` of class distances ``dist`` ``(n_samples, n_classes)``:
    the power ``p`` of :data:`DISTANCE_POWERS`, the temperature ``t > 0`` and the weight
    ``a`` in ``[0, 1]`` of the log class prior minimising the cross-entropy of
    ``softmax(-dist ** p / t + a * log(class_prior))`` against Platt's smoothed targets
    (as :func:`fit_temperature`); its intercept is ``a * log(class_prior)``. On ties, the
    power listed first.

    ``a = 0`` is the temperature alone, ``a = 1`` Bayes' rule with class likelihoods
    ``exp(-dist ** p / t)``: where the distances tell the classes apart poorly, the fitted
    weight lets the probabilities fall back to the class frequencies instead of to the
    uniform distribution (whose log-loss is above the prior's on unbalanced classes). One
    parameter, bounded, so it cannot overfit the held-out samples as an intercept per class
    would. The cross-entropy is jointly convex in ``(1 / t, a)``, so its minimum over ``t``
    is convex in ``a`` and a bounded scalar search finds it. Balanced classes have a
    constant log prior: there ``a = 0`` and ``t`` is :func:`fit_temperature`'s exactly.
    Three parameters, the power from three values, so they cannot overfit either.

    Examples
    --------
    >>> import numpy as np
    >>> dist = np.array([[0.1, 2.0], [3.0, 0.2], [0.3, 1.0], [1.5, 0.4]])
    >>> calibration = fit_calibration(dist, np.array([0, 1, 0, 1]), [0.5, 0.5])
    >>> calibration.power in DISTANCE_POWERS, calibration.temperature > 0
    (True, True)
    >>> calibration.logits(dist).argmax(1)
    array([0, 1, 0, 1])
    """
    dist = np.asarray(dist, dtype=np.float64)
    log_prior = np.log(np.asarray(class_prior, dtype=np.float64))
    fits = [(*_fit_with_prior(-np.power(dist, power), targets, log_prior), power)
            for power in DISTANCE_POWERS]
    temperature, intercept, _, power = min(fits, key=lambda fit: fit[2])
    return Calibration(temperature, intercept, power)


def _fit_with_prior(logits, targets, log_prior):
    """``(t, a * log_prior, cross-entropy)`` of :func:`fit_calibration` at one power."""
    if np.ptp(log_prior) == 0:
        temperature, cross_entropy = _fit(logits, targets, 0.0)
        return temperature, np.zeros_like(log_prior), cross_entropy
    result = minimize_scalar(
        lambda a: _fit(logits, targets, a * log_prior)[1], bounds=(0.0, 1.0), method="bounded"
    )
    # The bounded search never evaluates an end point; a = 0 is the temperature alone.
    candidates = [(0.0, *_fit(logits, targets, 0.0)),
                  (result.x, *_fit(logits, targets, result.x * log_prior))]
    weight, temperature, cross_entropy = min(candidates, key=lambda c: c[2])
    return temperature, weight * log_prior, cross_entropy


def _fit(logits, targets, intercept):
    """``(t, cross-entropy at t)`` of :func:`fit_temperature`."""
    # Searched in units of the logits' typical spread over the classes, whatever their scale.
    spread = logits.std(1).mean()
    if not spread > 0:
        # All logits tie: every temperature gives softmax(intercept).
        spread, logits = 1.0, np.zeros_like(logits)
    logits = logits / spread
    n_samples, n_classes = logits.shape
    rows = np.arange(n_samples)
    n_of_class = np.bincount(targets, minlength=n_classes)[targets]
    on_target = (n_of_class + 1) / (n_of_class + 2)
    soft = np.repeat(((1 - on_target) / (n_classes - 1))[:, None], n_classes, axis=1)
    soft[rows, targets] = on_target

    def cross_entropy(log_inverse):
        z = logits * np.exp(log_inverse) + intercept
        return -(soft * log_softmax(z, axis=1)).sum(1).mean()

    if not logits.any():
        return 1.0, float(cross_entropy(0.0))
    result = minimize_scalar(cross_entropy, bounds=(-12.0, 12.0), method="bounded")
    return float(spread * np.exp(-result.x)), float(result.fun)
