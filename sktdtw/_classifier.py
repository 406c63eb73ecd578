"""DejaVidClassifier: learned weighted-DTW distances to learned class centroids."""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from functools import partial
from numbers import Integral, Real

import numpy as np
import numpy.typing as npt
import torch
from sklearn import get_config
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ._dba import DBAInitializer
from ._device import resolve_device
from ._errors import InputError, InputWarning
from ._inference import INFERENCE_CHUNK, PrototypeClassifierMixin
from ._model import (
    INIT,
    TRAINING_SERIES,
    BarycenterSettings,
    Calibration,
    ClassScorer,
    HeldOutDistances,
    InitialDistances,
    InitSettings,
    LearnedPrototypes,
    WarmStart,
    auto_centroid_length,
    candidate_epochs,
    check_centroid_length,
    clearly_better,
    derivative_scale,
    fit_calibration,
    initial_prototypes,
    prototypes_per_class,
    select,
    warn_if_not_learned,
)
from ._persistence import VersionedPickleMixin
from ._source import DerivativeSource, as_source, check_targets
from ._training import (
    Checkpoint,
    Trainer,
    TrainingSettings,
    current_strategy,
    empty_history,
    fit_fingerprint,
)
from ._typing import SeriesLike
from .dtw import BACKEND_NAMES

__all__ = ["DejaVidClassifier"]


# Training samples whose distances under the initial prototypes fit the logits' scale
# (and, where no held-out samples choose the epoch, after training decide the
# ConvergenceWarning and the temperature); all of them, if fewer.
_SCORING_SAMPLES = 2048


class DejaVidClassifier(
    PrototypeClassifierMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
    ClassifierMixin, VersionedPickleMixin, BaseEstimator
):
    """Classify variable-length multivariate time series by learned weighted DTW (DejaVid).

    Every class ``k`` has a centroid series ``C[k]`` of ``centroid_length`` steps and a
    positive weight per centroid step and feature ``W[k] = exp(V[k])``. A series ``X_b``
    is scored against class ``k`` by the DTW distance with the weighted L1 point cost
    ``sum_f W[k, i, f] * |C[k, i, f] - X_b[j, f]|``, and classified to the nearest class.
    Centroids (initialised by DTW barycenter averaging) and log-weights ``V`` are learned
    by backpropagating a cross-entropy loss through the DTW distances, with AdamW and a
    cosine learning-rate schedule. By default the warping paths of an epoch are those of
    the parameters frozen at its start (FECW, ``path_update="epoch"``); predictions always
    use the exact DTW under the final parameters. By default ``fit`` chooses how many
    epochs of the schedule to keep, from 0 (the initial centroids) to ``max_epochs``, on
    samples its models did not learn from (see ``cv``), so training never ends below its
    starting point on held-out data.

    Parameters
    ----------
    centroid_length : int or "auto", default="auto"
        Number of steps ``L`` of each centroid. ``"auto"``: half the median training
        length, clipped to [8, 64] (16 for the paper's 33-window videos; the paper used 8).
        A length over twice the longest training series is honoured, with a UserWarning
        (it adds little but multiplies the cost; for a lazy sequence, only when it has
        ``lengths``).
    n_prototypes : int or "auto", default="auto"
        Centroid-and-weight pairs (prototypes) per class, initialised by k-means under
        the same DTW with DBA centers; a class's distance is the least distance to its
        prototypes, so a class can hold several shapes. A class gets at most one per 5
        of its training series (counted on all of them: the cross-fits of ``cv`` start
        from as many as the model they choose for). ``1`` is DejaVid exactly.
        ``"auto"``: 3 (1 for ``init="mean"``; a DBAInitializer's or an array's own), or,
        where the cross-fits (or the validation samples) score them better than every
        epoch count of those, one prototype per training series (up to ``dba_samples``
        of each class, resampled to ``centroid_length``, untrained): a nearest-neighbour
        rule under the same distance, for classes of many shapes or of very few series.
        It predicts at the cost of that many prototypes.
    derivatives : bool or "auto", default="auto"
        Append each series' derivative along time (as :func:`numpy.gradient`), scaled
        to the training standard deviation of its feature, as ``n_features`` more
        features: the warping paths and the weights then follow local shape (slopes,
        peaks) as well as level, as in derivative DTW. ``"auto"``: appended where the
        cross-fits of ``cv`` score the untrained candidates (the prototypes of ``init``
        at 0 epochs and, with ``n_prototypes="auto"``, the training series) better with
        them than without by more than one binomial standard error
        (``derivative_results_``); not appended where no cross-fits run (``cv=None``, a
        ``validation_fraction``, a single-sample class) or ``init`` is an array.
        ``False`` is DejaVid exactly. Appended, they double the cost of a distance.
    learning_rate : float, default=1e-2
        Learning rate of the log-weights (see ``feature_scaling``).
    centroid_learning_rate : float, default=None
        Learning rate of the centroids; ``None`` means ``learning_rate / 3``.
    max_epochs : int, default=72
        Training epochs; the learning rates anneal to 0 along a cosine over them. ``0``
        keeps the initial parameters. The paper: 36 (small data sets need more steps).
    batch_size : int, default=16
        Number of series per optimisation step (the paper: 48). Small data sets need
        the extra steps of small batches.
    weight_decay : float, default=0.01
        AdamW weight decay of both the centroids and the log-weights.
    weight_init : {"ones", "random"}, default="ones"
        Initial log-weights: zeros (weights 1, or ``1 / std`` with feature scaling), or
        standard normal draws (the authors'; with few features and steps, accuracy can
        drop to chance: on aeon's 10 classification sets the paper's configuration
        averaged 0.39, the defaults 0.81).
    learn_weights : bool, default=True
        Learn the weights; if False they keep their initial values.
    learn_centroids : bool, default=True
        Learn the centroids; if False they keep their initial values.
    diagonal : bool, default=False
        Allow diagonal moves in the warping paths (the paper's ablation).
    path_update : {"epoch", "batch"}, default="epoch"
        ``"epoch"``: paths chosen by the parameters frozen at the start of each epoch
        (FECW); ``"batch"``: by the current parameters at every step.
    feature_scaling : {"pooled", "standard"} or None, default="pooled"
        Learn ``C = C0 + std * C'`` and ``W = W0 * exp(V')`` from ``C' = V' = 0``, so
        that learning rates and weight decay (towards the initial values) act alike
        whatever the data's units; initial unit weights are ``1 / std``. ``"pooled"``:
        one training ``std`` for all features (keeps an embedding's geometry);
        ``"standard"``: one per feature (evens out features in different units, and
        weights the DBA alignments by ``1 / std``); ``None``: the data's units (the
        paper's). ``centroids_`` and ``weights_`` are in the data's units either way.
    logit_norm : {"scaled", "zscore", "none"}, default="scaled"
        Class scores of the training loss: ``"scaled"``, the negated distances divided
        by a constant fitted before training (``logit_scale_``, the typical spread of a
        sample's class distances under the initial parameters); ``"zscore"``, the
        z-score of the negated distances over the classes of each sample (the paper's;
        with two classes it is always +-1/sqrt(2), so its loss has no gradient); or
        ``"none"``, the negated distances themselves.
    calibration : {"temperature"} or None, default="temperature"
        ``"temperature"``: ``predict_proba`` is the softmax of the negated class
        distances, to a power ``distance_power_`` of 1, 0.5 or 0.25 (below 1, the long
        tail of samples far from a class does not set the temperature for all), over a
        temperature (``temperature_``) plus ``intercept_``, a fitted share ``a`` in
        ``[0, 1]`` of the log training class frequencies (Bayes' rule at ``a = 1``;
        ``a = 0``, no intercept, on balanced classes), all three fitted by
        minimising the cross-entropy against Platt's smoothed targets on samples the
        model did not learn from (see ``cv``): finite even where those samples are all
        separated, and no worse than the class frequencies where the distances tell the
        classes apart poorly. ``predict`` is the argmax of the same scores. ``None``:
        the softmax of the training logits (the paper's), and ``predict`` the nearest
        centroid.
    cv : int or None, default=3
        Stratified folds of the cross-fits that choose the number of epochs and fit the
        temperature (at most as many as the smallest class has samples). Each fold model
        trains on the other folds along the full schedule and records its held-out
        samples' distances at 0 and at every eighth of ``max_epochs`` epochs; the epoch
        count with the lowest out-of-fold log-loss (then fewer epochs) is
        kept (``cv_results_``), and the model on all the data trains for that many
        epochs of the same schedule; the temperature is fitted on the out-of-fold
        distances at that count, in units of each model's ``logit_scale_``. ``fit`` then
        costs at most ``1 + cv`` fits, and with ``derivatives="auto"`` the initial
        prototypes of ``2 * cv`` more, untrained. A ``validation_fraction`` is used
        instead when set. ``None``: no cross-fits; all ``max_epochs`` epochs are kept and
        the temperature is fitted on training distances, with an InputWarning (cheap,
        over-confident), as it is with a warm start.
    init : {"dba", "medoid", "mean"}, DBAInitializer or array-like, default="dba"
        Initial centroids. ``"dba"``: per-class DTW barycenters of up to ``dba_samples``
        training series with ``dba_max_iter`` updates; ``"medoid"``: their starting
        medoids; ``"mean"``: the per-class mean of all training series resampled to
        ``centroid_length``; a :class:`DBAInitializer` (its parameters average the training
        series, seeded by ``random_state``, not its own; its ``centroid_length`` and
        ``n_prototypes`` must match); or an array
        ``(n_classes * n_prototypes, centroid_length, n_features)`` grouped by class.
    dba_samples : int, default=50
        Maximum number of series per class for ``init="dba"`` and ``"medoid"``.
    dba_max_iter : int, default=100
        Maximum number of DBA updates per class for ``init="dba"``.
    validation_fraction : float, default=None
        Fraction of the training set held out (stratified) instead of the ``cv``
        cross-fits: one model trains on the rest, one half of the held-out samples
        (about half of each class) chooses the epoch count among the same candidates,
        and the other half fits the temperature (a temperature fitted on the samples
        that chose the epoch would be over-confident). ``fit`` then costs one fit.
    warm_start : bool, default=False
        If True and the estimator is fitted, a new ``fit`` starts from the current
        centroids and weights (``init`` and ``weight_init`` are ignored) and trains for
        ``max_epochs`` more epochs with a fresh optimiser and schedule.
    device : str, default="auto"
        Torch device of training and inference; ``"auto"``: ``"cuda"`` when available,
        else ``"cpu"``. The fitted state is NumPy, so a GPU-fitted model predicts anywhere.
    backend : {"auto", "torch", "cpu", "cuda"}, default="auto"
        Backend of the weighted-DTW op (see :func:`sktdtw.dtw.weighted_dtw`).
    n_jobs : int, default=None
        Number of classes whose initial centroids are computed in parallel. ``None``
        means 1 unless in a :obj:`joblib.parallel_backend` context.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the DBA series, the initial log-weights and the shuffling. With
        an int, fits on the same data and machine (CPU) give the same arrays bit for bit.
    verbose : int, default=0
        ``>= 1`` shows a progress bar over the epochs with the loss and accuracies.
    checkpoint : str or os.PathLike, default=None
        File the training state is saved to (atomically) after every epoch. If it was
        written by a fit with the same parameters (but ``verbose``, ``checkpoint``,
        ``n_jobs``, ``device``), series (their lengths and values, by a digest of their
        CRC-32s) and labels, training resumes after its last epoch with the result of an
        uninterrupted run (bit for bit on the CPU; the ``cv`` cross-fits run again);
        another fit's checkpoint is a ValueError, never overwritten. So one file serves
        one fit: in a cross-validation or a search, every fit after the first
        (other data or parameters) fails with that error. Only rank 0 writes it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features per time step seen in ``fit``.
    centroids_ : ndarray of shape (n_centroids, centroid_length, n_model_features)
        The learned centroids, float32, grouped by class (``n_centroids`` is
        ``n_classes * n_prototypes`` unless a class had fewer than 5 series per
        prototype among its ``dba_samples``, or the training series were chosen).
        ``n_model_features`` is ``n_features_in_``, or twice that with the derivatives
        (their features last).
    weights_ : ndarray of shape (n_centroids, centroid_length, n_model_features)
        The learned (positive) weights, float32.
    derivative_scale_ : ndarray of shape (n_features_in_,) or None
        The factor of each appended derivative feature (see ``derivatives``); None where
        none are appended.
    derivative_results_ : dict of ndarray or None
        Where ``derivatives="auto"`` chose: ``"derivatives"`` (False, True) and the
        out-of-fold ``"accuracy"`` of the untrained candidate chosen without and with
        them; else None.
    centroid_class_ : ndarray of shape (n_centroids,)
        Index in ``classes_`` of the class of each centroid.
    logit_scale_ : float
        The divisor of the ``"scaled"`` training logits.
    distance_power_ : float or None
        The power of the class distances in the calibrated logits, 1, 0.5 or 0.25 (see
        ``calibration``; None without calibration).
    temperature_ : float or None
        The temperature of ``predict_proba``, in units of the distances to the power
        ``distance_power_`` (None without calibration).
    intercept_ : ndarray of shape (n_classes,) or None
        Added to the negated distances (to the power ``distance_power_``) over
        ``temperature_`` in ``decision_function``,
        ``predict_proba`` and ``predict``: ``a * log(class frequency)`` with the fitted
        ``a`` in ``[0, 1]`` (see ``calibration``; None without calibration).
    history_ : dict of lists
        One entry per epoch of the last call to ``fit``: ``"loss"`` (mean training loss),
        ``"train_accuracy"`` (accuracy of the training-batch predictions made during the
        epoch), ``"learning_rate"`` and ``"centroid_learning_rate"`` (those used in the
        epoch) and ``"seconds"``.
    n_epochs_ : int
        Number of epochs of training that the fitted parameters have had in the last call
        to ``fit`` (0: the initial ones).
    cv_results_ : dict of ndarray or None
        The candidates and their scores on the out-of-fold (or validation) samples:
        ``"prototypes"`` (``"init"``, the prototypes of ``init``, or ``"training
        series"``, see ``n_prototypes``), ``"n_epochs"``, ``"accuracy"``, ``"log_loss"``
        (of the softmax of the distances to the power of 1, 0.5 or 0.25 that gives the
        lowest, at its fitted temperature, without the class prior), ``"distance_power"``
        and ``"temperature"`` (in units of the logit scale to that power); None when
        nothing was chosen (``cv=None``, a warm start).
    best_index_ : int or None
        Index in ``cv_results_`` of the chosen candidate.

    See Also
    --------
    DBAInitializer : The initial centroids.
    sktdtw.dtw.weighted_dtw : The distance, as a differentiable op.

    Notes
    -----
    This implements DejaVid (Ho et al., CVPR 2025). Where the paper selected the best
    epoch on its test split, this estimator selects the epoch count on cross-fits of the
    training data (or a held-out ``validation_fraction`` of it).

    **Defaults and the paper's configuration.** The defaults were chosen on the
    classification data sets inside aeon (the project's accuracy benchmark), where the
    paper's settings often learn nothing. The paper's configuration, for video TSEs, is
    ``DejaVidClassifier(centroid_length=8, n_prototypes=1, learning_rate=1e-3,
    max_epochs=36, batch_size=48, weight_init="random", feature_scaling=None,
    logit_norm="zscore", calibration=None, cv=None)`` (HMDB51: ``learning_rate=8e-3``). A fit
    that ends below its initial centroids' accuracy, or no better than predicting the
    commonest class, raises a :class:`~sklearn.exceptions.ConvergenceWarning` saying
    what to try.

    **Data that do not fit in memory.** ``X`` may be any :class:`collections.abc.Sequence`
    other than a list or tuple (e.g. :class:`sktdtw.io.TSEStore`) of ``(T_i,
    n_features)`` arrays: it is never loaded whole (training reads each mini-batch when
    used, ``init="dba"`` only the series it averages, inference 1024 series at a time),
    each batch is validated as read, and errors name the sample by its index in ``X``.

    **Several processes.** If a :mod:`torch.distributed` process group is initialised,
    training is data-parallel over it: ``batch_size`` is the global batch, gradients are
    summed over the ranks and every rank takes the same step, so the number of processes
    changes the speed, not the result (up to floating-point rounding).

    Examples
    --------
    >>> from sktdtw import DejaVidClassifier
    >>> from sktdtw.datasets import make_temporal_order
    >>> X, y = make_temporal_order(n_samples=60, n_classes=2, random_state=0)
    >>> clf = DejaVidClassifier(max_epochs=5, random_state=0).fit(X[:40], y[:40])
    >>> clf.predict(X[40:]).shape
    (20,)
    >>> clf.transform(X[40:]).shape
    (20, 2)
    """

    _parameter_constraints: dict = {
        "centroid_length": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_prototypes": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "derivatives": ["boolean", StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "centroid_learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "weight_init": [StrOptions({"random", "ones"})],
        "learn_weights": ["boolean"],
        "learn_centroids": ["boolean"],
        "diagonal": ["boolean"],
        "path_update": [StrOptions({"epoch", "batch"})],
        "feature_scaling": [StrOptions({"standard", "pooled"}), None],
        "logit_norm": [StrOptions({"scaled", "zscore", "none"})],
        "calibration": [StrOptions({"temperature"}), None],
        "cv": [Interval(Integral, 2, None, closed="left"), None],
        "init": [StrOptions({"dba", "medoid", "mean"}), DBAInitializer, "array-like"],
        "dba_samples": [Interval(Integral, 1, None, closed="left")],
        "dba_max_iter": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "backend": [StrOptions(set(BACKEND_NAMES))],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint": [str, os.PathLike, None],
    }

    def __init__(
        self,
        centroid_length="auto",
        n_prototypes="auto",
        derivatives="auto",
        learning_rate=1e-2,
        centroid_learning_rate=None,
        max_epochs=72,
        batch_size=16,
        weight_decay=0.01,
        weight_init="ones",
        learn_weights=True,
        learn_centroids=True,
        diagonal=False,
        path_update="epoch",
        feature_scaling="pooled",
        logit_norm="scaled",
        calibration="temperature",
        cv=3,
        init="dba",
        dba_samples=50,
        dba_max_iter=100,
        validation_fraction=None,
        warm_start=False,
        device="auto",
        backend="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
        checkpoint=None,
    ):
        self.centroid_length = centroid_length
        self.n_prototypes = n_prototypes
        self.derivatives = derivatives
        self.learning_rate = learning_rate
        self.centroid_learning_rate = centroid_learning_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.weight_init = weight_init
        self.learn_weights = learn_weights
        self.learn_centroids = learn_centroids
        self.diagonal = diagonal
        self.path_update = path_update
        self.feature_scaling = feature_scaling
        self.logit_norm = logit_norm
        self.calibration = calibration
        self.cv = cv
        self.init = init
        self.dba_samples = dba_samples
        self.dba_max_iter = dba_max_iter
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.device = device
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    @_fit_context(
        # init may be a DBAInitializer, whose parameters fit validates as its own fit would.
        prefer_skip_nested_validation=False
    )
    def fit(self, X: SeriesLike, y: npt.ArrayLike) -> DejaVidClassifier:
        """Learn the class centroids and weights.

        Parameters
        ----------
        X : list of array-like of shape (T_i, n_features), ndarray, or Sequence
            Training series: a ragged list, a 3-D array ``(n, T, F)`` (trailing all-NaN
            rows are padding), a 2-D array ``(n, T)`` of univariate series, or a lazy
            sequence of ``(T_i, n_features)`` arrays read on demand (see Notes).
        y : array-like of shape (n_samples,)
            Class labels of any type.

        Returns
        -------
        self : object
            Fitted classifier.
        """
        y = validate_data(self, X="no_validation", y=y)
        warm = self.warm_start and hasattr(self, "centroids_")
        source = as_source(X, n_features=self.n_features_in_ if warm else None)
        classes, y_index = check_targets(
            y, len(source), min_classes=2, name=type(self).__name__,
            expected_classes=self.classes_ if warm else None,
        )
        init = self._init_settings(classes.size, self._centroid_length(source, warm), warm)
        trains = self.max_epochs > 0 and (self.learn_centroids or self.learn_weights)
        strategy = current_strategy()
        checkpoint = resumed = None
        if trains and self.checkpoint is not None:
            # Before any draw from a RandomState passed as random_state; on rank 0, the one
            # that reads and writes the file.
            fingerprint = strategy.on_main(
                lambda: fit_fingerprint(self._fingerprinted_params(), source, classes, y_index,
                                        self._warm_arrays(init))
            )
            checkpoint = Checkpoint(self.checkpoint, fingerprint, strategy)
            # Read once, now: another fit's checkpoint is refused before any cross-fit is
            # paid for, even where the chosen model will not train (the training series).
            resumed = checkpoint.load()
        rng = self._shared_random_state(strategy)
        fit_model = partial(
            self._fit_model, init, rng=rng, strategy=strategy, device=resolve_device(self.device)
        )
        candidates = candidate_epochs(self.max_epochs if trains else 0)
        selection, n_splits = self._selection(y_index, warm, trains)
        folds = self._folds(y_index, n_splits, rng) if selection == "cross_fit" else None
        features = self._features(fit_model, source, y_index, init, folds, rng, warm)
        series = source if features.scale is None else DerivativeSource(source, features.scale)
        saved = {"checkpoint": checkpoint, "resumed": resumed}
        if selection == "cross_fit":
            model, choice = self._fit_cross_fitted(
                fit_model, series, y_index, init, candidates, folds, saved
            )
        elif selection == "validation":
            model, choice = self._fit_validated(
                fit_model, series, y_index, init, candidates, trains, rng, saved
            )
        else:
            model = fit_model(
                series, y_index, n_prototypes=prototypes_per_class(init, y_index),
                stop_epoch=candidates[-1], **saved,
            )
            choice = _Choice(self._training_calibration(model, series, y_index, trains, warm),
                             len(model.history["loss"]))
        # Only now, when nothing can fail any more, is the fitted state replaced: a fit
        # that fails leaves the estimator as it was (fitted or not).
        self._set_fitted_state(classes, source.n_features, features, model, choice)
        return self

    def _features(self, fit_model, source, y_index, init, folds, rng, warm):
        """The :class:`_Features` the model learns from (see ``derivatives``): with
        ``"auto"``, chosen by untrained cross-fits on ``folds`` (None: no cross-fits) with
        and without the derivatives."""
        if warm:  # the fitted model's features
            appended = self.derivative_scale_ is not None
            if self.derivatives != "auto" and bool(self.derivatives) != appended:
                raise InputError(
                    f"warm_start=True but derivatives={self.derivatives} differs from the "
                    f"fitted model, which was fitted {'with' if appended else 'without'} them"
                )
            return _Features(self.derivative_scale_)
        automatic = self.derivatives == "auto"
        chooses = folds is not None and isinstance(self.init, str | DBAInitializer)
        if not (chooses if automatic else self.derivatives):
            return _Features(None)
        scale = derivative_scale(source, self.batch_size)
        if not automatic:
            return _Features(scale)
        accuracy = []
        for series in (source, DerivativeSource(source, scale)):
            # Each from a copy of the fit's random state: both are drawn alike, and the fit
            # goes on as a fit given the chosen features would.
            untrained = partial(fit_model, n_prototypes=prototypes_per_class(init, y_index),
                                rng=copy.deepcopy(rng))
            _, _, results, best = self._cross_fit(
                untrained, series, y_index, [0], folds, self._series_candidate(False)
            )
            accuracy.append(float(results["accuracy"][best]))
        appended = clearly_better(accuracy[1], accuracy[0], len(y_index))
        return _Features(scale if appended else None,
                         {"derivatives": np.array([False, True]), "accuracy": np.array(accuracy)})

    def _set_fitted_state(self, classes, n_features, features, model, choice):
        """The fitted attributes of ``n_features`` series features, the model's
        ``features`` (a :class:`_Features`), the kept ``model`` (a :class:`_Model`) and
        ``choice`` (a :class:`_Choice`)."""
        centroids, weights = (a.cpu().numpy() for a in model.prototypes.frozen())
        self.classes_, self.n_features_in_ = classes, n_features
        self.derivative_scale_, self.derivative_results_ = features.scale, features.results
        self.centroids_, self.weights_ = centroids, weights
        self.centroid_class_ = model.prototypes.centroid_class
        self.logit_scale_ = model.initial.logit_scale
        calibration = None if self.calibration is None else choice.calibration
        self.temperature_, self.intercept_, self.distance_power_ = (
            (None, None, None) if calibration is None else
            (float(calibration.temperature), calibration.intercept, float(calibration.power))
        )
        self.history_, self.n_epochs_ = model.history, int(choice.n_epochs)
        self.cv_results_, self.best_index_ = choice.cv_results, choice.best_index

    def _init_settings(self, n_classes, length, warm):
        """The :class:`InitSettings` of ``init`` and the other parameters that shape where
        training starts; ``warm``: from the fitted prototypes."""
        init, barycenters = self.init, None
        if warm:  # the fitted prototypes are the start: init is not used
            init = "warm start"
        elif isinstance(init, DBAInitializer):
            # Its parameters (but random_state: the classifier's seeds it) are checked as
            # its own fit checks them; its centroid_length and n_prototypes must be the
            # classifier's.
            initializer = clone(init).set_params(random_state=None)
            if not get_config()["skip_parameter_validation"]:
                initializer._validate_params()
            barycenters = BarycenterSettings.of_params(initializer.get_params())
            if barycenters.centroid_length != length:
                raise InputError(
                    f"init has centroid_length={barycenters.centroid_length} but the "
                    f"classifier has centroid_length={length}"
                )
            init = "initializer"
        elif isinstance(init, str) and init in ("dba", "medoid"):
            barycenters = BarycenterSettings(
                centroid_length=length, n_samples=self.dba_samples,
                max_iter=self.dba_max_iter if init == "dba" else 0, diagonal=self.diagonal,
                backend=self.backend, n_jobs=self.n_jobs,
            )
        return InitSettings(
            init=init, n_classes=n_classes, centroid_length=length,
            n_prototypes=self.n_prototypes, barycenters=barycenters,
            weight_init=self.weight_init, feature_scaling=self.feature_scaling,
            n_series=self.dba_samples, chunk=self.batch_size,
            warm_start=WarmStart(self.centroids_, self.centroid_class_, self.weights_)
            if warm else None,
        )

    def _fingerprinted_params(self):
        """The parameters, with a DBAInitializer ``init`` by its class and parameters."""
        params = self.get_params(deep=False)
        if isinstance(self.init, DBAInitializer):
            params["init"] = {"class": type(self.init).__name__,
                              **self.init.get_params(deep=False)}
        return params

    @staticmethod
    def _warm_arrays(init):
        warm = init.warm_start
        return None if warm is None else (warm.centroids, warm.weights)

    def _training_settings(self, logit_scale, progress):
        """The :class:`TrainingSettings` of the loop, whose ``"scaled"`` logits divide by
        ``logit_scale``; ``progress``: the progress bar's label (None: the estimator's
        name)."""
        lr = self.learning_rate
        return TrainingSettings(
            learning_rate=lr,
            centroid_learning_rate=(
                lr / 3 if self.centroid_learning_rate is None else self.centroid_learning_rate
            ),
            weight_decay=self.weight_decay, max_epochs=self.max_epochs,
            batch_size=self.batch_size, path_update=self.path_update,
            logit_norm=self.logit_norm, logit_scale=logit_scale, verbose=self.verbose,
            name=type(self).__name__ if progress is None else progress,
        )

    def _selection(self, y_index, warm, trains):
        """Where the kept epoch count and the temperature are chosen, and the number of
        folds: ``"validation"`` (a held-out split), ``"cross_fit"`` (``cv`` stratified
        folds, as many as the smallest class allows) or None (nothing to choose, a warm
        start, ``cv=None``, or a class of one sample)."""
        if self.validation_fraction is not None:
            return "validation", 0
        if warm or self.cv is None or not (
            trains or self.calibration is not None or self._series_candidate(warm)
        ):
            return None, 0
        n_splits = min(self.cv, int(np.bincount(y_index).min()))
        return ("cross_fit", n_splits) if n_splits >= 2 else (None, 0)

    def _fit_model(self, init, source, y_index, *, n_prototypes, rng, strategy, device,
                   stop_epoch, held_out=None, checkpoint=None, resumed=None, progress=None):
        """The :class:`_Model` learned on the SeriesSource ``source`` (class indices
        ``y_index``), starting as ``init`` (:class:`InitSettings`) says from
        ``n_prototypes`` per class, for ``stop_epoch`` epochs of the ``max_epochs``
        schedule, recording ``held_out`` along the way. ``resumed``: the state
        ``checkpoint`` held when ``fit`` began (None: start afresh). ``progress``: the
        label of the progress bar (``verbose``), by default the estimator's name."""
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        if resumed is not None:  # as trained; the optimiser state follows below
            prototypes = LearnedPrototypes.from_state_dict(resumed["prototypes"], device)
            initial = InitialDistances.from_state_dict(resumed["scores"])
        else:
            prototypes = initial_prototypes(
                init, source, y_index, n_prototypes, rng, generator, strategy, device
            )
        scorer = ClassScorer(prototypes.centroid_class, self.diagonal, self.backend)
        if resumed is None:
            index = _evenly_spaced(len(source), _SCORING_SAMPLES)
            initial = InitialDistances.of(scorer.source_distances(
                source, index, *prototypes.frozen(), self.batch_size
            ))
            if held_out is not None:
                held_out.record(0, scorer, prototypes, strategy)
        history = empty_history()
        if stop_epoch > 0:
            prototypes.centroid_offsets.requires_grad_(self.learn_centroids)
            prototypes.log_weight_offsets.requires_grad_(self.learn_weights)
            trainer = Trainer(
                self._training_settings(initial.logit_scale, progress), scorer, strategy,
                held_out, checkpoint,
            )
            state = trainer.initial_state(prototypes, generator)
            if resumed is not None:
                state.load_state_dict(resumed)
            trainer.fit(
                state, source.to(device), y_index, {"scores": initial.state_dict()}, stop_epoch
            )
            history = state.history
        return _Model(prototypes, initial, history)

    def _series_candidate(self, warm):
        """Whether the untrained training series are a candidate: with
        ``n_prototypes="auto"`` and an ``init`` by name, when not warm-starting."""
        return self.n_prototypes == "auto" and isinstance(self.init, str) and not warm

    def _fit_cross_fitted(self, fit_model, source, y_index, init, candidates, folds, saved):
        """The model kept after the cross-fits on ``folds`` chose among the ``candidates``
        (``saved``: its checkpoint), and the choice."""
        n_prototypes = prototypes_per_class(init, y_index)
        held_dist, held_scale, cv_results, best = self._cross_fit(
            partial(fit_model, n_prototypes=n_prototypes), source, y_index, candidates,
            folds, self._series_candidate(False),
        )
        kind, n_epochs = str(cv_results["prototypes"][best]), int(cv_results["n_epochs"][best])
        if kind == TRAINING_SERIES:
            model = fit_model(source, y_index, n_prototypes=TRAINING_SERIES, stop_epoch=0)
        else:
            model = fit_model(
                source, y_index, n_prototypes=n_prototypes, stop_epoch=n_epochs, **saved
            )
        # The calibration of the chosen candidate, on its out-of-fold logits (in units of
        # each fold model's logit scale), turned into the final model's distance units.
        scaled = held_dist[kind, n_epochs] / held_scale[kind][:, None]
        calibration = fit_calibration(scaled, y_index, _class_prior(y_index))
        warn_if_not_learned(
            held_dist[INIT, 0], self._predicted(scaled, calibration), y_index,
            "out-of-fold", stacklevel=5,
        )
        return model, _Choice(calibration.in_units(model.initial.logit_scale), n_epochs,
                              cv_results, best)

    def _fit_validated(self, fit_model, source, y_index, init, candidates, trains, rng,
                       saved):
        """The model trained on all but a ``validation_fraction`` split, at the candidate
        the split chose, and the choice (``saved``: the model's checkpoint)."""
        train_index, held_index = self._validation_split(y_index, rng)
        fit_train = partial(fit_model, source.subset(train_index), y_index[train_index])
        held_out = HeldOutDistances(
            source, held_index, candidates, INFERENCE_CHUNK, keep_parameters=True
        )
        model = fit_train(
            n_prototypes=prototypes_per_class(init, y_index[train_index]),
            stop_epoch=candidates[-1], held_out=held_out, **saved,
        )
        rows = [(INIT, e, d, model.initial.logit_scale) for e, d in held_out.dist.items()]
        if self._series_candidate(init.warm_start is not None):
            series_held_out = HeldOutDistances(source, held_index, [0], INFERENCE_CHUNK)
            series_model = fit_train(
                n_prototypes=TRAINING_SERIES, stop_epoch=0, held_out=series_held_out
            )
            rows.append(
                (TRAINING_SERIES, 0, series_held_out.dist[0], series_model.initial.logit_scale)
            )
        cv_results, best, calibration = self._select_on_validation(
            rows, y_index[held_index], _class_prior(y_index)
        )
        n_epochs = int(cv_results["n_epochs"][best])
        if cv_results["prototypes"][best] == TRAINING_SERIES:
            # history_ stays the trained model's: the epochs the choice was made along.
            model = _Model(series_model.prototypes, series_model.initial, model.history)
        elif trains:
            model.prototypes.set_offsets(held_out.parameters[n_epochs])
        return model, _Choice(calibration, n_epochs, cv_results, best)

    def _cross_fit(self, fit_model, source, y_index, candidates, folds, series_candidate):
        """The out-of-fold class distances of every candidate, keyed by ``(prototypes,
        n_epochs)``, of the cross-fits on ``folds`` (``(fit_index, held_index)`` pairs),
        the logit scale of the fold model behind each sample's distances, keyed by
        prototypes, and :func:`select`'s scores of them: ``init``'s prototypes at every
        candidate epoch count and, with ``series_candidate``, the untrained training series
        of the fold."""
        kinds = {INIT: candidates, **({TRAINING_SERIES: [0]} if series_candidate else {})}
        shape = (len(source), int(y_index.max()) + 1)
        dist = {(kind, int(e)): np.empty(shape) for kind, epochs in kinds.items()
                for e in epochs}
        scale = {kind: np.empty(len(source)) for kind in kinds}
        for fold, (fit_index, held_index) in enumerate(folds, 1):
            for kind, epochs in kinds.items():
                held_out = HeldOutDistances(source, held_index, epochs, INFERENCE_CHUNK)
                with warnings.catch_warnings():
                    # Warnings of the cross-fits would repeat those of the fit itself.
                    warnings.simplefilter("ignore", InputWarning)
                    model = fit_model(
                        source.subset(fit_index), y_index[fit_index], stop_epoch=epochs[-1],
                        held_out=held_out,
                        progress=f"{type(self).__name__} cross-fit {fold}/{len(folds)}",
                        **({"n_prototypes": TRAINING_SERIES} if kind == TRAINING_SERIES
                           else {}),
                    )
                for n_epochs, held_dist in held_out.dist.items():
                    dist[kind, n_epochs][held_index] = held_dist
                scale[kind][held_index] = model.initial.logit_scale
        rows = [(kind, n_epochs, d, scale[kind]) for (kind, n_epochs), d in dist.items()]
        return (dist, scale, *select(rows, y_index))

    def _predicted(self, dist, calibration):
        """Class scores of ``dist`` whose argmin is what ``predict`` would say: the
        logits of the :class:`Calibration` ``calibration``, negated, where there is one."""
        if self.calibration is None:
            return dist
        return -calibration.logits(dist)

    def _select_on_validation(self, candidates, targets, class_prior):
        """Scores of the ``candidates`` (as :func:`select` takes them, with one logit scale
        each) on one half of the validation samples, the chosen one, and the calibration
        (a :class:`Calibration`, :func:`fit_calibration` with the training
        ``class_prior``) fitted on the other half's distances under it (a calibration fitted
        on the samples that chose would be over-confident)."""
        choosing, calibrating = _halves(targets)
        results, best = select(
            [(kind, e, d[choosing], np.full(choosing.size, scale))
             for kind, e, d, scale in candidates],
            targets[choosing],
        )
        chosen = candidates[best][2]
        calibration = fit_calibration(chosen[calibrating], targets[calibrating], class_prior)
        warn_if_not_learned(
            candidates[0][2][choosing], self._predicted(chosen[choosing], calibration),
            targets[choosing], "validation",
            stacklevel=6,  # the user's call: here <- _fit_validated <- fit <- _fit_context
        )
        return results, best, calibration

    def _training_calibration(self, model, source, y_index, trains, warm):
        """The :class:`Calibration` fitted on the training distances of ``model`` (None
        without calibration), with the InputWarning that says so, after the check that
        training helped."""
        index = _evenly_spaced(len(source), _SCORING_SAMPLES)
        prototypes = model.prototypes
        final_dist = ClassScorer(
            prototypes.centroid_class, self.diagonal, self.backend
        ).source_distances(source, index, *prototypes.frozen(), self.batch_size)
        if trains:
            warn_if_not_learned(model.initial.dist, final_dist, y_index[index], "training")
        if self.calibration is None:
            return None
        why = ("warm_start=True (no cross-fit repeats the earlier training)" if warm
               else "cv=None" if self.cv is None else "a class has a single sample")
        warnings.warn(
            f"the temperature of predict_proba is fitted on training distances ({why}): "
            "the probabilities are over-confident on new data; give cv folds or a "
            "validation_fraction for calibrated ones",
            InputWarning,
            stacklevel=4,  # the user's call: here <- fit <- sklearn's _fit_context
        )
        return fit_calibration(final_dist, y_index[index], _class_prior(y_index))

    def _shared_random_state(self, strategy):
        """``random_state`` as a RandomState; every rank draws the same split, seeds and
        permutations: rank 0's (copied, so no rank's global NumPy state is touched)."""
        rng = check_random_state(self.random_state)
        state = strategy.broadcast(rng.get_state())
        if strategy.rank != 0:
            rng = np.random.RandomState()
            rng.set_state(state)
        return rng

    def _centroid_length(self, source, warm):
        """``centroid_length``, with ``"auto"`` resolved from the training lengths."""
        length = self.centroid_length
        if length == "auto":
            length = auto_centroid_length(source.lengths)
        elif source.lengths_known:  # not worth a pass over a lazy sequence's series
            check_centroid_length(length, source.lengths)
        if warm and self.centroids_.shape[1] != length:
            raise InputError(
                f"warm_start=True but centroid_length={length} differs from the "
                f"fitted centroids' length {self.centroids_.shape[1]}"
            )
        return length

    @staticmethod
    def _folds(y_index, n_splits, rng):
        """The ``(fit_index, held_index)`` pairs of ``n_splits`` stratified folds, one
        split for every cross-fit of a fit, so that candidates are compared on the same
        samples."""
        folds = StratifiedKFold(
            n_splits, shuffle=True, random_state=rng.randint(np.iinfo(np.int32).max)
        )
        return list(folds.split(np.zeros(len(y_index)), y_index))

    def _validation_split(self, y_index, rng):
        """Sorted training and validation indices, stratified."""
        train_index, validation_index = train_test_split(
            np.arange(len(y_index)), test_size=self.validation_fraction, stratify=y_index,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        return np.sort(train_index), np.sort(validation_index)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


def _evenly_spaced(n, most):
    """Up to ``most`` of ``range(n)``, evenly spaced (all of them if fewer)."""
    return np.unique(np.linspace(0, n - 1, most).astype(int))


def _class_prior(y_index):
    """The training frequency of each class (every class has a sample)."""
    return np.bincount(y_index) / len(y_index)


def _halves(targets):
    """Two interleaved halves of the positions of ``targets``, each with about half of
    every class's samples (the second is the first when it would be empty)."""
    rank = np.empty(len(targets), dtype=int)
    for c in np.unique(targets):
        where = np.flatnonzero(targets == c)
        rank[where] = np.arange(where.size)
    first, second = np.flatnonzero(rank % 2 == 0), np.flatnonzero(rank % 2 == 1)
    return first, second if second.size else first


@dataclass
class _Model:
    """A model a fit trained: its prototypes, the class distances of its training samples
    under their initial values (and the logit scale they give) and its history."""

    prototypes: LearnedPrototypes
    initial: InitialDistances
    history: dict


@dataclass(frozen=True)
class _Features:
    """The features a model learns from: the series', with their derivatives times
    ``scale`` appended unless it is None; ``results``: the scores that chose them (None
    where nothing was chosen)."""

    scale: np.ndarray | None
    results: dict | None = None


@dataclass(frozen=True)
class _Choice:
    """What a fit chose for the model it keeps: the :class:`Calibration` of its
    distances (None without calibration), the epochs kept, and the scores behind the
    choice (None where nothing was chosen)."""

    calibration: Calibration | None
    n_epochs: int
    cv_results: dict | None = None
    best_index: int | None = None
