"""The estimators' data, made once at their boundary: a source of packed batches.

:func:`as_source` turns every accepted ``X`` (see :mod:`sktdtw._source.validation`) into a
:class:`SeriesSource`: ``read(index) -> PackedBatch``, ``lengths``, ``n_features``,
``subset(index)``, ``chunks(size)`` and ``checksums()``. In-memory series are validated and
packed once (:class:`PackedSource`); a lazy sequence is never loaded whole, each batch is
read and validated when it is used, its errors naming the sample by its index in ``X``
(:class:`LazySource`). Past this point no code asks which kind of input it was given.
"""

import zlib

import numpy as np
import torch

from .._errors import InputError
from ..dtw import PackedBatch, offsets_from_lengths
from .validation import (
    FITTED_FEATURES,
    check_lazy_series,
    check_series_list,
    is_lazy,
    read_series_batch,
)

__all__ = ["LazySource", "PackedSource", "SeriesSource", "as_source", "split_batch"]

# Series per read of checksums(): one pass over data that need not fit in memory.
_CHECKSUM_CHUNK = 1024


class SeriesSource:
    """Validated series of ``n_features`` features, read by index as packed batches.

    A source is a view: ``index`` holds the positions of its samples in the data it reads
    (all of them, or a subset), so ``subset`` copies no series. Subclasses implement
    ``_read_base(positions)``, ``_view(index)``, ``base_lengths`` and ``to``.
    """

    n_features: int
    index: np.ndarray
    device = torch.device("cpu")
    # Whether ``lengths`` costs no pass over the data.
    lengths_known = True

    def __len__(self):
        return self.index.size

    @property
    def lengths(self):
        """The length of every sample (int64)."""
        return self.base_lengths[self.index]

    def read(self, index):
        """The samples ``index`` (int array, any order, repeats allowed), packed on
        ``device``."""
        return self._read_base(self.index[np.asarray(index)])

    def subset(self, index):
        """The samples ``index`` of this source, as a source (a view: nothing is read)."""
        return self._view(self.index[np.asarray(index)])

    def chunks(self, size):
        """``(index, PackedBatch)`` for consecutive runs of ``size`` samples: one pass over
        data that need not fit in memory, one chunk held at a time."""
        for first in range(0, len(self), size):
            index = np.arange(first, min(first + size, len(self)))
            yield index, self.read(index)

    def checksums(self):
        """The CRC-32 of every sample's float32 bytes (uint32), what a TSE store records:
        the same for the same series in any form. One pass over the data, a chunk at a
        time."""
        checksums = []
        for _, batch in self.chunks(_CHECKSUM_CHUNK):
            values = batch.values.cpu().numpy()
            bounds = batch.offsets.tolist()
            checksums += [zlib.crc32(values[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
            del batch, values  # hold one chunk, not two, while the next is read
        return np.array(checksums, dtype=np.uint32)


def split_batch(batch):
    """The series of a PackedBatch, as a list of ``(T_i, F)`` NumPy arrays."""
    return np.split(batch.values.cpu().numpy(), batch.offsets[1:-1].cpu().numpy())


def _all(n):
    return np.arange(n, dtype=np.int64)


class PackedSource(SeriesSource):
    """In-memory series packed once into one ``(sum of lengths, F)`` tensor with offsets."""

    def __init__(self, values, offsets, index=None):
        self.values, self.offsets = values, offsets
        self.n_features = values.shape[1]
        self.device = values.device
        self.index = _all(offsets.numel() - 1) if index is None else index
        self.base_lengths = (offsets[1:] - offsets[:-1]).cpu().numpy()

    @classmethod
    def from_series(cls, series):
        """Pack a validated list of float32 ``(T_i, F)`` arrays."""
        lengths = torch.tensor([len(x) for x in series], dtype=torch.int64)
        return cls(torch.from_numpy(np.concatenate(series)), offsets_from_lengths(lengths))

    def _read_base(self, positions):
        # One gather of the rows of every chosen sample; its size from the lengths on the
        # host (reading the device's offsets would synchronise a GPU every batch).
        positions = np.asarray(positions, dtype=np.int64)
        total = int(self.base_lengths[positions].sum())
        positions = torch.as_tensor(positions, device=self.device)
        starts = self.offsets[:-1][positions]
        lengths = self.offsets[1:][positions] - starts
        offsets = offsets_from_lengths(lengths)
        rows = torch.repeat_interleave(starts - offsets[:-1], lengths, output_size=total)
        rows += torch.arange(total, device=self.device)
        return PackedBatch(self.values[rows], offsets)

    def _view(self, index):
        return PackedSource(self.values, self.offsets, index)

    def to(self, device):
        return PackedSource(self.values.to(device), self.offsets.to(device), self.index)


class LazySource(SeriesSource):
    """The samples ``index`` of a lazy sequence ``base``, read and validated on demand.

    ``base.read_batch(indices)``, ``base.lengths`` and ``base.checksums`` are used when
    present; errors name the sample by its index in ``base``.
    """

    def __init__(self, base, n_features, index=None, device="cpu", from_estimator=False):
        self.base = base
        self.n_features = n_features
        self.index = _all(len(base)) if index is None else np.asarray(index, np.int64)
        self.device = torch.device(device)
        self.from_estimator = from_estimator
        self._read_lengths = None

    @property
    def lengths_known(self):
        return getattr(self.base, "lengths", None) is not None or self._read_lengths is not None

    @property
    def base_lengths(self):
        """From the base's ``lengths`` when it has them, else read once in chunks."""
        if getattr(self.base, "lengths", None) is not None:
            return np.asarray(self.base.lengths, dtype=np.int64)
        if self._read_lengths is None:
            everything, lengths = self._view(_all(len(self.base))), []
            for _, batch in everything.chunks(1024):
                lengths.append(batch.lengths.cpu().numpy())
                del batch  # hold one chunk, not two, while the next is read
            self._read_lengths = np.concatenate(lengths)
        return self._read_lengths

    def checksums(self):
        """The base's recorded ``checksums`` (a store's, verified by every read of a
        series) when it has them; else read as for any source."""
        recorded = getattr(self.base, "checksums", None)
        if recorded is not None:
            return np.asarray(recorded, dtype=np.uint32)[self.index]
        return super().checksums()

    def _read_base(self, positions):
        values, lengths = read_series_batch(
            self.base, positions, n_features=self.n_features,
            from_estimator=self.from_estimator,
        )
        offsets = offsets_from_lengths(torch.from_numpy(lengths))
        return PackedBatch(torch.from_numpy(values).to(self.device), offsets.to(self.device))

    def _view(self, index):
        return LazySource(self.base, self.n_features, index, self.device, self.from_estimator)

    def to(self, device):
        return LazySource(self.base, self.n_features, self.index, device, self.from_estimator)


def as_source(X, *, n_features=None):
    """Validate ``X`` once and return it as a :class:`SeriesSource` (a source is returned
    as it is).

    Parameters
    ----------
    X : list of array-like of shape (T_i, F), ndarray, Sequence or SeriesSource
        Any form the estimators accept (see :mod:`sktdtw._source.validation`).
    n_features : int, default=None
        The fitted ``n_features_in_`` the series must have, if any.

    Raises
    ------
    ValueError
        For invalid series, naming the sample (for a lazy sequence: what its metadata
        shows now, each batch when it is read).
    """
    if isinstance(X, SeriesSource):
        if n_features is not None and X.n_features != n_features:
            raise InputError(f"X has {X.n_features} features, but the estimator is expecting "
                             f"{n_features} features as input ({FITTED_FEATURES})")
        return X
    if is_lazy(X):
        found = check_lazy_series(X, n_features=n_features)
        return LazySource(X, found, from_estimator=n_features is not None)
    return PackedSource.from_series(check_series_list(X, n_features=n_features))
