"""The TSE store opened for reading: a lazy, read-only sequence of the series on disk."""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .._errors import InputError
from .._typing import PathLike
from ._format import _offsets_of, _open_files

__all__ = ["TSEStore", "open_store"]


class TSEStore(Sequence):
    """A read-only, lazily loaded sequence of ``(T_i, n_features)`` float32 series on disk.

    Open one with :func:`open_store` (or write one with :func:`write_store` /
    :func:`build_store`). Nothing is read until a series is indexed: ``store[i]`` is a
    read-only view of the memory-mapped values, and a slice, an array of indices or a
    boolean mask gives a lazy sub-store with the same interface. A store pickles as its path,
    the indices of its samples and its identity (a digest of the digests of its files), never
    its data, so joblib ships it to workers cheaply; unpickling it where another store has
    since replaced it (other contents at the same path) is a ValueError, never other data.
    Format version 1 stores, without digests, are identified by their meta.json alone.

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
    checksums : ndarray of shape (n_samples,), uint32, or None
        CRC-32 of every series' float32 bytes, checked by every read of it (None for a
        store of format version 1).

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
        self.checksums = pick(files.checksums)
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

    def subset(self, indices: npt.ArrayLike | slice) -> TSEStore:
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

    def split(self, name: str) -> TSEStore:
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

    def read_batch(self, indices: npt.ArrayLike | slice) -> tuple[np.ndarray, np.ndarray]:
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
        return {"path": self.path, "indices": self._indices, "identity": self._files.identity}

    def __setstate__(self, state):
        files = _open_files(state["path"])
        if files.identity != state["identity"]:
            raise InputError(
                f"TSE store {files.path} was replaced after this TSEStore was pickled (its "
                "files' digests differ), so unpickling it would read other data; open it "
                "again (open_store) and run again"
            )
        self._init(files, state["indices"])

    def __repr__(self):
        view = "" if self._indices is None else ", subset"
        return (f"TSEStore({self.path!r}, n_samples={len(self)}, "
                f"n_features={self.n_features}{view})")


def open_store(path: PathLike) -> TSEStore:
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
        do not match their checksum raises a ValueError naming the sample. A store that
        another writer replaces meanwhile (``overwrite=True``) is read whole, the old or
        the new one, never taken for a corrupted one.

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
