"""The on-disk TSE store: one contiguous float32 ``.npy`` of all time steps plus offsets.

Layout of a store directory (format version 2)::

    values.npy     float32 (n_rows, n_features), the series one after another
    offsets.npy    int64 (n_samples + 1,), series i is values[offsets[i]:offsets[i + 1]]
    checksums.npy  uint32 (n_samples,), CRC-32 of every series' bytes in values.npy
    ids.npy        str (n_samples,), unique sample ids
    labels.npy     (n_samples,) str or int labels (only when the store has labels)
    splits.npy     str (n_samples,), e.g. "train" / "test" (only when the store has splits)
    meta.json      format name and version, n_samples, n_rows, n_features, dtype, byte size,
                   and the SHA-256 of every other file but values.npy

Every file is a plain ``.npy`` (``allow_pickle=False``) that NumPy alone can read; the
values are memory-mapped, so opening a store reads no series and indexing reads only the
pages of the series it touches. Integrity: opening a store checks the digests of the small
files (so an edited offset or label is an error naming the file), and every read of a
series checks its CRC-32 (so a flipped byte in the values is an error naming the sample),
at a cost far below that of anything done with the series. Stores of format version 1
(no digests) are still read, unchecked.
"""

import hashlib
import io
import json
import operator
import os
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .._atomic import atomic_directory, remove_stale
from .._errors import InputError

__all__ = ["TSEStore", "open_store", "write_store"]

FORMAT_NAME = "sktdtw-tse-store"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_VALUES_DTYPE = np.dtype("<f4")
# meta.json's keys and their types (bool is not an int here).
_META_TYPES = {"n_samples": int, "n_rows": int, "n_features": int, "dtype": str,
               "values_nbytes": int, "has_labels": bool, "has_splits": bool}


# ---------------------------------------------------------------------------- opening


class _Files:
    """The arrays of one opened store, shared by every view of it."""

    def __init__(self, path, values, offsets, checksums, ids, labels, splits):
        self.path = path
        self.values = values
        self.offsets = offsets
        self.checksums = checksums
        self.ids = ids
        self.labels = labels
        self.splits = splits

    def series(self, position):
        """Series ``position`` of the store (a read-only view), its checksum verified."""
        start, stop = self.offsets[position: position + 2]
        values = np.asarray(self.values[start:stop])
        if self.checksums is not None and zlib.crc32(values) != self.checksums[position]:
            raise _corrupt(
                self.path, "values.npy",
                f"holds bytes of sample {position} (id {str(self.ids[position])!r}) that do not "
                "match their checksum in checksums.npy: the file is corrupted",
            )
        return values


def _corrupt(path, name, problem):
    return InputError(f"TSE store {path}: {name} {problem}")


def _read_meta(path):
    file = os.path.join(path, "meta.json")
    if not os.path.isfile(file):
        raise _corrupt(path, "meta.json", "is missing: this is not a TSE store written by "
                       "sktdtw.io.write_store, or it is incomplete")
    try:
        with open(file, encoding="utf-8") as fp:
            meta = json.load(fp)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, "meta.json", f"is unreadable: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _corrupt(path, "meta.json", f"does not describe a {FORMAT_NAME!r}")
    if meta.get("format_version") not in _READABLE_VERSIONS:
        raise _corrupt(
            path, "meta.json",
            f"has format version {meta.get('format_version')!r}; this version of sktdtw reads "
            f"versions {', '.join(map(str, _READABLE_VERSIONS))} (a newer sktdtw may read it)",
        )
    types = dict(_META_TYPES, **({"digests": dict} if meta["format_version"] >= 2 else {}))
    missing = [key for key in types if key not in meta]
    if missing:
        raise _corrupt(path, "meta.json", f"lacks the key(s) {', '.join(missing)}")
    for key, kind in types.items():
        value = meta[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _corrupt(path, "meta.json", f"has {key}: {value!r} ({type(value).__name__}); "
                           f"expected a {kind.__name__}")
        if kind is int and value < 0:
            raise _corrupt(path, "meta.json", f"has {key}: {value}; expected a count >= 0")
    if meta["dtype"] != "float32":
        raise _corrupt(path, "meta.json", f"has dtype {meta['dtype']!r}; expected 'float32'")
    return meta


def read_npy_header(file):
    """Shape, Fortran order, dtype and header size of the ``.npy`` file ``file``, read from
    its header alone.

    Raises
    ------
    OSError, ValueError or EOFError
        If the file cannot be read or has no valid header.
    """
    with open(file, "rb") as fp:
        version = np.lib.format.read_magic(fp)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, dtype = read_header(fp)
        return shape, fortran_order, dtype, fp.tell()


def _offsets_of(lengths):
    """``offsets[i]``: the first row of series ``i``; ``offsets[-1]``: the number of rows."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _open_values(path, meta):
    """Memory-map values.npy after checking its header and size against meta.json."""
    file = os.path.join(path, "values.npy")
    if not os.path.isfile(file):
        raise _corrupt(path, "values.npy", "is missing")
    rows, n_features = meta["n_rows"], meta["n_features"]
    try:
        shape, fortran_order, dtype, header_end = read_npy_header(file)
    except (OSError, ValueError, EOFError) as exc:
        raise _corrupt(path, "values.npy", f"has no valid .npy header: {exc}") from exc
    if dtype != _VALUES_DTYPE or fortran_order or shape != (rows, n_features):
        raise _corrupt(
            path, "values.npy",
            f"holds a {'Fortran-order ' if fortran_order else ''}{dtype} array of shape {shape}; "
            f"meta.json says little-endian float32 of shape ({rows}, {n_features})",
        )
    needed = rows * n_features * _VALUES_DTYPE.itemsize
    size = os.path.getsize(file) - header_end
    if size < needed:
        raise _corrupt(
            path, "values.npy",
            f"is truncated: {rows} rows of {n_features} float32 need {needed} bytes after the "
            f"header, the file has {size}",
        )
    if size > needed or needed != meta["values_nbytes"]:
        raise _corrupt(path, "values.npy", f"has {size} bytes of values; meta.json says "
                       f"{meta['values_nbytes']} and its shape {needed}")
    return np.memmap(file, dtype=_VALUES_DTYPE, mode="r", offset=header_end,
                     shape=(rows, n_features))


def _file_digest(data):
    return hashlib.sha256(data).hexdigest()


def _load_small(path, name, n_samples, digests):
    """Load a per-sample (n_samples,) array and make it read-only (views share it), after
    checking its digest (``digests``: meta.json's, None for format version 1)."""
    file = os.path.join(path, name)
    if not os.path.isfile(file):
        raise _corrupt(path, name, "is missing")
    try:
        with open(file, "rb") as fp:
            data = fp.read()
    except OSError as exc:
        raise _corrupt(path, name, f"is unreadable: {exc}") from exc
    if digests is not None and digests.get(name) != _file_digest(data):
        raise _corrupt(path, name, "does not match its digest in meta.json: the file is "
                       "corrupted or was modified after the store was written")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise _corrupt(path, name, f"is unreadable: {exc or type(exc).__name__}") from exc
    if array.shape != (n_samples,):
        raise _corrupt(path, name, f"has shape {array.shape}; meta.json says {n_samples} samples")
    array.flags.writeable = False
    return array


def _check_offsets(path, offsets, n_rows):
    if offsets.dtype.kind not in "iu":
        raise _corrupt(path, "offsets.npy", f"has dtype {offsets.dtype}; expected int64")
    if offsets[0] != 0:
        raise _corrupt(path, "offsets.npy", f"starts at {offsets[0]}, not 0")
    steps = np.diff(offsets)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise _corrupt(
            path, "offsets.npy",
            f"is not strictly increasing: entry {i + 1} is {offsets[i + 1]} after {offsets[i]} "
            f"(sample {i} would have length {steps[i]})",
        )
    if offsets[-1] != n_rows:
        raise _corrupt(path, "offsets.npy", f"ends at {offsets[-1]}, but values.npy has "
                       f"{n_rows} rows")
    return offsets.astype(np.int64, copy=False)


def _open_files(path):
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        remove_stale(path)  # puts back a store moved aside by a replacement that crashed
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no TSE store at {path}: no such directory")
    meta = _read_meta(path)
    n = meta["n_samples"]
    digests = meta.get("digests")
    values = _open_values(path, meta)
    # offsets has n + 1 entries: load it through the same checks with one more sample.
    offsets = _check_offsets(
        path, _load_small(path, "offsets.npy", n + 1, digests), meta["n_rows"]
    )
    checksums = _load_small(path, "checksums.npy", n, digests) if digests is not None else None
    ids = _load_small(path, "ids.npy", n, digests)
    labels = _load_small(path, "labels.npy", n, digests) if meta["has_labels"] else None
    splits = _load_small(path, "splits.npy", n, digests) if meta["has_splits"] else None
    return _Files(path, values, offsets, checksums, ids, labels, splits)


# ---------------------------------------------------------------------------- the store


class TSEStore(Sequence):
    """A read-only, lazily loaded sequence of ``(T_i, n_features)`` float32 series on disk.

    Open one with :func:`open_store` (or write one with :func:`write_store` /
    :func:`build_store`). Nothing is read until a series is indexed: ``store[i]`` is a
    read-only view of the memory-mapped values, and a slice, an array of indices or a
    boolean mask gives a lazy sub-store with the same interface. A store pickles as its path
    and the indices of its samples, never its data, so joblib ships it to workers cheaply.

    Parameters
    ----------
    path : str or path-like
        Directory of the store.

    Attributes
    ----------
    path : str
        Absolute path of the store directory.
    n_features : int
        Number of features per time step.
    lengths : ndarray of shape (n_samples,), int64
        Length ``T_i`` of every series of this view.
    offsets : ndarray of shape (n_samples + 1,), int64
        ``offsets[0] = 0``, ``offsets[i + 1] = offsets[i] + lengths[i]``: where series ``i``
        lies in ``read_batch(range(len(store)))``.
    labels : ndarray of shape (n_samples,) or None
        Class labels (str or int), or None for an unlabelled store.
    ids : ndarray of shape (n_samples,), str
        Unique sample ids.
    splits : ndarray of shape (n_samples,), str, or None
        Split of every sample (e.g. ``"train"``, ``"test"``), or None.

    See Also
    --------
    write_store : Write series to a new store.
    build_store : Build a store from per-sample ``.npy`` / ``.pt`` files and a CSV manifest.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sktdtw.io import write_store, open_store
    >>> rng = np.random.default_rng(0)
    >>> series = (rng.normal(size=(t, 3)) for t in (4, 7, 5))
    >>> path = os.path.join(tempfile.mkdtemp(), "store")
    >>> _ = write_store(path, series, labels=["a", "b", "a"], splits=["train", "train", "test"])
    >>> store = open_store(path)
    >>> len(store), store.n_features, store.lengths.tolist()
    (3, 3, [4, 7, 5])
    >>> store[1].shape
    (7, 3)
    >>> store.split("train").labels.tolist()
    ['a', 'b']
    >>> values, lengths = store.read_batch([2, 0])
    >>> values.shape, lengths.tolist()
    ((9, 3), [5, 4])
    """

    def __init__(self, path):
        self._init(_open_files(path), None)

    @classmethod
    def _view(cls, files, indices):
        store = cls.__new__(cls)
        store._init(files, indices)
        return store

    def _init(self, files, indices):
        # indices: positions in the whole store of this view's samples, None for all of them.
        self._files = files
        self._indices = indices
        self.path = files.path
        self.n_features = files.values.shape[1]
        lengths = np.diff(files.offsets)

        def pick(array):
            return array if array is None or indices is None else array[indices]

        self.lengths = pick(lengths)
        self.ids = pick(files.ids)
        self.labels = pick(files.labels)
        self.splits = pick(files.splits)
        self.offsets = _offsets_of(self.lengths)

    def __len__(self):
        return len(self.lengths)

    def _positions(self, indices):
        """Positions in the whole store of ``indices`` (a slice, ints or a mask of this view)."""
        n = len(self)
        if isinstance(indices, slice):
            local = np.arange(n)[indices]
        else:
            local = np.asarray(indices)
            if local.dtype == bool:
                if local.shape != (n,):
                    raise IndexError(f"boolean mask of shape {local.shape} for a store of "
                                     f"{n} samples")
                local = np.flatnonzero(local)
            elif local.size == 0 and local.ndim == 1:
                local = local.astype(np.int64)
            elif local.ndim != 1 or local.dtype.kind not in "iu":
                raise IndexError(
                    f"a store is indexed by an int, a slice, a 1-D array of ints or a boolean "
                    f"mask, not {local.dtype} of shape {local.shape}"
                )
            bad = (local < -n) | (local >= n)
            if bad.any():
                raise IndexError(f"sample index {local[bad][0]} is out of range for a store "
                                 f"of {n} samples")
            local = np.where(local < 0, local + n, local)
        return local.astype(np.int64) if self._indices is None else self._indices[local]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            n = len(self)
            i = operator.index(key)
            if not -n <= i < n:
                raise IndexError(f"sample index {i} is out of range for a store of {n} samples")
            i %= n
            return self._files.series(i if self._indices is None else self._indices[i])
        return self.subset(key)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def subset(self, indices):
        """A lazy view of some samples, in the given order.

        Parameters
        ----------
        indices : slice, array-like of int or boolean mask
            Samples of this store (negative indices count from the end).

        Returns
        -------
        store : TSEStore
            The view; its ``labels``, ``ids``, ``splits``, ``lengths`` and ``offsets`` are
            those of the chosen samples.

        Examples
        --------
        >>> import tempfile, os
        >>> import numpy as np
        >>> from sktdtw.io import write_store
        >>> path = os.path.join(tempfile.mkdtemp(), "store")
        >>> store = write_store(path, [np.ones((t, 2)) for t in (1, 2, 3)], labels=[0, 1, 0])
        >>> store.subset([2, 0]).lengths.tolist()
        [3, 1]
        """
        return TSEStore._view(self._files, self._positions(indices))

    def split(self, name):
        """The samples of one split.

        Parameters
        ----------
        name : str
            Split name, e.g. ``"train"``.

        Returns
        -------
        store : TSEStore
            The lazy view of the samples whose split is ``name``.

        Raises
        ------
        ValueError
            If the store has no splits or no sample in ``name``.

        Examples
        --------
        >>> import tempfile, os
        >>> import numpy as np
        >>> from sktdtw.io import write_store
        >>> path = os.path.join(tempfile.mkdtemp(), "store")
        >>> store = write_store(path, [np.ones((2, 2))] * 3, splits=["train", "test", "train"])
        >>> store.split("train").ids.tolist()
        ['0', '2']
        """
        if self.splits is None:
            raise InputError(f"TSE store {self.path} has no splits; cannot select split {name!r}")
        mask = self.splits == name
        if not mask.any():
            names = ", ".join(repr(str(s)) for s in np.unique(self.splits))
            raise InputError(f"TSE store {self.path} has no sample in split {name!r}; its "
                             f"splits are {names}")
        return self.subset(mask)

    def read_batch(self, indices):
        """Read some series into one packed array.

        Parameters
        ----------
        indices : slice, array-like of int or boolean mask
            Samples of this store, in the order wanted.

        Returns
        -------
        values : ndarray of shape (sum of their lengths, n_features), float32
            The series one after another (a new, writeable C-contiguous array).
        lengths : ndarray of shape (n_indices,), int64
            Their lengths.

        Examples
        --------
        >>> import tempfile, os
        >>> import numpy as np
        >>> from sktdtw.io import write_store
        >>> path = os.path.join(tempfile.mkdtemp(), "store")
        >>> store = write_store(path, [np.full((t, 2), t) for t in (1, 2, 3)])
        >>> values, lengths = store.read_batch([2, 1])
        >>> values[:, 0].tolist(), lengths.tolist()
        ([3.0, 3.0, 3.0, 2.0, 2.0], [3, 2])
        """
        positions = self._positions(indices)
        offsets = self._files.offsets
        lengths = offsets[positions + 1] - offsets[positions]
        values = np.empty((int(lengths.sum()), self.n_features), dtype=np.float32)
        row = 0
        for position, length in zip(positions.tolist(), lengths.tolist()):
            values[row: row + length] = self._files.series(position)
            row += length
        return values, lengths

    def __getstate__(self):
        return {"path": self.path, "indices": self._indices}

    def __setstate__(self, state):
        self._init(_open_files(state["path"]), state["indices"])

    def __repr__(self):
        view = "" if self._indices is None else ", subset"
        return (f"TSEStore({self.path!r}, n_samples={len(self)}, "
                f"n_features={self.n_features}{view})")


def open_store(path):
    """Open a TSE store read-only, reading no series.

    Parameters
    ----------
    path : str or path-like
        Directory written by :func:`write_store` or :func:`build_store`.

    Returns
    -------
    store : TSEStore
        The lazy sequence of its series.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a directory.
    ValueError
        If a file of the store is missing, truncated, does not match its digest or is
        inconsistent with the others (``values.npy`` shorter than the offsets say, offsets
        not starting at 0 or not increasing, per-sample files of the wrong length, an
        unknown format version); the message names the file. Reading a series whose bytes
        do not match their checksum raises a ValueError naming the sample.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sktdtw.io import write_store, open_store
    >>> path = os.path.join(tempfile.mkdtemp(), "store")
    >>> _ = write_store(path, [np.zeros((5, 4))], labels=["walk"])
    >>> open_store(path)[0].shape
    (5, 4)
    """
    return TSEStore(path)


# ---------------------------------------------------------------------------- writing


def _as_series(x, i):
    """One input series as a C-contiguous little-endian float32 (T, F) array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
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


def _per_sample(values, name, n_expected, kinds):
    """A per-sample input as a 1-D array; checks its length when it is already known."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise InputError(f"{name} has shape {array.shape}; expected one entry per series")
    if array.dtype.kind not in kinds:
        expected = "str" if kinds == "U" else "str or int"
        raise InputError(f"{name} has dtype {array.dtype}; expected {expected} values")
    if n_expected is not None and len(array) != n_expected:
        raise InputError(f"{name} has {len(array)} entries but there are {n_expected} series")
    return array


def _save(directory, name, array):
    """Save ``array`` as directory/name; returns the file's digest."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    data = buffer.getvalue()
    with open(os.path.join(directory, name), "wb") as fp:
        fp.write(data)
        fp.flush()
        os.fsync(fp.fileno())
    return _file_digest(data)


def _refuse_non_store(path):
    if not (os.path.isdir(path) and os.path.isfile(os.path.join(path, "meta.json"))):
        raise FileExistsError(f"{path} exists and is not a TSE store; refusing to replace it")


def write_store(path, series, labels=None, ids=None, splits=None, *, overwrite=False,
                verbose=0):
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
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if os.path.lexists(path):
        _refuse_non_store(path)
    n_known = len(series) if hasattr(series, "__len__") else None
    # Check the per-sample arrays before the (long) write when the number of series is known.
    labels = None if labels is None else _per_sample(labels, "labels", n_known, "Uiu")
    ids = None if ids is None else _per_sample(ids, "ids", n_known, "Uiu")
    splits = None if splits is None else _per_sample(splits, "splits", n_known, "U")

    with atomic_directory(path, replace=_refuse_non_store if overwrite else None) as tmp:
        lengths, checksums, n_features = _write_values(tmp, series, verbose)
        n = len(lengths)
        ids = np.arange(n).astype(str) if ids is None else ids.astype(str)
        for name, array in (("labels", labels), ("ids", ids), ("splits", splits)):
            if array is not None and len(array) != n:
                raise InputError(f"{name} has {len(array)} entries but there are {n} series")
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dup = unique[counts > 1][0]
            where = np.flatnonzero(ids == dup).tolist()
            raise InputError(f"id {str(dup)!r} is used by series {where}; ids must be unique")
        offsets = _offsets_of(lengths)
        files = {"offsets": offsets, "checksums": checksums, "ids": ids, "labels": labels,
                 "splits": splits}
        digests = {f"{name}.npy": _save(tmp, f"{name}.npy", array)
                   for name, array in files.items() if array is not None}
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "n_samples": n,
            "n_rows": int(offsets[-1]),
            "n_features": n_features,
            "dtype": "float32",
            "values_nbytes": int(offsets[-1]) * n_features * _VALUES_DTYPE.itemsize,
            "has_labels": labels is not None,
            "has_splits": splits is not None,
            "digests": digests,
        }
        # meta.json last: a store directory without it is never taken for a complete one.
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as fp:
            json.dump(meta, fp, indent=1)
            fp.flush()
            os.fsync(fp.fileno())
    return open_store(path)
