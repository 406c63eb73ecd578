"""Inference with fitted prototypes: class distances, scores, probabilities, labels."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import log_softmax, softmax
from sklearn.utils.validation import check_is_fitted

from ._device import resolve_device
from ._model import ClassScorer, calibrated_logits, training_logits
from ._source import DerivativeSource, as_source
from ._typing import SeriesLike

__all__ = ["PrototypeClassifierMixin"]

# Samples per op call at inference: bounds the memory of the packed batch and the paths.
INFERENCE_CHUNK = 1024


class PrototypeClassifierMixin:
    """``transform``, ``predict``, ``predict_proba``, ``predict_log_proba`` and
    ``decision_function`` of a classifier fitted to ``centroids_``, ``weights_``,
    ``centroid_class_``, ``classes_``, ``derivative_scale_`` (None: the series' own
    features only), ``distance_power_``, ``temperature_`` and ``intercept_`` (or
    ``logit_norm`` and ``logit_scale_`` without calibration), with ``diagonal``,
    ``backend`` and ``device`` parameters (as scikit-learn's ``LinearClassifierMixin``
    serves linear models)."""

    @property
    def _n_features_out(self):
        """One output of ``transform`` per class (for ``get_feature_names_out``)."""
        return self.classes_.size

    def _scorer(self):
        return ClassScorer(self.centroid_class_, self.diagonal, self.backend)

    def _model_source(self, X):
        """``X`` validated as a source of the features the prototypes were fitted to."""
        source = as_source(X, n_features=self.n_features_in_)
        if self.derivative_scale_ is not None:
            source = DerivativeSource(source, self.derivative_scale_)
        return source

    def transform(self, X: SeriesLike) -> np.ndarray:
        """Weighted-DTW distances of each series to each class centroid.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), ndarray, or Sequence
            Series in any of the forms accepted by ``fit``; a lazy sequence is read 1024
            series at a time.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_classes)
            Distances under the fitted parameters (exact DTW), columns in the order of
            ``classes_``.
        """
        check_is_fitted(self)
        source = self._model_source(X)
        device = resolve_device(self.device)
        C = torch.from_numpy(self.centroids_).to(device)
        W = torch.from_numpy(self.weights_).to(device)
        return self._scorer().source_distances(
            source, np.arange(len(source)), C, W, INFERENCE_CHUNK
        )

    def _calibrated_logits(self, X):
        """The scores behind ``predict_proba``: the negated distances to the fitted
        power over the fitted temperature plus the intercept, or without calibration the
        training logits."""
        return self._logits_of(self.transform(X))

    def _logits_of(self, dist):
        if self.temperature_ is not None:
            return calibrated_logits(
                dist, self.temperature_, self.intercept_, self.distance_power_
            )
        return training_logits(torch.from_numpy(dist), self.logit_norm, self.logit_scale_).numpy()

    def decision_function(self, X: SeriesLike) -> np.ndarray:
        """Class scores (the logits of ``predict_proba``).

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), or ndarray
            Series in any of the forms accepted by ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes), or (n_samples,) for 2 classes
            The logits (see ``logit_norm``); with two classes, the log-odds of
            ``classes_[1]``, positive where it is predicted.
        """
        logits = self._calibrated_logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: SeriesLike) -> np.ndarray:
        """Class probabilities: the softmax of the logits.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), or ndarray
            Series in any of the forms accepted by ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return softmax(self._calibrated_logits(X), axis=1)

    def predict_log_proba(self, X: SeriesLike) -> np.ndarray:
        """Logarithm of the class probabilities.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), or ndarray
            Series in any of the forms accepted by ``fit``.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return log_softmax(self._calibrated_logits(X), axis=1)

    def predict(self, X: SeriesLike) -> np.ndarray:
        """The class of the nearest centroid under the learned weighted DTW, shifted by
        the calibration's class prior (``intercept_``): the argmax of ``predict_proba``.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), or ndarray
            Series in any of the forms accepted by ``fit``.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Predicted class labels.
        """
        distances = self.transform(X)
        if self.temperature_ is None:  # the nearest centroid, exactly
            return self.classes_[distances.argmin(1)]
        return self.classes_[self._logits_of(distances).argmax(1)]

