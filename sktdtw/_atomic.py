"""Atomic writes: build a temporary sibling, then rename it into place.

Every file and directory sktdtw writes (stores, checkpoints, models, CSVs) goes through
here, so that:

* a reader never sees a half-written file: the rename is atomic;
* a crash (even ``kill -9``) leaves the previous version whole, and the debris it leaves,
  a hidden sibling ``.<name>.tmp-<host>-<pid>-<random>``, is removed by the next write to
  the same path once its writer is known to be dead (same host, pid gone);
* modes honour the umask, as ``open`` does (``mkstemp``/``mkdtemp`` would give 0600/0700);
* replacing a directory either completes or leaves the previous one at its path: on Linux
  the two directories are swapped by one ``renameat2(RENAME_EXCHANGE)``; elsewhere the old
  one is moved aside first and put back by the next write if a crash came in between.
"""

import ctypes
import ctypes.util
import errno
import os
import secrets
import shutil
import socket
from contextlib import contextmanager

__all__ = ["atomic_directory", "atomic_file", "check_writable", "remove_stale"]

_HOST = socket.gethostname().replace("-", "_")
_TAG = ".tmp-"


def _sibling(path, kind):
    """A fresh name next to ``path`` that marks its writer (host and pid)."""
    directory, name = os.path.split(path)
    return os.path.join(
        directory, f".{name}{_TAG}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.{kind}"
    )


def _writer_is_dead(debris):
    """Whether the writer that named ``debris`` is gone (unknown hosts count as alive)."""
    try:
        host, pid = debris.rsplit(_TAG, 1)[1].split("-")[:2]
        pid = int(pid)
    except ValueError:
        return False
    if host != _HOST:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def remove_stale(path):
    """Remove what crashed writes to ``path`` left next to it; a directory moved aside by
    an interrupted replacement is put back first if nothing took its place.

    Parameters
    ----------
    path : str
        The file or directory that was being written.
    """
    directory, name = os.path.split(os.path.abspath(path))
    try:
        entries = os.listdir(directory or ".")
    except FileNotFoundError:
        return
    prefix = f".{name}{_TAG}"
    for entry in entries:
        if not entry.startswith(prefix) or not _writer_is_dead(entry):
            continue
        debris = os.path.join(directory, entry)
        if entry.endswith(".old") and not os.path.lexists(path):
            os.rename(debris, path)  # the previous version, moved aside before a crash
        elif os.path.isdir(debris) and not os.path.islink(debris):
            shutil.rmtree(debris, ignore_errors=True)
        else:
            try:
                os.unlink(debris)
            except FileNotFoundError:
                pass


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# Errors of writing data: they carry no file name of their own.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


@contextmanager
def _errors_naming(path):
    """An OSError while ``path`` is written names ``path``: not its temporary sibling, nor
    nothing (a full disk, a file-size limit)."""
    try:
        yield
    except OSError as exc:
        unnamed = exc.filename is None and exc.errno in _WRITE_ERRNOS
        if unnamed or _TAG in os.path.basename(os.fspath(exc.filename or "")):
            raise OSError(exc.errno, exc.strerror, path) from exc
        raise


def _create_sibling(path):
    """Create the temporary sibling file of ``path``; returns its name and descriptor."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    remove_stale(path)
    tmp = _sibling(path, "tmp")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies


def check_writable(path):
    """Raise now, naming ``path``, where :func:`atomic_file` could not write it later: a
    directory at ``path``, a folder that cannot be created or written.

    Parameters
    ----------
    path : str or path-like
        The file a long computation will write; its directory is created if missing.

    Raises
    ------
    OSError
        ``IsADirectoryError``, ``PermissionError``... naming ``path``.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a file", path)
    with _errors_naming(path):
        tmp, fd = _create_sibling(path)
        os.close(fd)
        os.unlink(tmp)


@contextmanager
def atomic_file(path, mode="wb"):
    """Open a temporary sibling of ``path`` for writing; rename it to ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        The file to (re)place; its directory is created if missing.
    mode : {"wb", "w"}, default="wb"
        Binary, or text (UTF-8, no newline translation).

    Yields
    ------
    file : file object
        Flushed and fsynced before the rename; on an exception the temporary file is
        removed and ``path`` is untouched. An OSError of the write (a full disk...) or of
        the temporary file names ``path``.
    """
    path = os.path.abspath(os.fspath(path))
    with _errors_naming(path):
        tmp, fd = _create_sibling(path)
        try:
            text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
            with os.fdopen(fd, mode, **text) as fp:
                yield fp
                fp.flush()
                os.fsync(fp.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    _fsync_directory(os.path.dirname(path))


def _load_renameat2():
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    function = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_uint]
    return function


_renameat2 = _load_renameat2()
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a, b):
    """Swap two paths atomically; False where the system cannot."""
    if _renameat2 is None:
        return False
    # Nonzero, e.g. on a file system without RENAME_EXCHANGE: the caller falls back.
    return _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _replace_directory(tmp, path):
    """Put the finished directory ``tmp`` at the existing directory ``path``."""
    if _exchange(tmp, path):
        shutil.rmtree(tmp, ignore_errors=True)  # now the previous version
        return
    # Two renames; a crash in between leaves the old one aside, put back by remove_stale.
    aside = _sibling(path, "old")
    os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def atomic_directory(path, replace=None):
    """Create a temporary sibling directory of ``path``; move it to ``path`` on success.

    Parameters
    ----------
    path : str or path-like
        The directory to create or replace; its parent is created if missing.
    replace : callable, default=None
        Called with ``path`` when it exists at the end; it raises to refuse replacing it.
        None refuses always (FileExistsError).

    Yields
    ------
    directory : str
        The temporary directory to fill (mode 0777 less the umask). On an exception it is
        removed and ``path`` is untouched. An OSError of a write (a full disk...) or of the
        temporary directory names ``path``.
    """
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    with _errors_naming(path):
        os.makedirs(parent, exist_ok=True)
        remove_stale(path)
        tmp = _sibling(path, "tmp")
        os.mkdir(tmp, 0o777)
        try:
            yield tmp
            _fsync_directory(tmp)
            if not os.path.lexists(path):
                os.rename(tmp, path)
            else:
                if replace is None:
                    raise FileExistsError(f"{path} already exists")
                replace(path)
                _replace_directory(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    _fsync_directory(parent)
