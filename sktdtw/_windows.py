"""Windows of a sequence and their encoding: the frames of every window, the built-in
encoders, and the encoding of sequences window batch by window batch."""

import math
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ._errors import InputError

# Float stride arithmetic such as (1 - 0.2) / 0.025 lands just below 32; this slack keeps
# the window count at its exact value.
_COUNT_SLACK = 1e-9


def _builtin_mean(windows):
    return windows.reshape(len(windows), windows.shape[1], -1).mean(axis=1)


def _builtin_meanstd(windows):
    flat = windows.reshape(len(windows), windows.shape[1], -1)
    return np.concatenate([flat.mean(axis=1), flat.std(axis=1)], axis=1)


def _builtin_flatten(windows):
    return windows.reshape(len(windows), -1)


_BUILTIN_ENCODERS = {
    "mean": _builtin_mean,
    "meanstd": _builtin_meanstd,
    "flatten": _builtin_flatten,
}


def _round_half_up(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _check_window_spec(value, name):
    """An int (frames, >= 1) or a float fraction in (0, 1]; bools are neither."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be an int >= 1 or a float in (0, 1], got {value!r}")
    if isinstance(value, Integral):
        if value < 1:
            raise InputError(f"{name} must be >= 1 frame when an int, got {value}")
        return int(value)
    if isinstance(value, (float, np.floating)) and 0.0 < value <= 1.0:
        return float(value)
    raise InputError(
        f"{name} must be an int >= 1 (frames) or a float in (0, 1] (fraction of the "
        f"sequence length), got {value!r}"
    )


def _window_width(length, window):
    """Frames per window; a window longer than the sequence is clamped to its length."""
    if isinstance(window, int):
        return min(window, length)
    return int(min(max(_round_half_up(window * length), 1), length))


def _valid_starts(length, window, stride):
    """First frames of the windows lying fully inside a sequence of ``length`` frames."""
    width = _window_width(length, window)
    if isinstance(stride, int):
        return np.arange(0, length - width + 1, stride), width
    # A fractional stride spreads the windows evenly from the first frame to the last valid
    # start. The count uses the nominal window fraction, not the rounded width, so that
    # window=0.2, stride=0.025 gives 1 + 0.8 / 0.025 = 33 windows whatever the length.
    fraction = window if isinstance(window, float) else width / length
    nominal = int(np.floor((1.0 - fraction) / stride + _COUNT_SLACK)) + 1
    count = min(nominal, length - width + 1)
    return _round_half_up(np.linspace(0.0, length - width, count)), width


def _same_positions(length, stride):
    """Centre frames of ``padding="same"`` windows: every ``stride`` frames from frame 0."""
    if isinstance(stride, int):
        return np.arange(0, length, stride)
    count = min(int(np.ceil(1.0 / stride - _COUNT_SLACK)), length)
    return _round_half_up(np.arange(count) * (length / count))


def _window_frame_indices(length, windows, stride, padding, clip_length=None):
    """Frame indices of every window of a sequence, one array per window width.

    Parameters
    ----------
    length : int
        Number of frames of the sequence (>= 1).
    windows : list of int or float
        Validated window widths (see :class:`~sktdtw.TSESlidingEncoder`).
    stride : int or float
        Validated stride.
    padding : {"valid", "same"}
    clip_length : int, default=None
        If given, every window is resampled to this many frames.

    Returns
    -------
    indices : list of ndarray of shape (n_windows, frames_per_window)
        ``indices[j][p]`` are the frames of the ``p``-th window of width ``windows[j]``;
        every entry has the same ``n_windows``.
    """
    if padding == "valid":
        per_width = [_valid_starts(length, windows[0], stride)]
    else:
        positions = _same_positions(length, stride)
        per_width = []
        for window in windows:
            width = _window_width(length, window)
            # Centred on each position (the later middle frame for even widths), shifted
            # back inside the sequence at the ends.
            per_width.append((np.clip(positions - width // 2, 0, length - width), width))
    indices = []
    for starts, width in per_width:
        if clip_length is None:
            offsets = np.arange(width)
        else:
            # Uniform sampling: the centre frame of each of clip_length equal bins.
            centres = (np.arange(clip_length) + 0.5) * width / clip_length
            offsets = np.floor(centres).astype(np.int64)
        indices.append(starts[:, None] + offsets[None, :])
    return indices


def batch_budget(working_memory):
    """Bytes of float32 clips one encoder call may take: a quarter of ``working_memory``
    (MiB; None takes scikit-learn's ``working_memory`` setting), leaving the rest to the
    uint8 windows waiting for the encoder and to its activations."""
    if working_memory is None:
        working_memory = sklearn.get_config()["working_memory"]
    return int(working_memory * 2**20) // 4


def windows_per_batch(clip_shape, batch_size, budget, name):
    """Windows of shape ``clip_shape`` per encoder call: at most ``batch_size``, and as many
    as fit in ``budget`` bytes as float32; one window must fit, or the error names
    ``name`` (the sample or video) and what to change."""
    clip_bytes = 4 * math.prod(clip_shape)
    if clip_bytes > budget:
        raise InputError(
            f"{name}: one window of {clip_shape[0]} frames of shape {tuple(clip_shape[1:])} "
            f"takes {clip_bytes / 2**20:.3g} MiB as float32, more than a batch may "
            f"({budget / 2**20:.3g} MiB, a quarter of working_memory); resize the frames "
            "(VideoFile(size=...) or the encoder's frame_size), set clip_length, or raise "
            "TSESlidingEncoder(working_memory=...) (MiB)"
        )
    return max(1, min(batch_size, budget // clip_bytes))


def _run_encoder(encoder, windows, device):
    """Apply the encoder to one batch of windows and return a float32 array."""
    if isinstance(encoder, torch.nn.Module):
        out = encoder(torch.from_numpy(windows).to(device))
    elif isinstance(encoder, str):
        out = _BUILTIN_ENCODERS[encoder](windows)
    else:
        out = encoder(windows)
    if isinstance(out, torch.Tensor):
        out = out.detach().cpu().numpy()
    return np.asarray(out, dtype=np.float32)


@contextmanager
def _frozen(encoder, device):
    """Run a torch.nn.Module encoder on ``device`` in eval mode, restoring its flag after."""
    if not isinstance(encoder, torch.nn.Module):
        yield
        return
    was_training = encoder.training
    encoder.to(device).eval()
    try:
        yield
    finally:
        encoder.train(was_training)


def _encode_windows(sequence, frame_indices, name, encoder, batch_size, budget, device):
    """The TSE of one sequence (``name`` in errors, e.g. "sample 3"): its windows
    (``frame_indices``, one array per width) encoded in batches of at most ``batch_size``
    windows and ``budget`` bytes, and concatenated per position."""
    embeddings = []
    with torch.inference_mode():
        for indices in frame_indices:
            parts = []
            per_batch = windows_per_batch(indices.shape[1:] + sequence.shape[1:], batch_size,
                                          budget, name)
            for lo in range(0, len(indices), per_batch):
                batch = sequence[indices[lo:lo + per_batch]]
                out = _run_encoder(encoder, batch, device)
                if out.ndim != 2 or out.shape[0] != len(batch):
                    raise InputError(
                        f"{name}: the encoder returned shape {out.shape} for a batch of "
                        f"{len(batch)} windows; expected (n_windows, n_features)"
                    )
                parts.append(out)
            embeddings.append(np.concatenate(parts, axis=0))
    tse = np.ascontiguousarray(np.concatenate(embeddings, axis=1), dtype=np.float32)
    if not np.isfinite(tse).all():
        raise InputError(f"{name}: the encoder produced non-finite values (NaN or inf)")
    return tse


class _Sequences:
    """The sequences given to the cached ``_encode_all``: hashed by content (joblib pickles
    them) but with a short repr, which joblib.Memory writes to its metadata; the repr of a
    list of videos took long enough for "Persisting input arguments took ..." warnings."""

    def __init__(self, items):
        self.items = items

    def __repr__(self):
        return f"<{len(self.items)} sequences>"


def _encode_all(sequences, encoder, windows, stride, padding, clip_length, batch_size,
                budget, device, n_jobs, verbose):
    """Encode every sequence (a ``_Sequences``); module-level so that joblib.Memory can
    cache it."""
    sequences = sequences.items
    with _frozen(encoder, device):
        jobs = (
            delayed(_encode_windows)(
                seq,
                _window_frame_indices(len(seq), windows, stride, padding, clip_length),
                f"sample {i}", encoder, batch_size, budget, device,
            )
            for i, seq in enumerate(sequences)
        )
        results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(jobs)
        return list(
            tqdm(results, total=len(sequences), desc="encoding", unit="seq", disable=verbose < 1)
        )
