"""Input conversion shared by the estimators: every accepted form to a list of series.

Accepted forms of ``X`` (the conventions of tslearn and aeon, time axis first):

* a list (or tuple) of array-likes of shape ``(T_i, F)``, lengths free (ragged); a 1-D
  array-like in the list is read as a univariate series ``(T_i,)``;
* a 3-D array ``(n_samples, T, F)``, where trailing rows that are entirely NaN are
  padding and dropped (tslearn's convention for unequal lengths);
* a 2-D array ``(n_samples, T)``, read as univariate series (trailing NaN dropped too).

A list is returned as a list, so it keeps surviving scikit-learn's cross-validation
indexing (``_safe_indexing`` of a list is a list).
"""

import numpy as np
from scipy import sparse

__all__ = ["check_series_list"]


def _as_real_array(x, what):
    """``np.asarray`` with the errors scikit-learn's own validation raises."""
    if sparse.issparse(x):
        raise TypeError(
            f"{what} is a sparse matrix; sparse input is not supported, pass dense arrays"
        )
    arr = np.asarray(x)
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {what} has dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        # Raises TypeError/ValueError for entries that are not numbers, as check_array does.
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{what} has dtype {arr.dtype}; expected real numbers")
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
        values (other than trailing NaN padding), or has a feature count differing from
        the others or from ``n_features``; the message names the sample.
    TypeError
        For sparse input.
    """
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(f"{input_name} is empty: need at least one series")
        raw = []
        for i, x in enumerate(X):
            arr = _as_real_array(x, f"sample {i} of {input_name}")
            if arr.ndim == 1:
                arr = arr[:, None]
            elif arr.ndim != 2:
                raise ValueError(
                    f"sample {i} of {input_name} has shape {arr.shape}; expected (T, F) or (T,)"
                )
            raw.append(arr)
    else:
        arr = _as_real_array(X, input_name)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        elif arr.ndim != 3:
            raise ValueError(
                f"{input_name} has shape {arr.shape}; expected a list of (T, F) series, a 3-D "
                "array (n_samples, T, F), or a 2-D array (n_samples, T) of univariate series. "
                "Reshape your data: a single series x is passed as [x]"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"{input_name} is empty: need at least one series")
        raw = list(arr)

    series = []
    expected = n_features if n_features is not None else raw[0].shape[1]
    for i, arr in enumerate(raw):
        if arr.shape[1] == 0:
            raise ValueError(f"sample {i} of {input_name} has 0 features; at least 1 is required")
        arr = _drop_nan_padding(np.asarray(arr, dtype=dtype))
        if arr.shape[0] == 0:
            raise ValueError(
                f"sample {i} of {input_name} is empty (length 0 after dropping trailing NaN "
                "padding); every series needs at least one time step"
            )
        if arr.shape[1] != expected:
            if n_features is not None:
                raise ValueError(
                    f"sample {i} of {input_name} has {arr.shape[1]} features, but the estimator "
                    f"is expecting {n_features} features as input"
                )
            raise ValueError(
                f"sample {i} of {input_name} has {arr.shape[1]} features but sample 0 has "
                f"{expected}; all series must have the same number of features"
            )
        finite = np.isfinite(arr)
        if not finite.all():
            step = int(np.flatnonzero(~finite.all(axis=1))[0])
            raise ValueError(
                f"sample {i} of {input_name} contains non-finite values (NaN or inf) at time "
                f"step {step}; only trailing all-NaN rows (padding) are allowed"
            )
        series.append(np.ascontiguousarray(arr))
    return series
