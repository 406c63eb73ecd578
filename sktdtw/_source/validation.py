"""Input validation shared by the estimators (behind :func:`sktdtw._source.as_source`).

Accepted forms of ``X`` (the conventions of tslearn and aeon, time axis first):

* a list (or tuple) of array-likes of shape ``(T_i, F)``, lengths free (ragged); a 1-D
  array-like in the list is read as a univariate series ``(T_i,)``;
* a 3-D array ``(n_samples, T, F)``, where trailing rows that are entirely NaN are
  padding and dropped (tslearn's convention for unequal lengths);
* a 2-D array ``(n_samples, T)``, read as univariate series (trailing NaN dropped too).

A list is returned as a list, so it keeps surviving scikit-learn's cross-validation
indexing (``_safe_indexing`` of a list is a list).

A *lazy* sequence is any other :class:`collections.abc.Sequence` (for example an on-disk
store, :class:`sktdtw.io.TSEStore`): ``len(X)`` and ``X[i]``, a ``(T_i, F)`` array read on
demand. It is never converted as a whole: :func:`check_lazy_series` checks what metadata
gives cheaply, and :func:`read_series_batch` validates each batch as it is read, naming
the sample by its index in ``X``. A store may offer ``read_batch(indices) -> (values,
lengths)`` (faster than one ``X[i]`` per sample), ``lengths`` (int64, one per sample)
and ``checksums`` (uint32, the CRC-32 of every sample's float32 bytes, which a checkpoint's
fingerprint of the data then takes instead of reading every series); each is used when
present. Items of a lazy sequence are taken as they are: every value must be finite (there
is no NaN padding to drop in a ragged store).
"""

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.multiclass import check_classification_targets

from .._errors import InputError, warn_input
from ..dtw import offsets_from_lengths

__all__ = [
    "check_lazy_series", "check_series_list", "check_targets", "is_lazy", "read_series_batch",
    "tensor_as_numpy",
]

# Floating-point dtypes NumPy has; a tensor of another one (bfloat16, float8) is converted
# to float32, which holds its values exactly.
_NUMPY_FLOATS = (torch.float16, torch.float32, torch.float64)


def tensor_as_numpy(x, what):
    """The values of the tensor ``x`` as a NumPy array (cut from the graph, on the CPU).

    Raises
    ------
    ValueError
        For a tensor on the meta device, which holds no values; ``what`` names it.
    """
    if x.is_meta:
        raise InputError(f"{what} is a tensor on the meta device, which holds no values")
    x = x.detach().cpu()
    if x.dtype.is_floating_point and x.dtype not in _NUMPY_FLOATS:
        x = x.float()
    return x.numpy()


# What the errors suggest where a layout was probably meant otherwise.
ENCODE_FIRST = ("videos (files, or frames of shape (T, H, W) or (T, H, W, C)) are encoded into "
                "(T, F) series with TSESlidingEncoder first")
FITTED_FEATURES = ("the number it was fitted on: series must keep their features (videos the "
                   "encoder, frame size and crop they were encoded with for fit)")
TRANSPOSED = ("if the series are (F, T), features first as aeon and sktime store them, "
              "transpose each to (T, F)")


def _non_number(arr, what, samples, exc):
    """The error for the first entry of the object array ``arr`` that is not a real number
    (``samples``: its first axis numbers the samples of X), of the type of ``exc``, the
    conversion's error: a ValueError for a string that is not a number, a TypeError for
    another object, as scikit-learn's validation raises."""
    for index, value in np.ndenumerate(arr):
        try:
            float(value)
        except (TypeError, ValueError) as error:
            where = (f"sample {index[0]} of {what} holds {value!r} at index {index[1:]}"
                     if samples else f"{what} holds {value!r} at index {index}")
            if isinstance(error, TypeError):
                return TypeError(f"{where}: {error}")
            return InputError(f"{where}, not a real number")
    return exc


def _as_real_array(x, what, samples=False):
    """``np.asarray`` with the errors scikit-learn's own validation raises; an entry that is
    not a number is named by its sample (``samples``: the first axis numbers them)."""
    if sparse.issparse(x):
        raise TypeError(
            f"{what} is a sparse matrix; sparse input is not supported, pass dense arrays"
        )
    if isinstance(x, torch.Tensor):  # the estimators never backpropagate into their input
        x = tensor_as_numpy(x, what)
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise InputError(f"Complex data not supported: {what} has dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise _non_number(arr, what, samples, exc) from exc
    if arr.dtype.kind not in "fiub":
        hint = f"; {ENCODE_FIRST}" if arr.dtype.kind in "US" else ""
        raise InputError(f"{what} has dtype {arr.dtype}; expected real numbers{hint}")
    return arr


def _drop_nan_padding(series):
    """Drop the trailing rows that are all NaN (padding of unequal-length 3-D arrays)."""
    real_rows = ~np.isnan(series).all(axis=1)
    if real_rows.all():
        return series
    last = np.flatnonzero(real_rows)
    return series[: last[-1] + 1] if last.size else series[:0]


def check_series_list(X, *, n_features=None, dtype=np.float32, input_name="X"):
    """Validate a set of (possibly ragged) multivariate series.

    Parameters
    ----------
    X : list of array-like of shape (T_i, F), ndarray of shape (n, T, F) or (n, T)
        The series; see the module docstring for the conventions.
    n_features : int, default=None
        If given, every series must have this many features (the ``n_features_in_`` of a
        fitted estimator).
    dtype : numpy dtype, default=np.float32
        The dtype of the returned arrays.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    series : list of ndarray of shape (T_i, F)
        C-contiguous arrays of ``dtype``, every ``T_i >= 1``.

    Raises
    ------
    ValueError
        If ``X`` is empty or 1-D, a series is empty, is not 1-D/2-D, contains non-finite
        values (other than trailing NaN padding), values beyond float32's range or only
        float32 subnormal ones (with ``dtype=np.float32``), or has a feature count
        differing from the others or from ``n_features``; the message names the sample.
    TypeError
        For sparse input, or an iterator (pass a list).
    """
    if getattr(getattr(X, "dtype", None), "kind", None) == "O" and getattr(X, "ndim", None) == 1:
        X = list(X)  # a ragged object array or a pandas Series of arrays: one per sample
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise InputError(f"{input_name} is empty: need at least one series")
        raw = [_item_array(x, i, input_name) for i, x in enumerate(X)]
    else:
        if not hasattr(X, "__len__") and not hasattr(X, "__array__"):
            raise TypeError(
                f"{input_name} is a {type(X).__name__}; expected a list of (T, F) series, an "
                "array or a Sequence (materialise an iterator or generator with list())"
            )
        arr = _as_real_array(X, input_name, samples=True)
        if arr.ndim == 2 and n_features not in (None, 1):
            raise InputError(
                f"{input_name} is a 2-D array of shape {arr.shape}, read as {arr.shape[0]} "
                f"univariate series, but the estimator expects {n_features} features; a "
                "single (T, F) series x is passed as [x]"
            )
        if arr.ndim == 2:
            arr = arr[:, :, None]
        elif arr.ndim != 3:
            raise InputError(
                f"{input_name} has shape {arr.shape}; expected a list of (T, F) series, a 3-D "
                "array (n_samples, T, F), or a 2-D array (n_samples, T) of univariate series. "
                "Reshape your data: a single series x is passed as [x]"
                + (f"; {ENCODE_FIRST}" if arr.ndim > 3 else "")
            )
        if arr.shape[0] == 0:
            raise InputError(f"{input_name} is empty: need at least one series")
        _warn_if_channels_first(arr, input_name)
        raw = list(arr)

    series = []
    expected = n_features if n_features is not None else raw[0].shape[1]
    for i, arr in enumerate(raw):
        arr = _drop_nan_padding(_check_width(arr, i, input_name, dtype))
        series.append(_check_sample(arr, i, expected, n_features is not None, input_name))
    return series


# Samples whose order along each axis tells a time axis from a feature axis.
_LAYOUT_SAMPLES = 64
# How much more the values along the last axis follow from their neighbours than along
# the second (lag-1 autocorrelations) before it is taken for time. Embeddings over time
# show the opposite: about 0.9 along the windows against 0 across the features.
_TIME_LIKE_MARGIN = 0.3


def _lag1_correlation(arr, axis):
    """The lag-1 autocorrelation of ``arr`` along ``axis``, pooled over the other axes."""
    x = np.moveaxis(arr, axis, -1).astype(np.float64)
    x -= x.mean(-1, keepdims=True)
    energy = np.square(x).sum()
    return float((x[..., 1:] * x[..., :-1]).sum() / energy) if energy > 0 else 0.0


def _warn_if_channels_first(arr, input_name):
    """An InputWarning when a 3-D array ``(n, T, F)`` with fewer steps than features looks
    like aeon's and sktime's ``(n, channels, T)``: every series one step long, or values
    that follow their neighbours along the last axis, as a time series does, more than
    along the second."""
    n_steps, n_features = arr.shape[1:]
    if n_steps >= n_features:
        return
    if n_steps == 1:
        reason = "every series is 1 step long"
    else:
        sample = arr[:_LAYOUT_SAMPLES]
        sample = sample[np.isfinite(sample).all(axis=(1, 2))]  # NaN padding has no order
        if not (len(sample) and _lag1_correlation(sample, 2)
                > _lag1_correlation(sample, 1) + _TIME_LIKE_MARGIN):
            return
        reason = "its values change along the last axis as a time series does"
    warn_input(
        f"{input_name} has shape {arr.shape}, read as series of {n_steps} time "
        f"step{'s' * (n_steps > 1)} and "
        f"{n_features} features (n_samples, T, F), but {reason}: if it is in aeon's and "
        "sktime's (n_samples, n_channels, n_timepoints) layout, pass "
        f"{input_name}.transpose(0, 2, 1)"
    )


def _check_width(arr, i, input_name, dtype):
    """``arr`` as ``dtype``, after checking it has at least one feature."""
    if arr.shape[1] == 0:
        raise InputError(f"sample {i} of {input_name} has 0 features; at least 1 is required")
    return _converted(arr, dtype, i, input_name)


_FLOAT32 = np.finfo(np.float32)
# The range the estimators compute in, as the errors name it.
_FLOAT32_RANGE = (f"float32's range: magnitudes from {_FLOAT32.smallest_normal:.3g} (the "
                  f"smallest normal number) to {_FLOAT32.max:.3g}")


def _converted(arr, dtype, i, input_name):
    """``arr`` as ``dtype``; a finite value too large for float32, which would become inf,
    is an error naming float32's range and the sample."""
    with np.errstate(over="ignore"):
        converted = np.asarray(arr, dtype=dtype)
    if converted.dtype == np.float32 and arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        beyond = np.isinf(converted) & np.isfinite(arr)
        if beyond.any():
            step, feature = np.argwhere(beyond)[0]
            raise InputError(
                f"sample {i} of {input_name} has the value {arr[step, feature]:.3g} at time "
                f"step {step}, beyond {_FLOAT32_RANGE}, in which the estimators compute; "
                "rescale the data"
            )
    return converted


def _check_sample(arr, i, expected, from_estimator, input_name, padding_allowed=True):
    """Check one converted (T, F) series: T >= 1, ``expected`` features, finite values.

    ``from_estimator``: ``expected`` is the fitted ``n_features_in_`` (else sample 0's).
    """
    if arr.shape[0] == 0:
        raise InputError(
            f"sample {i} of {input_name} is empty (length 0"
            + (" after dropping trailing NaN padding" if padding_allowed else "")
            + "); every series needs at least one time step"
        )
    if arr.shape[1] != expected:
        if from_estimator:
            raise InputError(
                f"sample {i} of {input_name} has {arr.shape[1]} features, but the estimator "
                f"is expecting {expected} features as input ({FITTED_FEATURES}); {TRANSPOSED}"
            )
        raise InputError(
            f"sample {i} of {input_name} has {arr.shape[1]} features but sample 0 has "
            f"{expected}; all series must have the same number of features; {TRANSPOSED}"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        step = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise InputError(
            f"sample {i} of {input_name} contains non-finite values (NaN or inf) at time "
            f"step {step}; "
            + (
                "only trailing all-NaN rows (padding) are allowed"
                if padding_allowed
                else "every value of a lazily read series must be finite"
            )
        )
    if arr.dtype == np.float32 and _only_subnormal(np.abs(arr).max()):
        raise InputError(
            f"sample {i} of {input_name} has no value larger than {np.abs(arr).max():.3g} in "
            f"magnitude, below {_FLOAT32_RANGE}: float32, in which the estimators compute, "
            "keeps too few digits of such values for distances or weights; rescale the data"
        )
    return np.ascontiguousarray(arr)


def _only_subnormal(peak):
    """Whether a series whose largest magnitude is ``peak`` (or series: an array of those)
    holds only float32 subnormal numbers and zeros."""
    return (0 < peak) & (peak < _FLOAT32.smallest_normal)


def check_targets(y, n_samples, *, min_classes=1, expected_classes=None, name="the estimator"):
    """The classes and the class index of every sample of the labels ``y``.

    Raises
    ------
    ValueError
        If ``y`` does not have ``n_samples`` labels, mixes strings and numbers (they cannot
        be sorted), is not a classification target, has fewer than ``min_classes``
        classes (``name`` says who needs them), or (with ``expected_classes``, a warm
        start's) other classes.
    """
    if n_samples != len(y):
        raise InputError(f"X has {n_samples} series but y has {len(y)} labels")
    y = np.asarray(y)
    if y.dtype == object:
        kinds = {"str" if isinstance(v, str) else "number" for v in y.ravel().tolist()}
        if len(kinds) > 1:
            raise InputError("y mixes str and number labels; make them all one type (e.g. "
                             "y.astype(str))")
    check_classification_targets(y)
    classes, y_index = np.unique(y, return_inverse=True)
    if classes.size < min_classes:
        raise InputError(
            f"y contains only one class ({classes[0]!r}); {name} needs samples of at least "
            f"{min_classes} classes"
        )
    if expected_classes is not None and not np.array_equal(classes, expected_classes):
        raise InputError(
            f"warm_start=True but y has classes {classes.tolist()}, not the classes "
            f"{expected_classes.tolist()} of the previous fit"
        )
    return classes, y_index


def is_lazy(X):
    """Whether ``X`` is a lazy sequence of series (read on demand, never converted whole)."""
    return isinstance(X, Sequence) and not isinstance(
        X, (list, tuple, str, bytes, np.ndarray, torch.Tensor)
    )


def _item_array(x, i, input_name):
    """One item of a lazy sequence as a 2-D real array (1-D is one feature)."""
    arr = _as_real_array(x, f"sample {i} of {input_name}")
    if arr.ndim == 1:
        arr = arr[:, None]
    elif arr.ndim != 2:
        raise InputError(
            f"sample {i} of {input_name} has shape {arr.shape}; expected (T, F) or (T,); "
            + ENCODE_FIRST
        )
    return arr


def check_lazy_series(X, *, n_features=None, input_name="X"):
    """Check a lazy sequence from its metadata; return its number of features.

    Reads only sample 0 (for the feature count). With a ``lengths`` attribute, checks it
    has one entry per sample, each ``>= 1``; without it, empty series are found when read.

    Parameters
    ----------
    X : Sequence
        A lazy sequence (see :func:`is_lazy`).
    n_features : int, default=None
        If given, the feature count the series must have.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    n_features : int
    """
    if len(X) == 0:
        raise InputError(f"{input_name} is empty: need at least one series")
    first = _check_width(_item_array(X[0], 0, input_name), 0, input_name, np.float32)
    expected = n_features if n_features is not None else first.shape[1]
    _check_sample(first, 0, expected, n_features is not None, input_name, padding_allowed=False)
    lengths = getattr(X, "lengths", None)
    if lengths is not None:
        lengths = np.asarray(lengths)
        if lengths.shape != (len(X),):
            raise InputError(
                f"{input_name}.lengths has shape {lengths.shape}; expected ({len(X)},), one "
                "length per sample"
            )
        empty = np.flatnonzero(lengths < 1)
        if empty.size:
            raise InputError(
                f"sample {int(empty[0])} of {input_name} is empty (length 0); every series "
                "needs at least one time step"
            )
    return expected


def read_series_batch(X, indices, *, n_features, from_estimator=True, input_name="X"):
    """Read and validate the samples ``X[indices]`` of a lazy sequence, packed.

    Parameters
    ----------
    X : Sequence
        A lazy sequence.
    indices : array-like of int
        Which samples, in this order (repeats allowed).
    n_features : int
        The feature count every series must have.
    from_estimator : bool, default=True
        Whether ``n_features`` is a fitted estimator's ``n_features_in_`` (else sample
        0's); only changes the error message.
    input_name : str, default="X"
        Name used in error messages.

    Returns
    -------
    values : ndarray of shape (sum of the lengths, n_features)
        float32, C-contiguous, the samples one after the other.
    lengths : ndarray of shape (len(indices),)
        int64.

    Raises
    ------
    ValueError
        Naming the sample by its index in ``X``: not 1-D/2-D, empty, another feature
        count, or non-finite values.
    """
    indices = np.asarray(indices, dtype=np.int64)
    read_batch = getattr(X, "read_batch", None)
    if read_batch is None:
        items = []
        for i in indices.tolist():
            arr = _converted(_item_array(X[i], i, input_name), np.float32, i, input_name)
            items.append(_check_sample(arr, i, n_features, from_estimator, input_name, False))
        lengths = np.array([len(x) for x in items], dtype=np.int64)
        return np.concatenate(items), lengths

    raw, lengths = read_batch(indices)
    raw = np.asarray(raw)
    with np.errstate(over="ignore"):  # values beyond float32 are named below
        values = np.ascontiguousarray(raw, dtype=np.float32)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != indices.shape or values.ndim != 2 or lengths.sum() != len(values):
        raise InputError(
            f"{type(X).__name__}.read_batch returned values of shape {values.shape} and "
            f"lengths of shape {lengths.shape} for {indices.size} samples; expected "
            "(sum of the lengths, n_features) and one length per sample"
        )
    offsets = offsets_from_lengths(torch.from_numpy(lengths)).numpy()
    empty = np.flatnonzero(lengths < 1)
    if empty.size:
        i = int(indices[empty[0]])
        _check_sample(values[:0], i, n_features, from_estimator, input_name, False)
    if (values.shape[1] != n_features or not np.isfinite(values).all()
            or _only_subnormal(np.maximum.reduceat(np.abs(values).max(1), offsets[:-1])).any()):
        # Re-check sample by sample to name the first offending one.
        for b, i in enumerate(indices.tolist()):
            rows = slice(offsets[b], offsets[b + 1])
            _check_sample(_converted(raw[rows], np.float32, i, input_name), i, n_features,
                          from_estimator, input_name, False)
    return values, lengths
