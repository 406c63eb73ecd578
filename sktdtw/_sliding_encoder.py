"""Sliding-window encoding of sequences into temporal sequences of embeddings (TSEs)."""

import pickle
from contextlib import contextmanager
from numbers import Integral

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory
from tqdm.auto import tqdm

from ._device import resolve_device
from ._errors import InputError
from ._series import check_series_list

__all__ = ["TSESlidingEncoder"]

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
        Validated window widths (see :class:`TSESlidingEncoder`).
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


def _encode_windows(sequence, frame_indices, index, encoder, batch_size, device):
    """The TSE of one sequence: its windows (``frame_indices``, one array per width)
    encoded in batches and concatenated per position."""
    embeddings = []
    with torch.inference_mode():
        for indices in frame_indices:
            parts = []
            for lo in range(0, len(indices), batch_size):
                batch = sequence[indices[lo:lo + batch_size]]
                out = _run_encoder(encoder, batch, device)
                if out.ndim != 2 or out.shape[0] != len(batch):
                    raise InputError(
                        f"sample {index}: the encoder returned shape {out.shape} for a batch of "
                        f"{len(batch)} windows; expected (n_windows, n_features)"
                    )
                parts.append(out)
            embeddings.append(np.concatenate(parts, axis=0))
    tse = np.ascontiguousarray(np.concatenate(embeddings, axis=1), dtype=np.float32)
    if not np.isfinite(tse).all():
        raise InputError(f"sample {index}: the encoder produced non-finite values (NaN or inf)")
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
                device, n_jobs, verbose):
    """Encode every sequence (a ``_Sequences``); module-level so that joblib.Memory can
    cache it."""
    sequences = sequences.items
    with _frozen(encoder, device):
        jobs = (
            delayed(_encode_windows)(
                seq,
                _window_frame_indices(len(seq), windows, stride, padding, clip_length),
                i, encoder, batch_size, device,
            )
            for i, seq in enumerate(sequences)
        )
        results = Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(jobs)
        return list(
            tqdm(results, total=len(sequences), desc="encoding", unit="seq", disable=verbose < 1)
        )


class TSESlidingEncoder(TransformerMixin, BaseEstimator):
    """Encode sequences into temporal sequences of embeddings with a sliding window.

    A frozen encoder is applied to windows of frames slid along each sequence (a video
    ``(T, H, W)`` or ``(T, H, W, C)``, or a series ``(T, d)``); the window embeddings in
    temporal order form the sequence's TSE, the input of
    :class:`~sktdtw.DejaVidClassifier`.

    Parameters
    ----------
    encoder : {"mean", "meanstd", "flatten"}, callable or torch.nn.Module, default="mean"
        Maps a batch of windows of shape ``(n, frames, *frame_shape)`` (float32) to an
        array of shape ``(n, n_features)``. A ``torch.nn.Module`` receives a tensor on
        ``device`` and runs frozen: in eval mode (its training flag is restored
        afterwards) under ``torch.inference_mode``. Any other callable receives a NumPy
        array and may return an array or a tensor. Built-ins: ``"mean"`` and
        ``"meanstd"`` (the mean, and the mean then the standard deviation, of every value
        of a frame over the window) and ``"flatten"`` (all values of the window).
    window : int, float or list of those, default=0.2
        Window width: an int is a number of frames, a float in (0, 1] a fraction of each
        sequence's length (rounded half up, at least one frame). A window longer than a
        sequence is clamped to the whole sequence, so a short sequence yields one window
        (``padding="valid"``) instead of none. A list gives several widths encoded in
        parallel whose embeddings are concatenated per position, which needs
        ``padding="same"``.
    stride : int or float, default=0.025
        Step between windows: an int is a number of frames; a float in (0, 1] is a
        fraction of the length, and then the windows are spread evenly (starts rounded to
        frames). With ``padding="valid"`` and a float stride there are
        ``1 + floor((1 - window_fraction) / stride)`` windows (``window_fraction`` is the
        float window, or width / length), capped at the number of distinct windows: the
        paper's ``window=0.2, stride=0.025`` gives exactly 33 windows for every length
        ``T`` with ``T - round(0.2 T) >= 32``, and all distinct windows for shorter ones.
    padding : {"valid", "same"}, default="valid"
        ``"valid"``: windows lie fully inside the sequence, the first starting at frame 0.
        ``"same"``: one window per position (frames ``0, stride, 2 stride, ...``, or
        ``ceil(1 / stride)`` evenly spread positions for a float stride), centred on it
        and shifted back inside the sequence at the ends, so every width yields the same
        positions.
    clip_length : int, default=None
        If set, every window is resampled to this many frames (the centre frame of each
        of ``clip_length`` equal bins; frames repeat when the window is shorter), as video
        encoders expect fixed-length clips (16 for VideoMAE).
    batch_size : int, default=64
        Windows per encoder call.
    device : str or torch.device, default="auto"
        Where a ``torch.nn.Module`` encoder runs; it is moved there in place
        (``Module.to``). ``"auto"`` is CUDA when available, else the CPU.
    n_jobs : int, default=None
        Sequences encoded in parallel threads (``None`` means 1, ``-1`` all cores).
    memory : str, joblib.Memory or None, default=None
        Caches the encoded TSEs (the expensive step), keyed on the input, the encoder and
        the window settings. With caching the encoder must be picklable (no lambda).
    verbose : int, default=0
        ``>= 1`` shows a progress bar over sequences.

    Attributes
    ----------
    n_features_in_ : int
        Values per time step seen in ``fit`` (``H * W * C`` for videos).
    n_features_out_ : int
        Features per embedding.

    See Also
    --------
    sktdtw.DejaVidClassifier : Classifies the TSEs.
    sktdtw.encoders.RandomConv3dEncoder : A small frozen video encoder.

    Examples
    --------
    >>> import numpy as np
    >>> from sktdtw import TSESlidingEncoder
    >>> X = [np.arange(200.0).reshape(100, 2), np.ones((60, 2))]
    >>> tses = TSESlidingEncoder(encoder="meanstd").fit_transform(X)
    >>> [tse.shape for tse in tses]
    [(33, 4), (33, 4)]
    >>> TSESlidingEncoder(window=4, stride=2).fit_transform(X)[0][:2]
    array([[3., 4.],
           [7., 8.]], dtype=float32)
    """

    _parameter_constraints = {
        "encoder": [StrOptions(set(_BUILTIN_ENCODERS)), callable],
        "window": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
            list,
        ],
        "stride": [
            Interval(Integral, 1, None, closed="left"),
            Interval(RealNotInt, 0, 1, closed="right"),
        ],
        "padding": [StrOptions({"valid", "same"})],
        "clip_length": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "memory": [None, str, HasMethods(["cache"])],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        encoder="mean",
        *,
        window=0.2,
        stride=0.025,
        padding="valid",
        clip_length=None,
        batch_size=64,
        device="auto",
        n_jobs=None,
        memory=None,
        verbose=0,
    ):
        self.encoder = encoder
        self.window = window
        self.stride = stride
        self.padding = padding
        self.clip_length = clip_length
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.memory = memory
        self.verbose = verbose

    def _window_settings(self):
        """Validated ``(windows, stride, device)``."""
        if isinstance(self.window, list):
            if not self.window:
                raise InputError("window is an empty list; give at least one width")
            windows = [_check_window_spec(w, f"window[{i}]") for i, w in enumerate(self.window)]
        else:
            windows = [_check_window_spec(self.window, "window")]
        if len(windows) > 1 and self.padding != "same":
            raise InputError(
                f"{len(windows)} window widths need padding='same' so that every width "
                f"yields the same positions; got padding={self.padding!r}"
            )
        stride = _check_window_spec(self.stride, "stride")
        return windows, stride, resolve_device(self.device)

    def _check_sequences(self, X, reset):
        """Sequences as float32 arrays ``(T_i, *frame_shape)``; errors name the sample."""
        if isinstance(X, (np.ndarray, torch.Tensor)) and X.ndim >= 4:
            X = list(X)
        frame_shapes = None
        if isinstance(X, (list, tuple)) and len(X):  # check_series_list rejects empty X
            X = [x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x for x in X]
            frame_shapes = [np.shape(x)[1:] for x in X]
            for i, shape in enumerate(frame_shapes):
                if shape != frame_shapes[0]:
                    raise InputError(
                        f"sample {i} of X has frames of shape {shape} but sample 0 has "
                        f"{frame_shapes[0]}; all sequences need the same frame shape"
                    )
            # Frames are flattened to one row per time step for the shared validation.
            if len(frame_shapes[0]) > 1:
                frame_size = int(np.prod(frame_shapes[0]))
                X = [np.reshape(x, (len(x), frame_size)) for x in X]
        series = check_series_list(
            X, n_features=None if reset else self.n_features_in_, dtype=np.float32
        )
        if reset:
            self.n_features_in_ = series[0].shape[1]
        if frame_shapes is not None and len(frame_shapes[0]) > 1:
            series = [s.reshape((len(s),) + frame_shapes[0]) for s in series]
        return series

    def _encode(self, sequences):
        windows, stride, device = self._window_settings()
        encode = check_memory(self.memory).cache(_encode_all, ignore=["n_jobs", "verbose"])
        try:
            return encode(
                _Sequences(sequences), self.encoder, windows, stride, self.padding,
                self.clip_length, self.batch_size, device, self.n_jobs, self.verbose,
            )
        except pickle.PicklingError as exc:
            raise InputError(
                "memory caching hashes the encoder, which must be picklable (a module-level "
                f"function or a torch.nn.Module, not a lambda): {exc}"
            ) from exc

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and record the input and output sizes.

        Only the first window of the first sequence is encoded, to learn
        ``n_features_out_``; nothing else is learned.

        Parameters
        ----------
        X : list of array-like of shape (T_i, ...), ndarray, tensor or lazy sequence
            Sequences with time on the first axis: videos ``(T_i, H, W[, C])`` or series
            ``(T_i, d)`` / ``(T_i,)``. A 2-D array ``(n, T)`` is read as univariate
            series, a 3-D array as ``(n, T, d)``, a 4-D or 5-D array as videos; tensors
            like arrays. A list of video files (paths or :class:`sktdtw.video.VideoFile`,
            RGB frames resized to the encoder's ``frame_size`` if it has one) or a lazy
            sequence is read one video at a time, windows batched across videos, holding
            only the frames of the windows in flight (``pip install 'sktdtw[video]'``).
        y : None
            Ignored.

        Returns
        -------
        self : TSESlidingEncoder
            The fitted encoder.
        """
        from .video._inputs import first_windows, streamed

        windows, stride, device = self._window_settings()
        videos = streamed(X)
        first, first_indices = first_windows(
            self._check_sequences(X, reset=True)[0] if videos is None else videos[0],
            getattr(self.encoder, "frame_size", None), windows, stride, self.padding,
            self.clip_length)
        self.n_features_in_ = int(np.prod(first.shape[1:]))
        with _frozen(self.encoder, device):
            probe = _encode_windows(first, first_indices, 0, self.encoder, 1, device)
        self.n_features_out_ = probe.shape[1]
        return self

    def transform(self, X):
        """Encode every sequence into its TSE.

        Parameters
        ----------
        X : list of array-like of shape (T_i, ...) or ndarray
            Sequences, as in :meth:`fit`.

        Returns
        -------
        tses : list of ndarray of shape (n_windows_i, n_features_out_), float32
            One TSE per sequence.
        """
        from .video._inputs import encode_streamed, streamed

        check_is_fitted(self)
        videos = streamed(X)
        if videos is None:
            tses = self._encode(self._check_sequences(X, reset=False))
        else:
            windows, stride, device = self._window_settings()
            tses = encode_streamed(
                videos, self.encoder, (windows, stride, self.padding, self.clip_length),
                batch_size=self.batch_size, device=device, n_workers=max(2, self.n_jobs or 1),
                verbose=self.verbose)
        for i, tse in enumerate(tses):
            if tse.shape[1] != self.n_features_out_:
                raise InputError(
                    f"sample {i}: the encoder returned {tse.shape[1]} features per window but "
                    f"{self.n_features_out_} in fit; windows of varying width (a float window, "
                    "or a sequence shorter than the window) need clip_length for this encoder"
                )
        return tses

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
