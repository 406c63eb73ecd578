"""DejaVidClassifier: learned weighted-DTW distances to learned class centroids."""

import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.special import log_softmax, softmax
import torch.nn.functional as F
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._checkpoint import canonical, digest, load_checkpoint, save_checkpoint
from ._dba import DBAInitializer, _resample
from ._device import resolve_device
from ._distributed import current_group
from ._scaling import Parametrization, feature_std
from ._scoring import class_distances, distance_spread, fit_temperature, training_logits
from ._series import (
    SeriesSubset, check_label_types, check_lazy_series, check_series_list, is_lazy,
    packed_chunks, read_series_batch, series_lengths,
)
from .dtw import DistanceOverflowError, PackedBatch, weighted_dtw

__all__ = ["DejaVidClassifier"]


# Samples whose distances before and after training fit the logits' scale and the
# temperature and decide the ConvergenceWarning (all held-out or training ones, if fewer).
_SCORING_SAMPLES = 2048
# Bounds of centroid_length="auto".
_MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH = 8, 64
# Samples per op call at inference: bounds the memory of the packed batch and the paths.
_INFERENCE_CHUNK = 1024
# Parameters that change how a fit runs, not what it computes: left out of a checkpoint's
# fingerprint, so a run can be resumed with another device or verbosity.
_NOT_FINGERPRINTED = frozenset({"verbose", "checkpoint", "n_jobs", "device"})


def _pad_features(a, width, value=0.0):
    """Pad the last axis of a NumPy array or tensor to ``width`` with ``value``."""
    pad = width - a.shape[-1]
    if isinstance(a, torch.Tensor):
        return F.pad(a, (0, pad), value=value)
    return np.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, pad)], constant_values=value)


def _pack_values(values, lengths, device, width):
    """A PackedBatch on ``device`` of validated float32 ``values`` (rows of all samples) and
    their ``lengths`` (no re-validation), features zero-padded to ``width``."""
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    offsets = torch.zeros(len(lengths) + 1, dtype=torch.int64)
    torch.cumsum(lengths, 0, out=offsets[1:])
    values = torch.from_numpy(_pad_features(values, width))
    return PackedBatch(values.to(device), offsets.to(device))


def _pack(series, device, width):
    """Pack a list of validated float32 series (see ``_pack_values``)."""
    return _pack_values(np.concatenate(series), [len(x) for x in series], device, width)


def _reader(X, n_features, width, device, from_estimator):
    """A function ``index -> PackedBatch`` of the samples ``X[index]`` (ndarray of indices):
    gathered from a validated list, or read from a lazy sequence and validated as read."""
    if not is_lazy(X):
        return lambda index: _pack([X[i] for i in index], device, width)

    def read(index):
        values, lengths = read_series_batch(
            X, index, n_features=n_features, from_estimator=from_estimator
        )
        return _pack_values(values, lengths, device, width)

    return read


def auto_centroid_length(lengths):
    """``centroid_length="auto"``: half the median training length, within
    [_MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH] (16 for the paper's 33-window videos)."""
    half = int(round(float(np.median(lengths)) / 2))
    return int(np.clip(half, _MIN_AUTO_LENGTH, _MAX_AUTO_LENGTH))


def _subset(series, index):
    """The samples ``index`` of a validated list (a list) or of a lazy sequence (lazy)."""
    return SeriesSubset(series, index) if is_lazy(series) else [series[i] for i in index]


def _split_packed(values, lengths):
    """The series of a packed ``(values, lengths)`` pair, as a list of views."""
    return np.split(values, np.cumsum(lengths)[:-1])


def _select(packed, index):
    """The sub-batch ``index`` of a PackedBatch, built by one gather of its rows."""
    starts = packed.offsets[:-1][index]
    lengths = packed.lengths[index]
    offsets = torch.zeros(len(index) + 1, dtype=torch.int64, device=index.device)
    torch.cumsum(lengths, 0, out=offsets[1:])
    total = int(offsets[-1])
    rows = torch.repeat_interleave(starts - offsets[:-1], lengths, output_size=total)
    rows += torch.arange(total, device=index.device)
    return PackedBatch(packed.values[rows], offsets)




class DejaVidClassifier(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClassifierMixin, BaseEstimator
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
    use the exact DTW under the final parameters.

    Parameters
    ----------
    centroid_length : int or "auto", default="auto"
        Number of steps ``L`` of each centroid. ``"auto"``: half the median training
        length, clipped to [8, 64] (16 for the paper's 33-window videos, 64 for series of
        128 steps or more). Short centroids average away detail of long raw series; the
        paper used 8 on video TSEs.
    n_prototypes : int, default=3
        Number of centroid-and-weight pairs (prototypes) per class, initialised by
        k-means under the same DTW with DBA centers; a class's distance is the least
        distance to its prototypes. Several prototypes let a class hold several shapes
        (several ways to do a gesture); a class gets at most one prototype per 5 of its
        training series (at least one). ``1`` is DejaVid exactly. Prediction
        costs grow with the total number of prototypes, not with the training set.
    learning_rate : float, default=1e-2
        Learning rate of the log-weights (see ``feature_scaling``).
    centroid_learning_rate : float, default=None
        Learning rate of the centroids; ``None`` means ``learning_rate / 3``.
    max_epochs : int, default=72
        Number of training epochs (passes over the training set); the learning rates
        anneal to 0 along a cosine over them. ``0`` keeps the initial parameters. The
        paper trains 36 epochs of batches of 48; small data sets need more steps.
    batch_size : int, default=16
        Number of series per optimisation step (the paper: 48). Small data sets need
        the extra steps of small batches.
    weight_decay : float, default=0.01
        AdamW weight decay of both the centroids and the log-weights.
    weight_init : {"ones", "random"}, default="ones"
        Initial learned log-weights: zeros (all weights 1, or ``1 / std`` with feature
        scaling), or standard normal draws (the authors' choice).
        With few features and few optimiser steps the random draws give each class a
        different overall scale that training does not undo, and accuracy can drop to
        chance (see ``benchmarks/results/bench_accuracy.json``).
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
        Learn the centroids and weights as changes, in units of the training standard
        deviation ``std``, from their initial values (``C = C0 + std * C'`` and
        ``W = W0 * exp(V')``, starting at ``C' = V' = 0``; the data are never copied),
        so that learning rates and weight decay (towards the initial values) act alike
        whatever the data's units; initial unit weights are ``1 / std``. ``"pooled"``:
        one ``std`` for all features (the root of their mean variance), which keeps the
        relative scales of the features, as an embedding's geometry wants;
        ``"standard"``: one per feature, which also evens out features measured in
        different units (the DBA alignments are then weighted by ``1 / std`` too).
        The fitted ``centroids_`` and ``weights_`` are in the data's units either way.
        ``None``: learn in the data's units (the paper's).
    logit_norm : {"scaled", "zscore", "none"}, default="scaled"
        Class scores of the training loss: ``"scaled"``, the negated distances divided
        by a constant fitted before training (``logit_scale_``, the typical spread of a
        sample's class distances under the initial parameters); ``"zscore"``, the
        z-score of the negated distances over the classes of each sample (the paper's;
        with two classes it is always +-1/sqrt(2), so its loss has no gradient); or
        ``"none"``, the negated distances themselves.
    calibration : {"temperature"} or None, default="temperature"
        ``"temperature"``: ``predict_proba`` is the softmax of the negated class
        distances over a temperature (``temperature_``) fitted after training by
        minimising the log-loss on samples the model did not learn from (see
        ``calibration_cv``). Probabilities then rank samples as the distances do and
        express how confident a prediction is. ``None``: the softmax of the training
        logits (the paper's; with ``logit_norm="zscore"`` they cannot express confidence).
    calibration_cv : int or None, default=3
        With ``calibration="temperature"`` and no ``validation_fraction``: the number of
        stratified folds of the cross-fits whose out-of-fold distances fit the
        temperature (each fold refits a copy with ``calibration=None``, so ``fit`` costs
        ``1 + calibration_cv`` fits). With a ``validation_fraction`` the validation
        samples are used instead. ``None`` fits it on the training samples: cheap, but
        over-confident.
    init : {"dba", "medoid", "mean"}, DBAInitializer or array-like, default="dba"
        Initial centroids. ``"dba"``: per-class DTW barycenters of up to ``dba_samples``
        training series with ``dba_max_iter`` updates; ``"medoid"``: their starting
        medoids; ``"mean"``: the per-class mean of all training series resampled to
        ``centroid_length``; a :class:`DBAInitializer` (cloned and fitted on the training
        series; its ``centroid_length`` and ``n_prototypes`` must match); or an array of
        shape
        ``(n_classes * n_prototypes, centroid_length, n_features)``, grouped by class in
        the order of ``classes_``.
    dba_samples : int, default=50
        Maximum number of series per class for ``init="dba"`` and ``"medoid"``.
    dba_max_iter : int, default=100
        Maximum number of DBA updates per class for ``init="dba"``.
    validation_fraction : float, default=None
        Fraction of the training set held out (stratified) to pick the epoch whose
        parameters are kept; ``None`` trains on everything and keeps the last epoch.
    warm_start : bool, default=False
        If True and the estimator is fitted, a new ``fit`` starts from the current
        centroids and weights (``init`` and ``weight_init`` are ignored) and trains for
        ``max_epochs`` more epochs with a fresh optimiser and schedule.
    device : str, default="auto"
        Torch device used for training and inference; ``"auto"`` is ``"cuda"`` when
        available, else ``"cpu"``. The fitted state is stored as NumPy arrays either way,
        so a model fitted on a GPU predicts on a machine without one (with ``"auto"``, or
        after ``set_params(device="cpu")``).
    backend : {"auto", "torch", "cpu", "cuda"}, default="auto"
        Backend of the weighted-DTW op (see :func:`sktdtw.dtw.weighted_dtw`).
    n_jobs : int, default=None
        Number of classes whose initial centroids are computed in parallel. ``None``
        means 1 unless in a :obj:`joblib.parallel_backend` context.
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, the choice of DBA series, the initial log-weights and
        the shuffling. With an int, fits on the same data and machine (CPU) give the
        same arrays bit for bit.
    verbose : int, default=0
        ``>= 1`` shows a progress bar over the epochs with the loss and accuracies.
    checkpoint : str or os.PathLike, default=None
        File to save the training state to after every epoch (written atomically: a
        temporary file, then renamed). If it exists when ``fit`` starts and was written
        by a fit with the same parameters (all but ``verbose``, ``checkpoint``,
        ``n_jobs`` and ``device``), the same number of samples and the same classes,
        training resumes after its last epoch, with the result of an uninterrupted run
        (bit for bit on the CPU); a checkpoint of a finished fit skips training (the
        ``calibration_cv`` cross-fits are not checkpointed: they run again). A
        checkpoint of a different fit raises a ValueError rather than being overwritten.
        In data-parallel training only rank 0 writes it.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Number of features per time step seen in ``fit``.
    centroids_ : ndarray of shape (n_centroids, centroid_length, n_features_in_)
        The learned centroids, float32, grouped by class (``n_centroids`` is
        ``n_classes * n_prototypes`` unless a class had fewer than 5 series per
        prototype among its ``dba_samples``).
    weights_ : ndarray of shape (n_centroids, centroid_length, n_features_in_)
        The learned (positive) weights, float32.
    centroid_class_ : ndarray of shape (n_centroids,)
        Index in ``classes_`` of the class of each centroid.
    logit_scale_ : float
        The divisor of the ``"scaled"`` training logits.
    temperature_ : float or None
        The temperature of ``predict_proba`` (None without calibration).
    history_ : dict of lists
        One entry per epoch of the last call to ``fit``: ``"loss"`` (mean training loss),
        ``"train_accuracy"`` (accuracy of the training-batch predictions made during the
        epoch), ``"learning_rate"`` and ``"centroid_learning_rate"`` (those used in the
        epoch), ``"seconds"``, and with a validation fraction ``"validation_loss"`` and
        ``"validation_accuracy"`` (after the epoch, exact DTW).
    n_epochs_ : int
        Number of epochs run by the last call to ``fit`` (0 when nothing is learned).
    best_epoch_ : int or None
        Index in ``history_`` of the epoch whose parameters were kept: the best
        validation accuracy (ties: lowest validation loss), else the last epoch; ``None``
        when no epoch ran.

    See Also
    --------
    DBAInitializer : The initial centroids.
    sktdtw.dtw.weighted_dtw : The distance, as a differentiable op.

    Notes
    -----
    This implements DejaVid (Ho et al., CVPR 2025). Where the paper selected the best
    epoch on its test split, this estimator only selects on the held-out
    ``validation_fraction`` of the training data.

    **Defaults and the paper's configuration.** The defaults were chosen from test
    accuracy and log-loss on the classification data sets that ship inside aeon
    (``benchmarks/bench_accuracy.py``: raw series of 15-1460 steps, 1-12 features,
    20-270 training series), where the paper's settings often learn nothing. The
    paper's configuration, for video TSEs, is ``DejaVidClassifier(centroid_length=8,
    n_prototypes=1, learning_rate=1e-3, max_epochs=36, batch_size=48,
    weight_init="random", feature_scaling=None, logit_norm="zscore", calibration=None)``
    (its HMDB51 runs use ``learning_rate=8e-3``); FECW (``path_update="epoch"``) is the
    default in both. When a fit ends with an accuracy below that of its initial centroids, or no
    better than predicting the commonest class, a
    :class:`~sklearn.exceptions.ConvergenceWarning` says what to try.

    **Data that do not fit in memory.** ``X`` may be any :class:`collections.abc.Sequence`
    other than a list or tuple (e.g. :class:`sktdtw.io.TSEStore`) whose items are
    ``(T_i, n_features)`` arrays read on demand. It is never loaded whole: training
    reads each mini-batch when it is used (every training series once per epoch),
    ``init="dba"`` reads only the ``dba_samples`` series per class it averages, and
    inference reads 1024 series at a time. Each batch is validated as it is read, and
    errors name the sample by its index in ``X``. A ``read_batch(indices)`` method and a
    ``lengths`` attribute are used when the sequence has them.

    **Several processes.** If a :mod:`torch.distributed` process group is initialised
    when ``fit`` runs, training is data-parallel over it: ``batch_size`` is the global
    batch, each rank computes the gradient of its share of every batch, gradients are
    summed over the ranks, and every rank takes the same optimiser step, so the number of
    processes changes the speed, not the result (up to floating-point rounding). The
    initial centroids are computed on rank 0 from the whole training set and broadcast.

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
        "n_prototypes": [Interval(Integral, 1, None, closed="left")],
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
        "calibration_cv": [Interval(Integral, 2, None, closed="left"), None],
        "init": [StrOptions({"dba", "medoid", "mean"}), DBAInitializer, "array-like"],
        "dba_samples": [Interval(Integral, 1, None, closed="left")],
        "dba_max_iter": [Interval(Integral, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "backend": [StrOptions({"auto", "torch", "cpu", "cuda"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint": [str, os.PathLike, None],
    }

    def __init__(
        self,
        centroid_length="auto",
        n_prototypes=3,
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
        calibration_cv=3,
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
        self.calibration_cv = calibration_cv
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

    @property
    def _n_features_out(self):
        """One output of ``transform`` per class (for ``get_feature_names_out``)."""
        return self.classes_.size

    def _torch_device(self):
        return resolve_device(self.device)

    def _initial_centroids(
        self, series, y_index, n_classes, n_features, length, rng, feature_weights
    ):
        """Initial centroids ``(n_centroids, L, F)`` float32 from ``init`` and the class
        index of each (grouped by class).

        ``series``: the validated training list, or a lazy sequence of the training series;
        ``feature_weights``: None or the per-feature weights of the DBA alignments.
        """
        if isinstance(self.init, str) and self.init == "mean":
            if self.n_prototypes > 1:
                raise ValueError(
                    "init='mean' gives one centroid per class; use init='dba' or 'medoid' "
                    f"with n_prototypes={self.n_prototypes}"
                )
            resampled_sum = np.zeros((n_classes, length, n_features))
            # In chunks: the resampled series of a whole lazy set may not fit.
            for index, values, lengths in packed_chunks(
                series, n_features=n_features, chunk=_INFERENCE_CHUNK
            ):
                resampled = _resample(_split_packed(values, lengths), length)
                np.add.at(resampled_sum, y_index[index], resampled)
            counts = np.bincount(y_index, minlength=n_classes)
            return (resampled_sum / counts[:, None, None]).astype(np.float32), np.arange(
                n_classes
            )
        if isinstance(self.init, str) or isinstance(self.init, DBAInitializer):
            if isinstance(self.init, DBAInitializer):
                initializer = clone(self.init)
                for name, ours in (("centroid_length", length),
                                   ("n_prototypes", self.n_prototypes)):
                    theirs = getattr(initializer, name)
                    if theirs != ours:
                        raise ValueError(
                            f"init has {name}={theirs} but the classifier has {name}={ours}"
                        )
            else:
                initializer = DBAInitializer(
                    centroid_length=length,
                    n_samples=self.dba_samples,
                    max_iter=self.dba_max_iter if self.init == "dba" else 0,
                    n_prototypes=self.n_prototypes,
                    diagonal=self.diagonal,
                    backend=self.backend,
                    n_jobs=self.n_jobs,
                )
                initializer.set_params(feature_weights=feature_weights)
            initializer.set_params(random_state=rng.randint(np.iinfo(np.int32).max))
            initializer.fit(series, y_index)
            return initializer.centroids_.astype(np.float32), initializer.centroid_class_
        centroids = np.asarray(self.init, dtype=np.float64)
        shape = (n_classes * self.n_prototypes, length, n_features)
        if centroids.shape != shape:
            raise ValueError(
                f"init has shape {centroids.shape}; expected (n_classes * n_prototypes, "
                f"centroid_length, n_features) = {shape}"
            )
        if not np.isfinite(centroids).all():
            raise ValueError("init contains non-finite values")
        return centroids.astype(np.float32), np.repeat(np.arange(n_classes), self.n_prototypes)

    def _centroid_length(self, series, n_features):
        """``centroid_length``, with ``"auto"`` resolved from the training lengths."""
        if self.centroid_length != "auto":
            return self.centroid_length
        lengths = series_lengths(series, n_features=n_features)
        return auto_centroid_length(lengths)

    def _fingerprint(self, n_samples, n_features, classes, warm):
        """What identifies a fit for its checkpoint: the parameters that change the result,
        the data's size and classes, and the starting state of a warm start."""
        params = self.get_params(deep=False)
        fingerprint = {
            k: canonical(v) for k, v in params.items() if k not in _NOT_FINGERPRINTED
        }
        fingerprint.update(
            n_samples=n_samples, n_features=n_features, classes=repr(classes.tolist()),
            warm_start_state=digest(self.centroids_, self.weights_) if warm else None,
        )
        return fingerprint

    def _resume_state(self, fingerprint, group):
        """The checkpoint to resume from (None to start afresh), on every rank."""
        if group is None:
            return load_checkpoint(self.checkpoint, fingerprint)
        # Rank 0 reads the file (it need not be on a shared file system) and tells the
        # others: the state, or the error every rank raises.
        loaded = None
        if group.rank == 0:
            try:
                loaded = ("state", load_checkpoint(self.checkpoint, fingerprint))
            except ValueError as exc:
                loaded = ("error", str(exc))
        kind, value = group.broadcast(loaded)
        if kind == "error":
            raise ValueError(value)
        return value

    @_fit_context(
        # init may be a DBAInitializer, whose parameters are validated by its own fit.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y):
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
        series, n_features, classes, y_index = self._check_training_data(X, y, warm)
        length = self._centroid_length(series, n_features)
        if warm and self.centroids_.shape[1] != length:
            raise ValueError(
                f"warm_start=True but centroid_length={length} differs from the "
                f"fitted centroids' length {self.centroids_.shape[1]}"
            )
        trains = self.max_epochs > 0 and (self.learn_centroids or self.learn_weights)
        group = current_group()
        # Before any draw from a RandomState passed as random_state.
        fingerprint = (
            self._fingerprint(len(series), n_features, classes, warm)
            if trains and self.checkpoint is not None
            else None
        )
        rng = check_random_state(self.random_state)
        if group is not None:
            # Every rank must draw the same split, seeds and permutations: rank 0's.
            state = group.broadcast(rng.get_state())
            if group.rank != 0:
                rng = np.random.RandomState()
                rng.set_state(state)
        device = self._torch_device()
        train_index, validation_index = self._split(len(series), y_index, rng)
        train_series = _subset(series, train_index)
        y_train = y_index[train_index]
        width = n_features
        read = _reader(series, n_features, width, device, from_estimator=False)
        # Scores are checked on the held-out samples when there are some, else on
        # (up to _SCORING_SAMPLES of) the training samples.
        scoring_index = validation_index if validation_index is not None else train_index
        scoring_index = scoring_index[
            np.unique(np.linspace(0, len(scoring_index) - 1, _SCORING_SAMPLES).astype(int))
        ]
        self.classes_ = classes
        self.n_features_in_ = n_features

        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        resume = self._resume_state(fingerprint, group) if fingerprint is not None else None
        if resume is not None:
            # As trained; the optimiser state follows in _train.
            C, V, param, initial_state = self._resumed_parameters(resume, device)
        else:
            # Passes over the data inside fit read a batch at a time: fit holds no more.
            std = (
                None if self.feature_scaling is None
                else feature_std(
                    train_series, n_features, self.batch_size,
                    pooled=self.feature_scaling == "pooled",
                )
            )
            C, V = self._initial_parameters(
                warm, train_series, y_train, classes.size, n_features, length, rng,
                generator, std, group, device,
            )
            param = (
                Parametrization() if std is None
                else Parametrization.standard(C, V.exp(), std)
            )
            C, V = param.initial(C, V)
            initial_dist = self._distances(
                read, scoring_index, param.centroids(C), param.weights(V), self.batch_size
            )
            # Tensors only: a checkpoint is read back with torch.load(weights_only=True).
            initial_state = {
                "centroid_class": torch.from_numpy(self.centroid_class_),
                "parametrization": param.state_dict(),
                "logit_scale": distance_spread(initial_dist),
                "initial_dist": torch.from_numpy(initial_dist),
            }
        self.logit_scale_ = initial_state["logit_scale"]
        C.requires_grad_(self.learn_centroids)
        V.requires_grad_(self.learn_weights)

        self.history_ = {
            "loss": [], "train_accuracy": [], "learning_rate": [],
            "centroid_learning_rate": [], "seconds": [],
        }
        if validation_index is not None:
            self.history_.update(validation_loss=[], validation_accuracy=[])
        self.n_epochs_ = 0
        self.best_epoch_ = None
        if trains:
            if is_lazy(series):
                def batch(index):
                    return read(train_index[index.numpy()])
            else:
                packed = _pack(train_series, device, width)

                def batch(index):
                    return _select(packed, index.to(device))

            validation = None
            if validation_index is not None:
                validation = (read, validation_index, y_index[validation_index])
            C, V = self._train(
                C, V, param, batch, y_train, validation, generator, device, group, resume,
                fingerprint, initial_state,
            )

        centroids, weights = param.centroids(C.detach()), param.weights(V.detach())
        self.centroids_ = centroids[..., :n_features].cpu().numpy()
        self.weights_ = weights[..., :n_features].cpu().numpy()
        final_dist = self._distances(read, scoring_index, centroids, weights, self.batch_size)
        held_out = validation_index is not None
        self._calibrate(series, y_index, final_dist, scoring_index, held_out, warm)
        if trains:
            self._warn_if_not_learned(
                initial_state["initial_dist"].numpy(), final_dist, y_index[scoring_index],
                held_out,
            )
        return self

    def _check_training_data(self, X, y, warm):
        """The validated series (list or lazy sequence), the feature count, the classes
        and the class index of every sample."""
        if is_lazy(X):
            series = X
            n_features = check_lazy_series(X, n_features=self.n_features_in_ if warm else None)
        else:
            series = check_series_list(X, n_features=self.n_features_in_ if warm else None)
            n_features = series[0].shape[1]
        if len(series) != len(y):
            raise ValueError(f"X has {len(series)} series but y has {len(y)} labels")
        check_label_types(y)
        check_classification_targets(y)
        classes, y_index = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"y contains only one class ({classes[0]!r}); DejaVidClassifier needs "
                "samples of at least 2 classes"
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start=True but y has classes {classes.tolist()}, not the classes "
                f"{self.classes_.tolist()} of the previous fit"
            )
        return series, n_features, classes, y_index

    def _split(self, n_samples, y_index, rng):
        """Sorted training and validation indices (None without a validation fraction)."""
        train_index = np.arange(n_samples)
        if self.validation_fraction is None:
            return train_index, None
        train_index, validation_index = train_test_split(
            train_index, test_size=self.validation_fraction, stratify=y_index,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        return np.sort(train_index), np.sort(validation_index)

    def _resumed_parameters(self, resume, device):
        """``(C', V')``, the parametrisation and the initial state saved in a checkpoint."""
        initial_state = resume["initial_state"]
        param = Parametrization(**{
            k: None if v is None else v.to(device)
            for k, v in initial_state["parametrization"].items()
        })
        self.centroid_class_ = initial_state["centroid_class"].numpy()
        return resume["C"].to(device), resume["V"].to(device), param, initial_state

    def _initial_parameters(
        self, warm, train_series, y_train, n_classes, n_features, length, rng, generator,
        std, group, device,
    ):
        """The initial centroids and log-weights (padded, on ``device``, in the data's
        units) and, as ``centroid_class_``, the class of each centroid. ``std``: the
        features' standard deviations with feature scaling, else None."""
        width = n_features
        if warm:
            centroids = self.centroids_
            log_weights = torch.from_numpy(np.log(self.weights_))
        else:
            initial = None
            if group is None or group.rank == 0:
                initial = self._initial_centroids(
                    train_series, y_train, n_classes, n_features, length, rng,
                    None if std is None else 1.0 / std,
                )
            if group is not None:
                # From the whole training set, once; identical on every rank.
                initial = group.broadcast(initial)
            centroids, self.centroid_class_ = initial
            shape = (len(centroids), length, n_features)
            # Drawn on every rank: the generator then shuffles identically everywhere.
            log_weights = (
                torch.randn(shape, generator=generator)
                if self.weight_init == "random"
                else torch.zeros(shape)
            )
            if std is not None:
                # Unit (or random) weights of the standardised features.
                log_weights = log_weights - torch.from_numpy(np.log(std)).float()
        C = torch.tensor(_pad_features(centroids, width), device=device)
        V = _pad_features(log_weights, width).to(device)
        return C, V

    def _train(
        self, C, V, param, batch, y_train, validation, generator, device, group, resume,
        fingerprint, initial_state,
    ):
        """The training loop; returns the kept learned (centroids, log-weights).

        ``batch(index)``: the PackedBatch of the training samples at positions ``index``
        (a CPU int64 tensor); ``validation``: None or (reader, indices, targets);
        ``group``: None or the ProcessGroup of data-parallel training; ``resume``: None or
        the checkpoint to continue from.
        """
        centroid_lr = (
            self.learning_rate / 3
            if self.centroid_learning_rate is None
            else self.centroid_learning_rate
        )
        groups = []
        if self.learn_weights:
            groups.append({"params": [V], "lr": self.learning_rate})
        if self.learn_centroids:
            groups.append({"params": [C], "lr": centroid_lr})
        params = [p for g in groups for p in g["params"]]
        optimizer = torch.optim.AdamW(
            groups, betas=(0.9, 0.999), weight_decay=self.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self.max_epochs, eta_min=0.0
        )
        targets = torch.from_numpy(y_train).to(device)
        n_train = len(y_train)
        best = None  # (accuracy, -loss) of the kept epoch, its index and its parameters
        first_epoch = 0
        if resume is not None:
            optimizer.load_state_dict(resume["optimizer"])
            schedule.load_state_dict(resume["schedule"])
            generator.set_state(resume["generator"])
            self.history_ = resume["history"]
            best = resume["best"]
            if best is not None:
                best = (best[0], best[1], best[2].to(device), best[3].to(device))
            first_epoch = resume["epoch"]

        epochs = tqdm(
            range(first_epoch, self.max_epochs), desc=type(self).__name__, unit="epoch",
            initial=first_epoch, total=self.max_epochs,
            disable=self.verbose < 1 or (group is not None and group.rank != 0),
        )
        for epoch in epochs:
            start = time.perf_counter()
            # The schedule scales both groups alike.
            lr_scale = optimizer.param_groups[0]["lr"] / optimizer.param_groups[0]["initial_lr"]
            frozen = {}
            if self.path_update == "epoch":
                frozen = {
                    "path_centroids": param.centroids(C.detach()).clone(),
                    "path_weights": param.weights(V.detach()),
                }
            order = torch.randperm(n_train, generator=generator)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            n_correct = torch.zeros((), dtype=torch.int64, device=device)
            for first in range(0, n_train, self.batch_size):
                index = order[first:first + self.batch_size]
                n_batch = len(index)
                if group is not None:
                    # The same permutation everywhere; each rank takes its share.
                    index = index[group.rank::group.world_size]
                optimizer.zero_grad()
                if len(index):
                    # The data were validated once in fit (or as read); the parameters are
                    # checked below.
                    dist = self._scores(
                        batch(index), param.centroids(C), param.weights(V),
                        check_input=False, **frozen,
                    )
                    batch_targets = targets[index.to(device)]
                    logits = training_logits(dist, self.logit_norm, self.logit_scale_)
                    if group is None:
                        loss = F.cross_entropy(logits, batch_targets)
                    else:
                        # Summed over the ranks, this is the global batch's mean loss.
                        loss = F.cross_entropy(logits, batch_targets, reduction="sum") / n_batch
                    loss.backward()
                    loss_sum += loss.detach() * n_batch
                    n_correct += (dist.detach().argmin(1) == batch_targets).sum()
                if group is not None:
                    group.all_reduce_gradients(params)
                optimizer.step()
            schedule.step()
            if group is not None:
                group.all_reduce_sum(loss_sum)
                group.all_reduce_sum(n_correct)
            if not (torch.isfinite(loss_sum) and torch.isfinite(C).all() and torch.isfinite(V).all()):
                raise ValueError(
                    f"training diverged in epoch {epoch}: the loss or the parameters are no "
                    "longer finite; lower learning_rate or centroid_learning_rate"
                )

            record = {
                "loss": float(loss_sum) / n_train,
                "train_accuracy": int(n_correct) / n_train,
                "learning_rate": self.learning_rate * lr_scale,
                "centroid_learning_rate": centroid_lr * lr_scale,
            }
            if validation is not None:
                record["validation_loss"], record["validation_accuracy"] = self._validate(
                    validation, param.centroids(C.detach()), param.weights(V.detach()),
                    device, group,
                )
                score = (record["validation_accuracy"], -record["validation_loss"])
                if best is None or score > best[0]:
                    best = (score, epoch, C.detach().clone(), V.detach().clone())
            record["seconds"] = time.perf_counter() - start
            for key, value in record.items():
                self.history_[key].append(value)
            postfix = {"loss": record["loss"], "acc": record["train_accuracy"]}
            if validation is not None:
                postfix["val_acc"] = record["validation_accuracy"]
            epochs.set_postfix(postfix)
            if self.checkpoint is not None:
                if group is None or group.rank == 0:
                    save_checkpoint(self.checkpoint, {
                        "fingerprint": fingerprint,
                        "epoch": epoch + 1,
                        "C": C.detach(),
                        "V": V.detach(),
                        "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(),
                        "generator": generator.get_state(),
                        "history": self.history_,
                        "best": best,
                        "initial_state": initial_state,
                    })
                if group is not None:
                    group.barrier()

        self.n_epochs_ = self.max_epochs
        if best is None:
            self.best_epoch_ = self.max_epochs - 1
            return C, V
        _, self.best_epoch_, C, V = best
        return C, V

    def _validate(self, validation, C, W, device, group):
        """(loss, accuracy) on the validation samples, exact DTW; with a process group,
        each rank scores its share and the sums are all-reduced."""
        read, index, targets = validation
        if group is None:
            dist = self._distances(read, index, C, W)
            logits = training_logits(torch.from_numpy(dist), self.logit_norm, self.logit_scale_)
            loss = float(F.cross_entropy(logits, torch.from_numpy(targets)))
            return loss, float(np.mean(dist.argmin(1) == targets))
        share = slice(group.rank, None, group.world_size)
        totals = torch.zeros(2, dtype=torch.float64)
        if index[share].size:
            dist = self._distances(read, index[share], C, W)
            logits = training_logits(torch.from_numpy(dist), self.logit_norm, self.logit_scale_)
            share_targets = torch.from_numpy(targets[share])
            totals[0] = F.cross_entropy(logits, share_targets, reduction="sum")
            totals[1] = float(np.sum(dist.argmin(1) == targets[share]))
        totals = group.all_reduce_sum(totals.to(device)).cpu()
        return float(totals[0]) / index.size, float(totals[1]) / index.size

    def _scores(self, batch, C, W, **op_options):
        """Class distances ``(B, n_classes)`` of a PackedBatch: the least weighted-DTW
        distance to the centroids of each class."""
        dist = weighted_dtw(
            batch, C, W, diagonal=self.diagonal, backend=self.backend, **op_options
        )
        return class_distances(dist, self.centroid_class_)

    @torch.no_grad()
    def _distances(self, read, index, C, W, chunk=None):
        """Exact class distances (len(index), n_classes), float64, of the samples
        ``read(index)``, ``chunk`` (default ``_INFERENCE_CHUNK``) at a time."""
        chunk = chunk or _INFERENCE_CHUNK
        chunks = []
        for first in range(0, len(index), chunk):
            batch = read(index[first:first + chunk])
            try:
                dist = self._scores(batch, C, W)
            except DistanceOverflowError as exc:  # name the sample by its index in X
                raise exc.renamed(int(index[first + exc.sample])) from None
            chunks.append(dist.cpu().numpy().astype(np.float64))
        return np.concatenate(chunks)

    def _calibrate(self, series, y_index, scoring_dist, scoring_index, held_out, warm):
        """``temperature_``: fitted on class distances of samples the model did not learn
        from: the validation split, else out-of-fold distances of ``calibration_cv``
        cross-fits, else (``calibration_cv=None``, a warm start, whose training no fresh
        cross-fit repeats, or a class of one sample) the training samples."""
        self.temperature_ = None
        if self.calibration is None:
            return
        n_splits = min(self.calibration_cv or 0, np.bincount(y_index).min())
        if held_out or warm or n_splits < 2:
            self.temperature_ = fit_temperature(-scoring_dist, y_index[scoring_index])
            return
        folds = StratifiedKFold(n_splits, shuffle=True, random_state=0)
        fold_model = clone(self).set_params(
            calibration=None, checkpoint=None, verbose=0, warm_start=False
        )
        dist = np.empty((len(y_index), self.classes_.size))
        for fit_index, held_index in folds.split(np.zeros(len(y_index)), y_index):
            with warnings.catch_warnings():
                # Warnings of the cross-fits would repeat those of the fit itself.
                warnings.simplefilter("ignore", ConvergenceWarning)
                fold_model.fit(_subset(series, fit_index), self.classes_[y_index[fit_index]])
            dist[held_index] = fold_model.transform(_subset(series, held_index))
        self.temperature_ = fit_temperature(-dist, y_index)

    def _warn_if_not_learned(self, initial, final, targets, held_out):
        """A ConvergenceWarning when the trained centroids classify the scoring samples
        clearly worse than the initial ones (by more than two binomial standard errors),
        or no better than always predicting the commonest class."""
        chance = np.bincount(targets).max() / len(targets)
        before = float(np.mean(initial.argmin(1) == targets))
        after = float(np.mean(final.argmin(1) == targets))
        # At least one sample's worth: a single error is no evidence when all were right.
        tolerance = 2 * np.sqrt(max(before * (1 - before), 1 / len(targets)) / len(targets))
        if after >= before - tolerance and after > chance:
            return
        where = "validation" if held_out else "training"
        reason = (
            f"below the {before:.3f} of the initial centroids" if after < before
            else f"no better than always predicting the commonest class ({chance:.3f})"
        )
        warnings.warn(
            f"DejaVidClassifier's {where} accuracy after training is {after:.3f}, {reason}: "
            "training did not help. Try the defaults of learning_rate, weight_init, "
            "feature_scaling and logit_norm, a smaller learning_rate or "
            "centroid_learning_rate, another centroid_length, or more max_epochs.",
            ConvergenceWarning,
        )

    def transform(self, X):
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
        if is_lazy(X):
            check_lazy_series(X, n_features=self.n_features_in_)
            series = X
        else:
            series = check_series_list(X, n_features=self.n_features_in_)
        device = self._torch_device()
        width = self.n_features_in_
        C = torch.from_numpy(_pad_features(self.centroids_, width)).to(device)
        W = torch.from_numpy(_pad_features(self.weights_, width, 1.0)).to(device)
        read = _reader(series, self.n_features_in_, width, device, from_estimator=True)
        return self._distances(read, np.arange(len(series)), C, W)

    def _logits(self, X):
        """The scores behind ``predict_proba``: the distances over the fitted temperature,
        or without calibration the training logits."""
        dist = self.transform(X)
        if self.temperature_ is not None:
            return -dist / self.temperature_
        return training_logits(torch.from_numpy(dist), self.logit_norm, self.logit_scale_).numpy()

    def decision_function(self, X):
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
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X):
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
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
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
        return log_softmax(self._logits(X), axis=1)

    def predict(self, X):
        """The class of the nearest centroid under the learned weighted DTW.

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
        return self.classes_[distances.argmin(1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
