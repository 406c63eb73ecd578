"""The temperature that calibrates ``predict_proba``: fitted on the class distances of
samples the model did not learn from (:mod:`sktdtw._model.selection` provides them)."""

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["fit_temperature"]


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
