"""Build a TSE store from per-sample ``.npy`` / ``.pt`` files listed in a CSV manifest."""

from __future__ import annotations

import csv
import os
import re

import numpy as np
import torch
from tqdm.auto import tqdm

from .._errors import InputError
from .._typing import PathLike
from ._format import load_npy, read_npy_header
from ._store import TSEStore
from ._writer import write_store

__all__ = ["build_store", "read_manifest"]

_REQUIRED = ("id", "path")
# Integer labels that fit in int64, written canonically: "01" or "+1" stay distinct str
# labels rather than merging with "1".
_INTEGER = re.compile(r"0|-?[1-9]\d{0,17}")


class _Row:
    """One data row of the manifest, the line of the file it is on, and where its file is."""

    def __init__(self, number, line, id, file, label, split):
        self.number = number
        self.line = line
        self.id = id
        self.file = file
        self.label = label
        self.split = split

    def error(self, manifest, problem):
        return InputError(
            f"manifest {manifest}, line {self.line}, row {self.number} (id {self.id!r}): "
            f"{problem}"
        )


def resolve_manifest_path(path, root, allow_outside_root):
    """The file a manifest's ``path`` cell names, and why it is refused (None if it is not).

    A relative path starts from ``root``; ``~`` is the home directory. Unless
    ``allow_outside_root``, a file that is not inside ``root`` once both are resolved
    (``..``, an absolute path, ``~``, a symbolic link leading out) is refused: a manifest
    from elsewhere must not copy any file the user can read into a store.
    """
    file = os.path.join(root, os.path.expanduser(path))
    if allow_outside_root:
        return file, None
    real_root, real_file = os.path.realpath(root), os.path.realpath(file)
    if os.path.commonpath([real_root, real_file]) == real_root:
        return file, None
    return file, (f"path {path!r} is {real_file}, outside {real_root} (the manifest's folder "
                  "or the given root); pass --allow-outside-root (allow_outside_root=True) "
                  "to read files anywhere")


def _records(manifest, reader):
    """``(line, cells)`` of every record of a ``csv.reader`` (strict) with a non-blank
    cell, ``line`` being the line of the file it starts on.

    A record over several lines is refused: a cell never holds a line break, so it is a
    quote left open, which would swallow the rows after it.
    """
    records, line = [], 1
    while True:
        error = None
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:
            error = exc
        if reader.line_num != line:
            closed = "never closed" if error else f"closed only on line {reader.line_num}"
            raise InputError(
                f"manifest {manifest}, line {line}: a quote opened on this line is {closed}, "
                "swallowing the lines after it; a cell cannot hold a line break"
            ) from error
        if error is not None:
            raise InputError(
                f"manifest {manifest}, line {line} is not valid CSV ({error}): a quoted cell "
                "must be quoted whole and closed on its line"
            ) from error
        if any(cell.strip() for cell in cells):
            records.append((line, cells))
        line = reader.line_num + 1


def read_manifest(manifest, required, optional=()):
    """The data rows of the CSV manifest ``manifest`` (a path), parsed strictly.

    Parameters
    ----------
    manifest : str
        The file, named in the errors.
    required : tuple of str
        Columns the header must name; the first is the rows' unique id.
    optional : tuple of str, default=()
        Columns the header may name.

    Returns
    -------
    rows : list of (int, int, dict)
        ``(number, line, cells)`` per data row: its number (1-based, header and blank
        rows excluded), the line of the file it is on, and the stripped, non-empty text of
        each required column and each optional one the header names (other columns are
        ignored).

    Raises
    ------
    InputError
        For an unreadable file or invalid CSV (a quote left open swallows the rows after
        it), a header that lacks a required column or names one twice, no data rows, or
        the first row with more cells than the header has columns, an empty cell or an id
        of an earlier row; the message names the line (and the row and its id).
    """
    try:
        # utf-8-sig: spreadsheets often save CSV with a byte-order mark.
        with open(manifest, newline="", encoding="utf-8-sig") as fp:
            records = _records(manifest, csv.reader(fp, strict=True))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest {manifest} cannot be read: {exc}") from exc
    header_line, header = records.pop(0) if records else (1, [])
    header = [cell.strip() for cell in header]
    missing = [c for c in required if c not in header]
    if missing:
        usage = ",".join(required) + "".join(f"[,{c}]" for c in optional)
        raise InputError(
            f"manifest {manifest} lacks the required column(s) {', '.join(missing)}; its header "
            f"is {','.join(header) or '(empty)'} and must name {usage}"
        )
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        raise InputError(
            f"manifest {manifest}, line {header_line}: the header names the column(s) "
            f"{', '.join(repeated)} more than once, so which cell counts would be a guess"
        )
    if not records:
        raise InputError(f"manifest {manifest} has no data rows")
    columns = required + tuple(c for c in optional if c in header)
    key = required[0]
    rows, first_row = [], {}
    for number, (line, values) in enumerate(records, start=1):
        # A short row has empty cells for its missing columns.
        cells = {c: values[header.index(c)].strip() if header.index(c) < len(values) else ""
                 for c in columns}
        where = f"manifest {manifest}, line {line}, row {number} ({key} {cells[key]!r})"
        if len(values) > len(header):
            raise InputError(f"{where}: the row has {len(values)} cells but the header names "
                             f"{len(header)} columns")
        empty = [c for c in columns if not cells[c]]
        if empty:
            raise InputError(f"{where}: the {empty[0]} cell is empty")
        if cells[key] in first_row:
            raise InputError(
                f"{where}: duplicate {key}, already used in row {first_row[cells[key]]}"
            )
        first_row[cells[key]] = number
        rows.append((number, line, cells))
    return rows


def _read_manifest(manifest, root, allow_outside_root):
    rows = []
    for number, line, cells in read_manifest(manifest, _REQUIRED, ("label", "split")):
        row = _Row(number, line, cells["id"], cells["path"], cells.get("label"),
                   cells.get("split"))
        row.file, outside = resolve_manifest_path(row.file, root, allow_outside_root)
        if outside:
            raise row.error(manifest, outside)
        rows.append(row)
    return rows


def _shape_and_dtype(row, manifest):
    """Shape and dtype of a row's array, reading only the .npy header / a memory-mapped .pt."""
    if os.path.isdir(row.file):
        raise row.error(manifest, f"{row.file} is a directory, not a .npy or .pt file")
    if not os.path.isfile(row.file):
        problem = ("is not a regular file (a FIFO, socket or device)"
                   if os.path.exists(row.file) else "does not exist")
        raise row.error(manifest, f"file {row.file} {problem}")
    kind = os.path.splitext(row.file)[1].lower()
    if kind == ".pt":
        tensor = _load_pt(row, manifest, mmap=True)
        return tuple(tensor.shape), tensor.dtype
    if kind != ".npy":
        raise row.error(manifest, f"file {row.file} is neither a .npy nor a .pt file")
    try:
        shape, _, dtype, _ = read_npy_header(row.file)
    except (OSError, ValueError, EOFError) as exc:
        raise row.error(manifest, f"file {row.file} cannot be read: {exc}") from exc
    return shape, dtype


def _load_pt(row, manifest, mmap=False):
    try:
        tensor = torch.load(row.file, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch.load raises many types (pickle, zip, runtime errors)
        raise row.error(manifest, f"file {row.file} cannot be read by torch.load: {exc}") from exc
    if not isinstance(tensor, torch.Tensor):
        raise row.error(manifest, f"file {row.file} holds a {type(tensor).__name__}, not a tensor")
    return tensor


def _load(row, manifest):
    """The row's array, fully read, as float32."""
    if row.file.lower().endswith(".pt"):
        tensor = _load_pt(row, manifest)
        if tensor.is_complex():
            raise row.error(manifest, f"file {row.file} holds complex values")
        return tensor.detach().to(torch.float32).numpy()
    try:
        array = load_npy(row.file)
    except (OSError, ValueError, EOFError) as exc:
        raise row.error(manifest, f"file {row.file} cannot be read: {exc}") from exc
    return array.astype(np.float32, copy=False)


def _check_shape(row, manifest, shape, dtype, n_features):
    is_real = (not dtype.is_complex if isinstance(dtype, torch.dtype)
               else dtype.kind in "fiub")
    if not is_real:
        raise row.error(manifest, f"file {row.file} holds {dtype} values; expected real numbers")
    if len(shape) != 2:
        raise row.error(manifest, f"file {row.file} holds an array of shape {shape}; expected "
                        "(T, n_features)")
    if shape[0] == 0:
        raise row.error(manifest, f"file {row.file} holds an empty series (shape {shape})")
    if n_features is not None and shape[1] != n_features:
        raise row.error(manifest, f"file {row.file} has {shape[1]} features; the first row's "
                        f"file has {n_features}")


class _Series:
    """The rows' series, read one at a time while the store is written (sized, so that the
    progress bar knows the total)."""

    def __init__(self, rows, manifest, n_features):
        self.rows = rows
        self.manifest = manifest
        self.n_features = n_features

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        for row in self.rows:
            array = _load(row, self.manifest)
            _check_shape(row, self.manifest, array.shape, array.dtype, self.n_features)
            if not np.isfinite(array).all():
                t, f = np.argwhere(~np.isfinite(array))[0]
                raise row.error(self.manifest, f"file {row.file} has a non-finite value at "
                                f"time step {t}, feature {f}")
            yield array


def _labels(rows):
    """The rows' labels: int64 if every one is an integer written canonically, else str;
    None without a label column."""
    labels = [row.label for row in rows]
    if labels[0] is None:
        return None
    if all(_INTEGER.fullmatch(label) for label in labels):
        return np.array([int(label) for label in labels], dtype=np.int64)
    return labels


def build_store(
    manifest_csv: PathLike, out_path: PathLike, *, root: PathLike | None = None,
    allow_outside_root: bool = False, overwrite: bool = False, verbose: int = 0,
) -> TSEStore:
    """Build a TSE store from per-sample ``.npy`` / ``.pt`` files and a CSV manifest.

    The manifest has a header naming the columns ``id`` and ``path``, optionally ``label``
    (without it the store is unlabelled, e.g. data to predict) and ``split``, and one row
    per sample. Each ``path`` is a ``.npy`` file holding one
    ``(T, n_features)`` array, or a ``.pt`` file holding one tensor (read with
    ``torch.load(..., weights_only=True)``). A first pass checks every row, reading only the
    files' headers; a second copies the series into the store one at a time. Labels that
    are all integers written canonically (``0``, ``17``, ``-1``) are stored as int64, any
    others as str (so ``1``, ``01`` and ``+1`` stay three distinct labels).

    Parameters
    ----------
    manifest_csv : str or path-like
        The manifest.
    out_path : str or path-like
        Directory of the new store. The store is written to a temporary sibling and
        renamed when complete, so an interrupted build leaves nothing there.
    root : str or path-like, default=None
        Directory that relative paths of the manifest start from; None means the
        manifest's own directory.
    allow_outside_root : bool, default=False
        Read files outside ``root`` too. By default a row whose path leads out of it
        (``..``, an absolute path, ``~``, a symbolic link; resolved first) is an error, so
        that a manifest cannot copy any file the user can read into the store.
    overwrite : bool, default=False
        Replace an existing store at ``out_path`` (never a directory that is not a store).
    verbose : int, default=0
        ``>= 1`` shows progress bars.

    Returns
    -------
    store : TSEStore
        The new store, opened.

    Raises
    ------
    ValueError
        If the manifest lacks a required column or has no rows, or for the first row
        whose id repeats an earlier one, whose cell is empty, that has more cells than the
        header has columns, whose path leads outside ``root`` (without
        ``allow_outside_root``), whose file is missing, unreadable, not 2-D, empty, has a
        feature count differing from the first row's or non-finite values; the message names
        the line of the file, the row (1-based, header excluded) and its id. A header that
        names a column twice, and a quote left open (a cell over several lines) or other
        invalid CSV, are errors naming the line.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sktdtw.io import build_store
    >>> folder = tempfile.mkdtemp()
    >>> for name, t in (("a", 5), ("b", 3)):
    ...     np.save(os.path.join(folder, name + ".npy"), np.ones((t, 4), dtype=np.float32))
    >>> with open(os.path.join(folder, "manifest.csv"), "w") as fp:
    ...     _ = fp.write("id,path,label,split\\na,a.npy,run,train\\nb,b.npy,jump,test\\n")
    >>> store = build_store(os.path.join(folder, "manifest.csv"), os.path.join(folder, "store"))
    >>> store.lengths.tolist(), store.labels.tolist(), store.split("test").ids.tolist()
    ([5, 3], ['run', 'jump'], ['b'])
    """
    manifest = os.path.abspath(os.fspath(manifest_csv))
    if os.path.isdir(manifest):
        raise InputError(f"manifest {manifest} is a directory, not a CSV file")
    root = os.path.dirname(manifest) if root is None else os.fspath(root)
    rows = _read_manifest(manifest, root, allow_outside_root)

    n_features = None
    for row in tqdm(rows, disable=not verbose, desc="checking files", unit="file"):
        shape, dtype = _shape_and_dtype(row, manifest)
        _check_shape(row, manifest, shape, dtype, n_features)
        n_features = shape[1] if n_features is None else n_features


    return write_store(
        out_path, _Series(rows, manifest, n_features), labels=_labels(rows),
        ids=[row.id for row in rows],
        splits=None if rows[0].split is None else [row.split for row in rows],
        overwrite=overwrite, verbose=verbose,
    )
