"""Sliding-window encoding of sequences into temporal sequences of embeddings (TSEs)."""

from __future__ import annotations

import pickle
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import HasMethods, Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, check_memory

from ._device import resolve_device
from ._errors import InputError
from ._persistence import VersionedPickleMixin
from ._source import check_series_list
from ._typing import VideosLike
from ._windows import (
    _BUILTIN_ENCODERS,
    _check_window_spec,
    _encode_all,
    _encode_windows,
    _frozen,
    _Sequences,
    batch_budget,
)

__all__ = ["TSESlidingEncoder"]


class TSESlidingEncoder(TransformerMixin, VersionedPickleMixin, BaseEstimator):
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
        Most windows per encoder call; fewer when they would take more than a quarter of
        ``working_memory`` as float32.
    working_memory : float, default=None
        Memory budget of the encoding in MiB; None takes scikit-learn's setting
        (``sklearn.set_config(working_memory=...)``, 1024 by default). One encoder call
        takes at most a quarter of it in float32 clips. From video files, the windows
        waiting for the encoder stay uint8 as decoded, at most one batch per decoding
        thread and two queued, so the windows in flight take about ``0.6 *
        working_memory`` whatever the resolution, besides the encoder's activations and
        each decoding thread's ring buffer of frames. A window that alone exceeds a
        quarter of it is an error naming the video and what to change.
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
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
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
        working_memory=None,
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
        self.working_memory = working_memory
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
                self.clip_length, self.batch_size, batch_budget(self.working_memory), device,
                self.n_jobs, self.verbose,
            )
        except pickle.PicklingError as exc:
            raise InputError(
                "memory caching hashes the encoder, which must be picklable (a module-level "
                f"function or a torch.nn.Module, not a lambda): {exc}"
            ) from exc

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: VideosLike, y: None = None) -> TSESlidingEncoder:
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
            sequence is read one video at a time, windows batched per video, holding
            only the frames of the windows in flight (PyAV: ``pip install av``).
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
        source = self._check_sequences(X, reset=True)[0] if videos is None else videos[0]
        budget = batch_budget(self.working_memory)
        first, first_indices, name = first_windows(
            source, getattr(self.encoder, "frame_size", None), windows, stride, self.padding,
            self.clip_length, budget)
        self.n_features_in_ = int(np.prod(first.shape[1:]))
        with _frozen(self.encoder, device):
            probe = _encode_windows(first, first_indices, name, self.encoder, 1, budget,
                                    device)
        self.n_features_out_ = probe.shape[1]
        return self

    def transform(self, X: VideosLike) -> list[np.ndarray]:
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
                batch_size=self.batch_size, device=device, working_memory=self.working_memory,
                n_workers=max(2, self.n_jobs or 1),
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
