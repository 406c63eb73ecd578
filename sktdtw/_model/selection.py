"""The prototypes and the number of epochs a fit keeps, chosen on samples its models did
not learn from.

A model records the class distances of its held-out samples at candidate epoch counts along
its schedule (:class:`HeldOutDistances`); :func:`select` scores each candidate (the
prototypes of ``init`` after each candidate epoch count, and with
``n_prototypes="auto"`` the untrained training series) by the accuracy and the calibrated
log-loss of those distances and picks one.
"""

import numpy as np
import torch
from scipy.special import log_softmax

from .calibration import DISTANCE_POWERS, fit_temperature

__all__ = [
    "INIT", "TRAINING_SERIES", "HeldOutDistances", "candidate_epochs", "clearly_better", "select",
]

# The two kinds of prototypes a fit may keep: those of ``init`` (n_prototypes per class),
# trained for a candidate number of epochs, or one per training series, untrained.
INIT, TRAINING_SERIES = "init", "training series"

# Candidates: 0 (the initial prototypes) and this many evenly spaced points of the schedule.
_CANDIDATES_ALONG_SCHEDULE = 8


def candidate_epochs(max_epochs):
    """The epoch counts a fit may keep: 0 and ``ceil(max_epochs * k / 8)``, k = 1..8."""
    steps = np.ceil(max_epochs * np.arange(1, _CANDIDATES_ALONG_SCHEDULE + 1)
                    / _CANDIDATES_ALONG_SCHEDULE)
    return np.unique(np.concatenate([[0], steps])).astype(int)


class HeldOutDistances:
    """Exact class distances of held-out samples ``index`` of a source, recorded at the
    candidate ``epochs`` (epoch counts), read ``chunk`` series at a time; with
    ``keep_parameters``, also the learned ``(C', V')`` at each of them, to return to."""

    def __init__(self, source, index, epochs, chunk, keep_parameters=False):
        self.source, self.index, self.chunk = source, np.asarray(index), chunk
        self.epochs = [int(e) for e in epochs]
        self.keep_parameters = keep_parameters
        self.dist, self.parameters = {}, {}

    def record(self, n_epochs, scorer, prototypes, strategy):
        """Record the distances after ``n_epochs`` epochs if that is a candidate. Each rank
        scores its share; the shares are summed into one matrix on every rank."""
        if n_epochs not in self.epochs or n_epochs in self.dist:
            return
        centroids, weights = prototypes.frozen()
        n_classes = int(scorer.centroid_class[-1]) + 1
        share = strategy.shard(np.arange(self.index.size))
        dist = torch.zeros((self.index.size, n_classes), dtype=torch.float64)
        if share.size:
            dist[share] = torch.from_numpy(
                scorer.source_distances(
                    self.source, self.index[share], centroids, weights, self.chunk
                )
            )
        self.dist[n_epochs] = strategy.all_reduce_sum(dist.to(centroids.device)).cpu().numpy()
        if self.keep_parameters:
            self.parameters[n_epochs] = prototypes.offsets()

    def state_dict(self):
        # Tensors only: a checkpoint is read back with torch.load(weights_only=True).
        return {
            "dist": {e: torch.from_numpy(d) for e, d in self.dist.items()},
            "parameters": dict(self.parameters),
        }

    def load_state_dict(self, state, device):
        self.dist = {e: d.numpy() for e, d in state["dist"].items()}
        self.parameters = {
            e: tuple(t.to(device) for t in pair) for e, pair in state["parameters"].items()
        }


def select(candidates, targets):
    """Score every candidate and pick one.

    Parameters
    ----------
    candidates : list of (str, int, ndarray, ndarray)
        Per candidate: its prototypes (:data:`INIT` or :data:`TRAINING_SERIES`), its
        number of epochs, the held-out class distances ``(n_samples, n_classes)`` under
        it, and the divisor of each sample's distances ``(n_samples,)`` (the logit scale
        of the model that scored it), so that the temperatures of models fitted on
        different samples share one unit.
    targets : ndarray of shape (n_samples,)
        The held-out samples' class indices.

    Returns
    -------
    results : dict of ndarray
        ``"prototypes"``, ``"n_epochs"``, ``"accuracy"``, ``"log_loss"`` (of the softmax
        of the negated distances to the power of :data:`DISTANCE_POWERS` and over the
        temperature fitted to give the lowest, as the calibration fits them),
        ``"distance_power"`` and ``"temperature"`` (in units of the divisor to that power)
        of each candidate.
    best : int
        Index of the chosen candidate. Within each kind of prototypes: the lowest
        log-loss, then the first listed (list the fewer epochs first). The log-loss, a
        proper score of every sample's calibrated probabilities, varies far less from
        fold to fold than the accuracy, which moves by whole samples: picked by accuracy,
        the epoch count followed the noise of a few held-out samples. Between kinds,
        listed simpler first, a later kind's is chosen only where its accuracy beats
        the choice so far by more than its binomial standard error (the
        one-standard-error rule: more prototypes must be clearly better, not better by
        chance).
    """
    rows = np.arange(len(targets))
    results = {key: [] for key in ("prototypes", "n_epochs", "accuracy", "log_loss",
                                   "distance_power", "temperature")}
    for prototypes, n_epochs, dist, scale in candidates:
        scaled = dist / scale[:, None]
        fits = []
        for power in DISTANCE_POWERS:
            logits = -np.power(scaled, power)
            temperature = fit_temperature(logits, targets)
            log_proba = log_softmax(logits / temperature, axis=1)
            fits.append((float(-log_proba[rows, targets].mean()), power, temperature))
        log_loss, power, temperature = min(fits, key=lambda fit: fit[0])  # first on ties
        results["prototypes"].append(prototypes)
        results["n_epochs"].append(int(n_epochs))
        results["accuracy"].append(float(np.mean(scaled.argmin(1) == targets)))
        results["log_loss"].append(log_loss)
        results["distance_power"].append(power)
        results["temperature"].append(temperature)
    results = {key: np.asarray(value) for key, value in results.items()}
    accuracy = results["accuracy"]
    best = None
    for kind in dict.fromkeys(results["prototypes"]):  # in the order listed
        within = np.flatnonzero(results["prototypes"] == kind)
        best_of_kind = min(within, key=lambda i: (results["log_loss"][i], i))
        if best is None or clearly_better(accuracy[best_of_kind], accuracy[best], len(targets)):
            best = int(best_of_kind)
    return results, best


def clearly_better(accuracy, than, n_samples):
    """Whether ``accuracy`` beats ``than`` by more than its binomial standard error over
    ``n_samples`` samples: the one-standard-error rule by which a more complex model
    (more prototypes, more features) is chosen only where it is not better by chance."""
    return bool(accuracy > than + np.sqrt(accuracy * (1 - accuracy) / n_samples))
