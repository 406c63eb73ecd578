"""The file format of a TSE store, and the checks that open one.

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
import os
import tokenize
import zlib
from contextlib import contextmanager

import numpy as np

from .._atomic import remove_stale
from .._errors import InputError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load_npy", "read_npy_header"]

FORMAT_NAME = "sktdtw-tse-store"
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
_VALUES_DTYPE = np.dtype("<f4")
# meta.json's keys and their types (bool is not an int here).
_META_TYPES = {"n_samples": int, "n_rows": int, "n_features": int, "dtype": str,
               "values_nbytes": int, "has_labels": bool, "has_splits": bool}


def read_npy_header(file):
    """Shape, Fortran order, dtype and header size of the ``.npy`` file ``file``, read from
    its header alone.

    Raises
    ------
    OSError, ValueError or EOFError
        If the file cannot be read or has no valid header.
    """
    with open(file, "rb") as fp:
        return _read_header(fp)


def _read_header(fp):
    """:func:`read_npy_header` of a binary file open at its start."""
    version = np.lib.format.read_magic(fp)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    with _header_errors_as_value_errors():
        shape, fortran_order, dtype = read_header(fp)
    return shape, fortran_order, dtype, fp.tell()


def load_npy(file):
    """``np.load(file, allow_pickle=False)``, whose errors are OSError, ValueError or
    EOFError (as :func:`read_npy_header`'s)."""
    with _header_errors_as_value_errors():
        return np.load(file, allow_pickle=False)


@contextmanager
def _header_errors_as_value_errors():
    """NumPy retries a header it cannot parse as Python 2 text, with :mod:`tokenize` and
    :func:`ast.literal_eval`, so a damaged header may raise their TokenError or SyntaxError:
    made a ValueError that says the header is corrupted."""
    try:
        yield
    except (tokenize.TokenError, SyntaxError) as exc:
        raise ValueError(f"the .npy header is corrupted ({type(exc).__name__}: {exc})") from exc


def _offsets_of(lengths):
    """``offsets[i]``: the first row of series ``i``; ``offsets[-1]``: the number of rows."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _file_digest(data):
    """The SHA-256 that meta.json records of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- opening


class _Files:
    """The arrays of one opened store, shared by every view of it, and its ``identity``: a
    digest of meta.json, which holds the digests of every other file (those of
    checksums.npy covering the values), so another store at the same path has another."""

    def __init__(self, path, identity, values, offsets, checksums, ids, labels, splits):
        self.path = path
        self.identity = identity
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


class _Directory:
    """A store directory whose files are opened relative to one descriptor of it, so that
    they all come from the same directory even when a writer renames another one to its
    path meanwhile (``write_store(..., overwrite=True)``)."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def _opener(self, name, flags):
        return os.open(name, flags, dir_fd=self.fd)

    def open(self, name):
        """The file ``name`` open for binary reading, or None where it is missing."""
        try:
            return open(name, "rb", opener=self._opener)
        except FileNotFoundError:
            return None

    def replaced(self):
        """Whether ``path`` now holds another directory (or none)."""
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        opened = os.fstat(self.fd)
        return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)

    def close(self):
        os.close(self.fd)


def _read_meta(directory):
    path = directory.path
    fp = directory.open("meta.json")
    if fp is None:
        raise _corrupt(path, "meta.json", "is missing: this is not a TSE store written by "
                       "sktdtw.io.write_store, or it is incomplete")
    try:
        with fp:
            meta = json.loads(fp.read().decode("utf-8"))
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


def _open_values(directory, meta):
    """Memory-map values.npy after checking its header and size against meta.json."""
    fp = directory.open("values.npy")
    if fp is None:
        raise _corrupt(directory.path, "values.npy", "is missing")
    with fp:
        return _map_values(directory.path, fp, meta)


def _map_values(path, fp, meta):
    rows, n_features = meta["n_rows"], meta["n_features"]
    try:
        shape, fortran_order, dtype, header_end = _read_header(fp)
    except (OSError, ValueError, EOFError) as exc:
        raise _corrupt(path, "values.npy", f"has no valid .npy header: {exc}") from exc
    if dtype != _VALUES_DTYPE or fortran_order or shape != (rows, n_features):
        raise _corrupt(
            path, "values.npy",
            f"holds a {'Fortran-order ' if fortran_order else ''}{dtype} array of shape {shape}; "
            f"meta.json says little-endian float32 of shape ({rows}, {n_features})",
        )
    needed = rows * n_features * _VALUES_DTYPE.itemsize
    size = os.fstat(fp.fileno()).st_size - header_end
    if size < needed:
        raise _corrupt(
            path, "values.npy",
            f"is truncated: {rows} rows of {n_features} float32 need {needed} bytes after the "
            f"header, the file has {size}",
        )
    if size > needed or needed != meta["values_nbytes"]:
        raise _corrupt(path, "values.npy", f"has {size} bytes of values; meta.json says "
                       f"{meta['values_nbytes']} and its shape {needed}")
    values = np.memmap(fp, dtype=_VALUES_DTYPE, mode="r", offset=header_end,
                       shape=(rows, n_features))
    # The file's path, not its name relative to the directory's descriptor: joblib ships
    # views of a memmap to worker processes by reopening this file.
    values.filename = os.path.join(path, "values.npy")
    return values


def _load_small(directory, name, n_samples, digests):
    """Load a per-sample (n_samples,) array and make it read-only (views share it), after
    checking its digest (``digests``: meta.json's, None for format version 1)."""
    path = directory.path
    fp = directory.open(name)
    if fp is None:
        raise _corrupt(path, name, "is missing")
    try:
        with fp:
            data = fp.read()
    except OSError as exc:
        raise _corrupt(path, name, f"is unreadable: {exc}") from exc
    if digests is not None and digests.get(name) != _file_digest(data):
        raise _corrupt(path, name, "does not match its digest in meta.json: the file is "
                       "corrupted or was modified after the store was written")
    try:
        array = load_npy(io.BytesIO(data))
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


# Opens of a store that another writer keeps replacing before this one gives up.
_OPEN_ATTEMPTS = 20


def _open_files(path):
    path = os.path.abspath(os.fspath(path))
    if not os.path.isdir(path):
        remove_stale(path)  # puts back a store moved aside by a replacement that crashed
    for _ in range(_OPEN_ATTEMPTS):
        try:
            directory = _Directory(path)
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(f"no TSE store at {path}: no such directory") from None
        try:
            return _read_files(directory)
        except (InputError, OSError):
            # A writer's rename swapped in a new store while this one was read, and
            # removed the files of the old one: read the new one. Else the error is real.
            if not directory.replaced():
                raise
        finally:
            directory.close()
    raise InputError(f"TSE store {path} is being replaced by other writers faster than it "
                     f"can be opened ({_OPEN_ATTEMPTS} attempts); try again")


def _read_files(directory):
    """The arrays of the store in ``directory``, every one from that directory."""
    path = directory.path
    meta = _read_meta(directory)
    n = meta["n_samples"]
    digests = meta.get("digests")
    values = _open_values(directory, meta)
    # offsets has n + 1 entries: load it through the same checks with one more sample.
    offsets = _check_offsets(
        path, _load_small(directory, "offsets.npy", n + 1, digests), meta["n_rows"]
    )
    checksums = (_load_small(directory, "checksums.npy", n, digests) if digests is not None
                 else None)
    ids = _load_small(directory, "ids.npy", n, digests)
    labels = _load_small(directory, "labels.npy", n, digests) if meta["has_labels"] else None
    splits = _load_small(directory, "splits.npy", n, digests) if meta["has_splits"] else None
    identity = _file_digest(json.dumps(meta, sort_keys=True).encode())
    return _Files(path, identity, values, offsets, checksums, ids, labels, splits)
