"""The model pieces: what a fit starts from, what it learns, how it scores series and
how its configuration is chosen. Each piece takes the explicit settings it needs (frozen
dataclasses), never an estimator: the estimators make the settings from their parameters.

- :mod:`~sktdtw._model.barycenters`: DTW barycenter averaging, the initial centroids;
- :mod:`~sktdtw._model.initialization`: the centroid length and the initial prototypes;
- :mod:`~sktdtw._model.parameters`: the learned offsets ``(C', V')`` and their unit-free
  parametrisation;
- :mod:`~sktdtw._model.scoring`: class distances, training logits, the convergence warning;
- :mod:`~sktdtw._model.calibration`: the temperature and class-prior intercept of
  ``predict_proba``;
- :mod:`~sktdtw._model.selection`: held-out distances along the schedule and the choice
  of the kept candidate.
"""

from .barycenters import BarycenterSettings, ClassBarycenters, class_barycenters
from .calibration import Calibration, calibrated_logits, fit_calibration, fit_temperature
from .initialization import (
    InitSettings,
    WarmStart,
    auto_centroid_length,
    check_centroid_length,
    initial_prototypes,
    prototypes_per_class,
)
from .parameters import LearnedPrototypes, derivative_scale
from .scoring import (
    ClassScorer,
    InitialDistances,
    class_distances,
    training_logits,
    warn_if_not_learned,
)
from .selection import (
    INIT,
    TRAINING_SERIES,
    HeldOutDistances,
    candidate_epochs,
    clearly_better,
    select,
)

__all__ = [
    "INIT", "TRAINING_SERIES", "BarycenterSettings", "Calibration", "ClassBarycenters",
    "ClassScorer",
    "HeldOutDistances", "InitSettings", "InitialDistances", "LearnedPrototypes", "WarmStart",
    "auto_centroid_length", "calibrated_logits", "candidate_epochs", "check_centroid_length",
    "class_barycenters",
    "class_distances", "clearly_better", "derivative_scale", "fit_calibration",
    "fit_temperature", "initial_prototypes", "prototypes_per_class", "select", "training_logits",
    "warn_if_not_learned",
]
