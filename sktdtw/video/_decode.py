"""Decoding video files with PyAV, one pass per video, keeping only the frames in flight.

A video is probed first by demuxing its packets (no decoding) for the number of frames and
their presentation times; the windows then give, for every decoded frame, whether any
window needs it and when the last window needing it is done. Frames are decoded in order,
converted to RGB and resized (FFmpeg's swscale) only when needed, and kept in a ring
buffer just large enough for the windows in flight.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from numbers import Integral

import numpy as np
import numpy.typing as npt

from .._errors import InputError
from .._typing import FrameSize, PathLike

__all__ = ["VideoDecodeError", "VideoFile", "VideoReader", "read_video", "write_video"]

# Seek only over gaps of more frames than this: a seek lands on the keyframe before its
# target and decodes forward from there, which costs as much as a short sequential run.
_SEEK_MIN_GAP = 48
# Half a microsecond: output times k / fps land on a source frame despite rounding.
_TIME_SLACK = 5e-7


class VideoDecodeError(InputError):
    """A video file cannot be opened or decoded; the message names the file."""


def _import_av():
    try:
        import av
    except ImportError as exc:
        raise ImportError(
            "reading video files needs PyAV: pip install av"
        ) from exc
    return av


class VideoFile:
    """A video file and how to decode it, for :class:`~sktdtw.TSESlidingEncoder`.

    A plain path means ``VideoFile(path)``: every frame, at the native size.

    Parameters
    ----------
    path : str or path-like
        The file (anything FFmpeg reads: mp4, mkv, webm, avi; h264, hevc, vp9, av1...).
    fps : float, default=None
        Resample to this frame rate (each output frame is the source frame shown at its
        time); None keeps every frame.
    size : int or (int, int), default=None
        Resize on decode: an int is the length of the shorter edge (aspect ratio kept, the
        longer edge truncated as transformers' ``shortest_edge`` does), a pair is
        ``(height, width)``. None keeps the native size, or takes the encoder's
        ``frame_size`` attribute when it has one.
    seek : bool, default=False
        Seek over long runs of unneeded frames (sparse windows) instead of decoding them.
        Used only when every frame has a distinct presentation time; otherwise, or when a
        seek lands on inconsistent timestamps (B-frame AVIs), decoding falls back to the
        sequential pass, with the same frames.

    Examples
    --------
    >>> from sktdtw.video import VideoFile
    >>> VideoFile("clip.mp4", fps=8, size=224)
    VideoFile('clip.mp4', fps=8, size=224, seek=False)
    """

    def __init__(self, path, *, fps=None, size=None, seek=False):
        self.path = os.fspath(path)
        self.fps = fps
        self.size = size
        self.seek = seek

    def __repr__(self):
        return (f"VideoFile({self.path!r}, fps={self.fps!r}, size={self.size!r}, "
                f"seek={self.seek!r})")


def as_video_file(video):
    """A :class:`VideoFile` for a path or a VideoFile."""
    return video if isinstance(video, VideoFile) else VideoFile(video)


def _output_size(width, height, size, path):
    """``(height, width)`` of the decoded frames."""
    if size is None:
        return height, width
    if isinstance(size, Integral) and not isinstance(size, bool) and size >= 1:
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)
        return (new_long, int(size)) if width <= height else (int(size), new_long)
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, Integral) and s >= 1 for s in size)):
        return int(size[0]), int(size[1])
    raise InputError(f"video {path}: size must be None, an int >= 1 (shorter edge) or "
                     f"(height, width), got {size!r}")


def _open(path):
    av = _import_av()
    # FFmpeg would block on a FIFO (or a device) until a writer comes, stalling the run.
    try:
        is_regular = stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        is_regular = True  # a missing file: FFmpeg's own error names it
    if not is_regular:
        raise VideoDecodeError(f"video {path} is not a regular file (a FIFO, socket or "
                               "device); only video files are read")
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoDecodeError(f"video {path} cannot be opened: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"video {path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _probe(path):
    """Sorted presentation times (s, from 0), pts, whether they allow seeking, the frame
    rate and the coded ``(width, height)``."""
    av = _import_av()
    container, stream = _open(path)
    with container:
        pts, has_all_pts = [], True
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:  # flush / edit-list packets
                    continue
                has_all_pts &= packet.pts is not None
                pts.append(packet.pts)
        except av.FFmpegError as exc:
            raise VideoDecodeError(f"video {path} cannot be read: {exc}") from exc
        if not pts:
            raise VideoDecodeError(f"video {path} has no frames")
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        dimensions = (stream.codec_context.width, stream.codec_context.height)
        if not all(dimensions):
            raise VideoDecodeError(f"video {path} does not state its frame size")
        if has_all_pts:
            pts = np.sort(np.asarray(pts, dtype=np.int64))
            times = (pts - pts[0]) * float(stream.time_base)
            seekable = bool((np.diff(pts) > 0).all())
        else:
            pts, times, seekable = None, np.arange(len(pts)) / rate, False
    return times, pts, seekable, rate, dimensions


def _source_frames(times, rate, fps):
    """Source frame of every output frame: all of them, or the one shown at ``k / fps``."""
    if fps is None:
        return np.arange(len(times))
    step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / rate
    duration = times[-1] + step
    count = max(int(np.ceil(duration * fps - _TIME_SLACK)), 1)
    at = np.arange(count) / fps + _TIME_SLACK
    return np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 1)


class _Unseekable(Exception):
    """A seek produced timestamps that do not match the probed ones."""


class VideoReader:
    """Decode windows of frames of one video file in a single pass.

    Parameters
    ----------
    video : str, path-like or VideoFile
        The file, and how to decode it.
    frame_size : int or (int, int), default=None
        Resize target used when ``video.size`` is None (see :class:`VideoFile`).

    Attributes
    ----------
    path : str
        The file.
    n_frames : int
        Frames after frame-rate resampling (the length the windows are laid on).
    frame_shape : (int, int, int)
        ``(height, width, 3)`` of the decoded frames.

    Raises
    ------
    VideoDecodeError
        If the file cannot be opened or demuxed, or has no video stream or no frame.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from sktdtw.video import VideoReader, write_video
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
    >>> write_video(path, np.zeros((10, 32, 48, 3), dtype=np.uint8))
    >>> reader = VideoReader(path)
    >>> reader.n_frames, reader.frame_shape
    (10, (32, 48, 3))
    >>> [(j, p, clip.shape) for j, p, clip in reader.windows([np.array([[0, 1], [5, 9]])])]
    [(0, 0, (2, 32, 48, 3)), (0, 1, (2, 32, 48, 3))]
    """

    def __init__(self, video, frame_size=None):
        video = as_video_file(video)
        self.path = video.path
        self._video = video
        self._size = video.size if video.size is not None else frame_size
        if video.fps is not None and not (isinstance(video.fps, (int, float))
                                          and 0 < video.fps < float("inf")):
            raise InputError(f"video {self.path}: fps must be a finite number > 0, got "
                             f"{video.fps!r}")
        self._times, self._pts, self._seekable, rate, (width, height) = _probe(self.path)
        self._sources = _source_frames(self._times, rate, video.fps)
        self.n_frames = len(self._sources)
        self.frame_shape = _output_size(width, height, self._size, self.path) + (3,)

    def windows(
        self, frame_indices: Sequence[np.ndarray]
    ) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield every window's frames, in the order the decoding completes them.

        Parameters
        ----------
        frame_indices : list of ndarray of shape (n_windows, frames_per_window)
            Output frame indices of the windows, one array per window width.

        Yields
        ------
        width : int
            Index of the window's array in ``frame_indices``.
        position : int
            Row of the window in that array.
        clip : ndarray of shape (frames_per_window, height, width, 3), uint8
            The window's RGB frames (a new array).
        """
        entries = [(j, p, self._sources[row]) for j, rows in enumerate(frame_indices)
                   for p, row in enumerate(rows)]
        needed = np.zeros(len(self._times), dtype=bool)
        for _, _, src in entries:
            needed[src] = True
        # The buffer holds needed frames only: slot = rank among the needed frames, modulo
        # the most needed frames any window still waiting spans when another completes.
        rank = np.cumsum(needed) - 1
        ends = np.array([src.max() for _, _, src in entries])
        order = np.argsort(ends, kind="stable")
        firsts = np.array([rank[entries[k][2].min()] for k in order])
        lowest_after = np.minimum.accumulate(firsts[::-1])[::-1]
        capacity = int((rank[ends[order]] - lowest_after).max()) + 1
        plan = (entries, order, ends, needed, rank % capacity, capacity)
        n_yielded = 0
        if self._video.seek and self._seekable:
            try:
                for progress in self._run(self._seeking_frames(needed), plan, 0):
                    n_yielded, window = progress  # kept for a sequential restart
                    yield window
                return
            except _Unseekable:
                pass  # decode sequentially from the start, skipping the windows yielded
        for _, window in self._run(self._sequential_frames(), plan, n_yielded):
            yield window

    def _run(self, frames, plan, done):
        """Fill the ring buffer from ``frames`` and yield ``(n_done, window)`` as windows
        complete, skipping the first ``done`` (yielded by an abandoned seeking pass)."""
        entries, order, ends, needed, slots, capacity = plan
        height, width, _ = self.frame_shape
        buffer = np.empty((capacity,) + self.frame_shape, dtype=np.uint8)
        k = 0
        for index, frame in frames:
            if needed[index]:
                buffer[slots[index]] = frame.reformat(
                    width=width, height=height, format="rgb24", interpolation="BILINEAR"
                ).to_ndarray()
            while k < len(order) and ends[order[k]] == index:
                if k >= done:
                    j, p, src = entries[order[k]]
                    yield k + 1, (j, p, buffer[slots[src]])
                k += 1

    def _sequential_frames(self):
        av = _import_av()
        container, stream = _open(self.path)
        count = 0
        with container:
            try:
                for count, frame in enumerate(container.decode(stream), start=1):
                    yield count - 1, frame
            except av.FFmpegError as exc:
                raise VideoDecodeError(f"video {self.path}: decoding failed at frame "
                                       f"{count}: {exc}") from exc
        if count != len(self._times):
            raise VideoDecodeError(
                f"video {self.path}: {count} frames decoded but the container has "
                f"{len(self._times)} frame packets; the windows cannot be placed reliably "
                "(re-encode the file, e.g. with ffmpeg -c:v libx264)"
            )

    def _seeking_frames(self, needed):
        """Frames from seeks to the starts of the runs of needed frames far apart."""
        av = _import_av()
        wanted = np.flatnonzero(needed)
        index_of = {int(p): i for i, p in enumerate(self._pts)}
        container, stream = _open(self.path)
        last = -1
        with container:
            position = 0
            while position < len(wanted):
                target = int(wanted[position])
                container.seek(int(self._pts[target]), stream=stream, backward=True)
                previous = None
                try:
                    for frame in container.decode(stream):
                        index = index_of.get(frame.pts)
                        # After a seek: frames from a keyframe at or before the target, one
                        # after the other; anything else means the timestamps mislead.
                        if index is None or (index > target if previous is None
                                             else index != previous + 1):
                            raise _Unseekable
                        previous = index
                        if index <= last:
                            continue
                        last = index
                        yield index, frame
                        while position < len(wanted) and wanted[position] <= index:
                            position += 1
                        if position == len(wanted) or wanted[position] - index > _SEEK_MIN_GAP:
                            break
                    else:
                        break
                except av.FFmpegError as exc:
                    raise VideoDecodeError(f"video {self.path}: decoding failed near frame "
                                           f"{last + 1}: {exc}") from exc


def read_video(video: PathLike | VideoFile, frame_size: FrameSize = None) -> np.ndarray:
    """Decode a whole video file into memory.

    Parameters
    ----------
    video : str, path-like or VideoFile
        The file, and how to decode it (frame rate, size).
    frame_size : int or (int, int), default=None
        Resize target used when ``video.size`` is None (see :class:`VideoFile`).

    Returns
    -------
    frames : ndarray of shape (n_frames, height, width, 3), uint8
        The RGB frames.

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from sktdtw.video import VideoFile, read_video, write_video
    >>> path = os.path.join(tempfile.mkdtemp(), "clip.mp4")
    >>> write_video(path, np.zeros((6, 32, 48, 3), dtype=np.uint8), fps=6)
    >>> read_video(path).shape, read_video(VideoFile(path, fps=3, size=16)).shape
    ((6, 32, 48, 3), (3, 16, 24, 3))
    """
    reader = VideoReader(video, frame_size)
    every = np.arange(reader.n_frames)[None, :]
    return next(reader.windows([every]))[2]


def write_video(
    path: PathLike, frames: npt.ArrayLike, *, fps: int = 25, codec: str = "libx264",
    crf: int = 0,
) -> None:
    """Write RGB frames to a video file (synthetic data, tests, benchmarks).

    Parameters
    ----------
    path : str or path-like
        The file to write; its extension picks the container (``.mp4``, ``.mkv``...).
    frames : array-like of shape (n_frames, height, width, 3), uint8
        The frames; height and width must be even for ``yuv420p``.
    fps : int, default=25
        Frame rate.
    codec : str, default="libx264"
        FFmpeg encoder.
    crf : int, default=0
        Constant rate factor of x264/x265 (0: lossless luma, the chroma is still
        subsampled to 4:2:0).

    Examples
    --------
    >>> import numpy as np, os, tempfile
    >>> from sktdtw.video import read_video, write_video
    >>> path = os.path.join(tempfile.mkdtemp(), "grey.mp4")
    >>> write_video(path, np.full((3, 16, 16, 3), 128, dtype=np.uint8))
    >>> int(read_video(path)[2, 8, 8, 0])
    128
    """
    av = _import_av()
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"frames must have shape (n_frames, height, width, 3), got {frames.shape}")
    with av.open(os.fspath(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf)}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
