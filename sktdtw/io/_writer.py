"""Writing a TSE store: series streamed to disk, then the per-sample files and meta.json."""

from __future__ import annotations

import io
import json
import os
import zlib

import numpy as np
import numpy.typing as npt
import torch
from tqdm.auto import tqdm

from .._atomic import atomic_directory
from .._errors import InputError
from .._source import tensor_as_numpy
from .._typing import PathLike, SeriesLike
from ._format import _VALUES_DTYPE, FORMAT_NAME, FORMAT_VERSION, _file_digest, _offsets_of
from ._store import TSEStore, open_store

__all__ = ["write_store"]


def _as_series(x, i):
    """One input series as a C-contiguous little-endian float32 (T, F) array."""
    if isinstance(x, torch.Tensor):
        x = tensor_as_numpy(x, f"series {i}")
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"series {i} has dtype {arr.dtype}; expected real numbers")
    if arr.ndim != 2:
        raise InputError(f"series {i} has shape {arr.shape}; expected (T, n_features)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"series {i} has shape {arr.shape}; every series needs at least one "
                         "time step and one feature")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported below
        arr = np.ascontiguousarray(arr, dtype=_VALUES_DTYPE)
    if not np.isfinite(arr).all():
        t, f = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"series {i} has a non-finite value at time step {t}, feature {f} "
                         "(after conversion to float32)")
    return arr


def _values_header(n_rows, n_features):
    """The .npy header of values.npy as bytes.

    NumPy pads headers so that the first axis can grow to 21 digits without changing the
    header's size; this is what lets the header be written before the number of rows is known
    and rewritten in place at the end.
    """
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {
        "descr": np.lib.format.dtype_to_descr(_VALUES_DTYPE),
        "fortran_order": False,
        "shape": (n_rows, n_features),
    })
    return buffer.getvalue()


def _write_values(directory, series, verbose):
    """Stream the series into directory/values.npy; returns their lengths, their CRC-32s and
    n_features."""
    total = len(series) if hasattr(series, "__len__") else None
    lengths, checksums = [], []
    n_features = None
    with open(os.path.join(directory, "values.npy"), "wb") as fp:
        for i, x in enumerate(tqdm(series, total=total, disable=not verbose,
                                   desc="writing series", unit="series")):
            arr = _as_series(x, i)
            if n_features is None:
                n_features = arr.shape[1]
                header_size = fp.write(_values_header(0, n_features))
            elif arr.shape[1] != n_features:
                raise InputError(f"series {i} has {arr.shape[1]} features; series 0 has "
                                 f"{n_features}")
            fp.write(arr.data)
            lengths.append(arr.shape[0])
            checksums.append(zlib.crc32(arr.data))
        if n_features is None:
            raise InputError("no series to write: a store needs at least one")
        header = _values_header(sum(lengths), n_features)
        if len(header) != header_size:  # only beyond 10**21 rows
            raise InputError(f"{sum(lengths)} rows do not fit in a .npy header")
        fp.seek(0)
        fp.write(header)
        fp.flush()
        os.fsync(fp.fileno())
    return (np.asarray(lengths, dtype=np.int64), np.asarray(checksums, dtype=np.uint32),
            n_features)


def _check_length(name, array, n_series):
    """Raise unless the per-sample ``array`` (None: not given) has ``n_series`` entries."""
    if array is not None and len(array) != n_series:
        raise InputError(f"{name} has {len(array)} entries but there are {n_series} series")


def _per_sample(values, name, n_expected, kinds):
    """A per-sample input as a 1-D array; checks its length when it is already known."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} has shape {array.shape}; expected one entry per series")
    if array.dtype.kind not in kinds:
        expected = "str" if kinds == "U" else "str or int"
        raise InputError(f"{name} has dtype {array.dtype}; expected {expected} values")
    if n_expected is not None:
        _check_length(name, array, n_expected)
    return array


def _unique_ids(ids, n_series):
    """The sample ids as str (``"0"``, ``"1"``, ... when None); raises if one repeats."""
    ids = np.arange(n_series).astype(str) if ids is None else ids.astype(str)
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = unique[counts > 1][0]
        where = np.flatnonzero(ids == dup).tolist()
        raise InputError(f"id {str(dup)!r} is used by series {where}; ids must be unique")
    return ids


def _write_durably(file, data):
    """Write the bytes ``data`` to ``file`` and flush them to the disk."""
    with open(file, "wb") as fp:
        fp.write(data)
        fp.flush()
        os.fsync(fp.fileno())


def _save(directory, name, array):
    """Save ``array`` as directory/name; returns the file's digest."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    _write_durably(os.path.join(directory, name), data)
    return _file_digest(data)


def _write_meta(directory, n_features, offsets, labels, splits, digests):
    """Write directory/meta.json, describing the files saved with digests ``digests``."""
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "n_samples": len(offsets) - 1,
        "n_rows": int(offsets[-1]),
        "n_features": n_features,
        "dtype": "float32",
        "values_nbytes": int(offsets[-1]) * n_features * _VALUES_DTYPE.itemsize,
        "has_labels": labels is not None,
        "has_splits": splits is not None,
        "digests": digests,
    }
    _write_durably(os.path.join(directory, "meta.json"),
                   json.dumps(meta, indent=1).encode("utf-8"))


def _refuse_non_store(path):
    if not (os.path.isdir(path) and os.path.isfile(os.path.join(path, "meta.json"))):
        raise FileExistsError(f"{path} exists and is not a TSE store; refusing to replace it")


def _check_destination(path, overwrite):
    """Raise unless a store may be written at ``path``."""
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if os.path.lexists(path):
        _refuse_non_store(path)


def write_store(
    path: PathLike, series: SeriesLike, labels: npt.ArrayLike | None = None,
    ids: npt.ArrayLike | None = None, splits: npt.ArrayLike | None = None, *,
    overwrite: bool = False, verbose: int = 0,
) -> TSEStore:
    """Write series (and their labels, ids, splits) to a new TSE store.

    The series are streamed to disk one at a time, so ``series`` may be a generator over a
    dataset that does not fit in memory. The store is written to a temporary sibling
    directory and renamed to ``path`` only when complete: a failed write leaves nothing at
    ``path`` (and removes the temporary directory), and the debris of a killed one is
    removed by the next write to ``path``. Replacing a store (``overwrite=True``) either
    completes or leaves the previous store readable at ``path``.

    Parameters
    ----------
    path : str or path-like
        Directory of the new store (its parent is created if missing).
    series : iterable of array-like of shape (T_i, n_features)
        The series (NumPy arrays or tensors), any lengths ``T_i >= 1``, the same number of
        features, finite values; stored as float32.
    labels : array-like of shape (n_samples,), default=None
        Class labels (str or int); None writes an unlabelled store.
    ids : array-like of shape (n_samples,), default=None
        Unique sample ids, stored as str; None numbers the series ``"0"``, ``"1"``, ...
    splits : array-like of shape (n_samples,), default=None
        Split of every series (str, e.g. ``"train"``, ``"test"``), or None.
    overwrite : bool, default=False
        Replace an existing store at ``path`` (never a directory that is not a store).
    verbose : int, default=0
        ``>= 1`` shows a progress bar over the series.

    Returns
    -------
    store : TSEStore
        The new store, opened.

    Raises
    ------
    ValueError
        If a series is empty, not 2-D, not real, has non-finite values or a different
        number of features than the first (the message names the series), if labels, ids
        or splits do not have one entry per series, or if ids repeat.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False, or ``path`` is not a store.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sktdtw.io import write_store
    >>> path = os.path.join(tempfile.mkdtemp(), "store")
    >>> series = (np.full((t, 2), t, dtype=np.float32) for t in range(1, 4))
    >>> store = write_store(path, series, labels=[0, 1, 1], ids=["a", "b", "c"])
    >>> store.ids.tolist(), store.labels.tolist(), store.lengths.tolist()
    (['a', 'b', 'c'], [0, 1, 1], [1, 2, 3])
    """
    path = os.path.abspath(os.fspath(path))
    _check_destination(path, overwrite)
    n_known = len(series) if hasattr(series, "__len__") else None
    # Check the per-sample arrays before the (long) write when the number of series is known.
    labels = None if labels is None else _per_sample(labels, "labels", n_known, "Uiu")
    ids = None if ids is None else _per_sample(ids, "ids", n_known, "Uiu")
    splits = None if splits is None else _per_sample(splits, "splits", n_known, "U")

    with atomic_directory(path, replace=_refuse_non_store if overwrite else None) as tmp:
        lengths, checksums, n_features = _write_values(tmp, series, verbose)
        for name, array in (("labels", labels), ("ids", ids), ("splits", splits)):
            _check_length(name, array, len(lengths))
        ids = _unique_ids(ids, len(lengths))
        offsets = _offsets_of(lengths)
        files = {"offsets": offsets, "checksums": checksums, "ids": ids, "labels": labels,
                 "splits": splits}
        digests = {f"{name}.npy": _save(tmp, f"{name}.npy", array)
                   for name, array in files.items() if array is not None}
        # meta.json last: a store directory without it is never taken for a complete one.
        _write_meta(tmp, n_features, offsets, labels, splits, digests)
    return open_store(path)
