"""Training checkpoints: atomic saves, a format version, and a digest verified on load.

A checkpoint file is ``torch.save`` of ``{"format", "format_version", "digests", "digest",
"state"}``. ``digests`` holds, for every top-level entry of the training state, a SHA-256 of
its contents (every tensor's dtype, shape and bytes, every other value's ``repr``), and
``digest`` one of them all with the entries' names (the pickle shares a string between the
two dicts, so a flipped byte in a name renames it in both). So a flipped byte anywhere in
the saved arrays, numbers or names is a clear error naming the file (and the entry where
one differs), never a silently different model. ``FORMAT_VERSION`` changes whenever a release
would resume an older checkpoint differently (another state layout, random numbers drawn
in another order); such checkpoints are refused rather than resumed inconsistently.
"""

import hashlib
import os
from numbers import Integral, Real

import numpy as np
import torch

from .._atomic import atomic_file
from .._errors import InputError

__all__ = ["Checkpoint", "fit_fingerprint", "read_checkpoint", "save_checkpoint"]

FORMAT_NAME = "sktdtw-checkpoint"
# 2: the named training state of sktdtw._training.trainer (1: tuples, feature-padded
# tensors).
FORMAT_VERSION = 2
# Parameters that change how a fit runs, not what it computes: left out of a checkpoint's
# fingerprint, so a run can be resumed with another device or verbosity.
_NOT_FINGERPRINTED = frozenset({"verbose", "checkpoint", "n_jobs", "device"})


def digest(*arrays):
    """A short hex digest of arrays' shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


def canonical(value):
    """A comparable stand-in (str, number, dict) for a parameter value in a fingerprint:
    arrays and random states by a digest of their contents, dicts entry by entry."""
    if value is None or isinstance(value, (bool, Integral, Real, str)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.random.RandomState):
        _, keys, pos, has_gauss, gauss = value.get_state()
        return f"RandomState:{digest(keys)}:{pos}:{has_gauss}:{gauss!r}"
    if isinstance(value, dict):  # e.g. a nested estimator's class and parameters
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, torch.device):
        return str(value)
    return f"array:{digest(np.asarray(value, dtype=np.float64))}"


def _update(h, value):
    """Feed a nested state (dicts, lists, tuples, tensors, plain values) into ``h``."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"tensor{t.dtype}{tuple(t.shape)}".encode())
        # Through uint8, as NumPy has no bfloat16.
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, dict):
        h.update(f"dict{len(value)}".encode())
        for key in sorted(value, key=repr):
            h.update(repr(key).encode())
            _update(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _update(h, item)
    else:
        h.update(repr(value).encode())


def _digests(state):
    """The SHA-256 of every entry of ``state``, and one of them all with their names."""
    digests = {}
    for key, value in state.items():
        h = hashlib.sha256()
        _update(h, value)
        digests[key] = h.hexdigest()
    h = hashlib.sha256()
    _update(h, digests)
    return digests, h.hexdigest()


def save_checkpoint(path, state):
    """``torch.save`` the training ``state`` (a dict) to ``path`` atomically, with its
    digests: a crash leaves the previous file whole."""
    digests, digest = _digests(state)
    with atomic_file(path) as fp:
        torch.save({
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "digests": digests,
            "digest": digest,
            "state": state,
        }, fp)


def read_checkpoint(path):
    """The verified training state saved at ``path``, or None if there is no file.

    Raises
    ------
    ValueError
        Naming the file: unreadable, not a checkpoint, another format version, or contents
        that do not match their digests (naming the entry).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    advice = "delete it or choose another checkpoint path to start over"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types (zip, pickle, runtime errors)
        raise InputError(
            f"checkpoint {path!r} exists but cannot be read ({exc}); it is corrupted or not "
            f"a DejaVidClassifier checkpoint: {advice}"
        ) from exc
    if not isinstance(saved, dict) or saved.get("format") != FORMAT_NAME:
        raise InputError(f"{path!r} is not a DejaVidClassifier checkpoint of this version of "
                         f"sktdtw (no format {FORMAT_NAME!r}): {advice}")
    if saved.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"checkpoint {path!r} has format version {saved.get('format_version')!r}; this "
            f"version of sktdtw resumes version {FORMAT_VERSION} only: {advice}"
        )
    state, expected = saved.get("state"), saved.get("digests")
    if not isinstance(state, dict) or not isinstance(expected, dict):
        raise InputError(f"checkpoint {path!r} lacks its state or digests: {advice}")
    actual, digest = _digests(state)
    if digest != saved.get("digest"):
        differ = sorted(k for k in actual.keys() | expected.keys()
                        if actual.get(k) != expected.get(k))
        where = (f"the entries {', '.join(map(repr, differ))} do not match the digests saved "
                 "with them" if differ else "its entries do not match the digest saved with "
                 "them")
        raise InputError(f"checkpoint {path!r} is corrupted: {where}: {advice}")
    return state


def fit_fingerprint(params, source, classes, y_index, warm_arrays=None):
    """What identifies a fit for its checkpoint: the estimator's ``params``
    (``get_params(deep=False)``) that change the result, the data (the SeriesSource
    ``source``: its size, and a digest of its series' CRC-32s, which cover their lengths
    and values), the labels (``classes[y_index]``) and, for a warm start, the arrays it
    starts from (``warm_arrays``)."""
    fingerprint = {k: canonical(v) for k, v in params.items() if k not in _NOT_FINGERPRINTED}
    fingerprint.update(
        n_samples=len(source), n_features=source.n_features, classes=repr(classes.tolist()),
        # The per-series CRC-32s (a store's own, else streamed): equal sizes with other
        # values (another fold, a rebuilt store) are another fit.
        data=digest(source.checksums()),
        labels=digest(y_index),
        warm_start_state=None if warm_arrays is None else digest(*warm_arrays),
    )
    return fingerprint


class Checkpoint:
    """The checkpoint file of one fit: resumed from if it belongs to the fit, written after
    every epoch (only rank 0 touches the file).

    Parameters
    ----------
    path : str or os.PathLike
    fingerprint : dict
        What identifies the fit (see :func:`fit_fingerprint`).
    strategy : SingleProcess or DataParallel
    """

    def __init__(self, path, fingerprint, strategy):
        self.path, self.fingerprint, self.strategy = path, fingerprint, strategy

    def load(self):
        """The saved state to resume from (None to start afresh), on every rank."""
        # Rank 0 reads the file (it need not be on a shared file system) and tells the
        # others: the state, or the error every rank raises.
        return self.strategy.on_main(lambda: load_checkpoint(self.path, self.fingerprint))

    def save(self, state):
        """Write ``state`` (a dict of tensors and plain values) with the fingerprint."""
        # Every rank waits for the file, and fails with rank 0 if it could not be written.
        self.strategy.on_main(
            lambda: save_checkpoint(self.path, {"fingerprint": self.fingerprint, **state})
        )


def load_checkpoint(path, fingerprint):
    """The state saved at ``path`` (None if there is no file), after checking it belongs
    to the fit whose ``fingerprint`` (a dict) is given; a ValueError otherwise."""
    state = read_checkpoint(path)
    if state is None:
        return None
    saved = state.get("fingerprint")
    if not isinstance(saved, dict):
        raise InputError(f"checkpoint {os.fspath(path)!r} has no fingerprint; delete it or "
                         "choose another checkpoint path to start over")
    keys = saved.keys() | fingerprint.keys()
    differ = sorted(k for k in keys if saved.get(k) != fingerprint.get(k))
    if differ:
        details = "; ".join(
            f"{k}: checkpoint {saved.get(k)!r}, this fit {fingerprint.get(k)!r}" for k in differ
        )
        raise InputError(
            f"checkpoint {os.fspath(path)!r} was written by a different fit ({details}); "
            "delete it or choose another checkpoint path to start over"
        )
    return state
