"""Video inputs of :class:`~sktdtw.TSESlidingEncoder` read one at a time: files, and the
videos of a lazy sequence."""

import os
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .._errors import InputError
from .._source import is_lazy
from .._windows import _window_frame_indices, windows_per_batch
from ._decode import VideoFile, VideoReader
from ._pipeline import iter_encoded

__all__ = ["encode_streamed", "first_windows", "streamed"]


def _is_video_file(x):
    return isinstance(x, (str, os.PathLike, VideoFile))


class _StreamedVideos(Sequence):
    """Videos read one at a time: files (decoded by :class:`VideoReader`) or the float32
    arrays of a lazy sequence, checked as they are read."""

    def __init__(self, videos):
        self.videos = videos

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, i):
        video = self.videos[i]
        if _is_video_file(video):
            return video
        if isinstance(video, torch.Tensor):
            video = video.detach().cpu().numpy()
        video = np.asarray(video, dtype=np.float32)
        if video.ndim < 2 or len(video) == 0 or not np.isfinite(video).all():
            raise InputError(f"sample {i}: expected a non-empty (T, ...) array of finite "
                             f"values, got shape {video.shape}")
        return video


def streamed(X):
    """X as a sequence of videos read one at a time when it holds video files or is lazy,
    else None (in-memory sequences)."""
    if isinstance(X, (str, os.PathLike)):
        raise InputError("X is a single path; pass a list of video files")
    if isinstance(X, (list, tuple)) and X and all(_is_video_file(x) for x in X):
        return _StreamedVideos(X)
    if is_lazy(X):
        return _StreamedVideos(X)
    return None


def first_windows(video, frame_size, windows, stride, padding, clip_length, budget):
    """The frames a video's first windows need (a file is decoded only that far, and not
    at all when a window exceeds ``budget`` bytes as float32), those windows as indices
    into them, one ``(1, frames_per_window)`` array per width, and the video's name in
    errors."""
    if not _is_video_file(video):
        indices = _window_frame_indices(len(video), windows, stride, padding, clip_length)
        return video, [block[:1] for block in indices], "sample 0"
    reader = VideoReader(video, frame_size)
    indices = _window_frame_indices(reader.n_frames, windows, stride, padding, clip_length)
    for block in indices:
        windows_per_batch(block.shape[1:] + reader.frame_shape, 1, budget,
                          f"video {reader.path}")
    needed = np.unique(np.concatenate([block[0] for block in indices]))
    frames = next(reader.windows([needed[None]]))[2].astype(np.float32)
    return (frames, [np.searchsorted(needed, block[:1]) for block in indices],
            f"video {reader.path}")


def encode_streamed(videos, encoder, settings, *, batch_size, device, working_memory,
                    n_workers, verbose):
    """The TSEs of videos read one at a time, windows batched per video; a video that
    fails is an error naming it."""
    tses = [None] * len(videos)
    encoded = iter_encoded(videos, encoder, settings, batch_size=batch_size, device=device,
                           working_memory=working_memory, n_workers=n_workers)
    for i, result in tqdm(encoded, total=len(videos), desc="encoding", unit="video",
                          disable=verbose < 1):
        if isinstance(result, Exception):
            raise InputError(f"sample {i}: {result}") from result
        tses[i] = result
    return tses
