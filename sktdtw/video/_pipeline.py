"""Encoding many videos: decoding threads ahead of the model, each video's windows batched.

A video's windows go to the model in runs of ``batch_size``, in the video's order, never
mixed with another video's: a model's output for a window may depend on the size and the
rest of its batch (PyTorch picks other kernels for other batch sizes), so batches mixing
videos as the decoding threads deliver them would make a video's TSE depend on which
videos are encoded with it, and a resumed ``encode_videos`` differ from an uninterrupted
one in the last bits. The cost: a video's last, partial batch, a smaller model call.
"""

import queue
import threading
import time

import numpy as np
import torch

from .._errors import InputError
from .._windows import _frozen, _run_encoder, _window_frame_indices
from ._decode import VideoDecodeError, VideoReader

__all__ = ["EncodeStats", "iter_encoded"]

_DONE = object()


class EncodeStats:
    """Counters of one encoding run (for benchmarks and progress reports)."""

    def __init__(self):
        self.frames_decoded = 0
        self.windows = 0
        self.model_seconds = 0.0
        self.wait_seconds = 0.0
        self.total_seconds = 0.0

    @property
    def wait_fraction(self):
        """Fraction of the run the model spent waiting for decoded windows."""
        return self.wait_seconds / self.total_seconds if self.total_seconds else 0.0


class _Video:
    """Windows of one video, batched (``clips``: decoded, not embedded yet), and their
    embeddings assembled into its TSE as they arrive."""

    def __init__(self, counts):
        self.parts = [None] * len(counts)
        self.counts = counts
        self.pending = sum(counts)
        self.clips = []
        self.ended = False

    def put(self, width, position, embedding):
        if self.parts[width] is None:
            self.parts[width] = np.empty((self.counts[width], len(embedding)), np.float32)
        self.parts[width][position] = embedding
        self.pending -= 1

    def tse(self):
        tse = np.ascontiguousarray(np.concatenate(self.parts, axis=1))
        if not np.isfinite(tse).all():
            raise InputError("the encoder produced non-finite values (NaN or inf)")
        return tse


def _source_windows(source, settings, frame_size):
    """``(counts, windows)`` of a video file or an in-memory sequence."""
    windows, stride, padding, clip_length = settings
    if isinstance(source, np.ndarray):
        indices = _window_frame_indices(len(source), windows, stride, padding, clip_length)
        clips = ((j, p, source[rows]) for j, block in enumerate(indices)
                 for p, rows in enumerate(block))
        return [len(b) for b in indices], clips, len(source)
    reader = VideoReader(source, frame_size)
    indices = _window_frame_indices(reader.n_frames, windows, stride, padding, clip_length)
    return [len(b) for b in indices], reader.windows(indices), reader.n_frames


def _decode_worker(sources, todo, out, settings, frame_size, preprocess, stop):
    """Decode the videos whose indices ``todo`` hands out, putting their windows on ``out``."""
    while not stop.is_set():
        try:
            index = todo.get_nowait()
        except queue.Empty:
            break
        try:
            counts, clips, n_frames = _source_windows(sources[index], settings, frame_size)
            out.put(("start", index, counts, n_frames))
            for width, position, clip in clips:
                if stop.is_set():
                    return
                if preprocess is not None:
                    clip = preprocess(clip[None])[0]
                out.put(("clip", index, width, position, clip))
            out.put(("end", index))
        except Exception as exc:  # reported per video by the consumer
            out.put(("error", index, exc))
    out.put(_DONE)


def _run_batch(encoder, clips, device, bf16):
    """Embed a batch of clips: ``(n, n_features)`` float32 on the CPU."""
    if not isinstance(encoder, torch.nn.Module):
        return _run_encoder(encoder, np.stack(clips).astype(np.float32), device)
    if isinstance(clips[0], torch.Tensor):
        batch = torch.stack(clips)
    else:
        batch = torch.from_numpy(np.stack(clips))
    if device.type == "cuda":
        batch = batch.pin_memory()
    batch = batch.to(device, non_blocking=True)
    embed = encoder.embed if _splits_preprocessing(encoder) else encoder
    if not _splits_preprocessing(encoder):
        batch = batch.float()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out = embed(batch)
    return out.float().cpu().numpy()


def _embed(encoder, clips, device, bf16):
    """Embed clips of possibly different shapes (window widths differ between videos and
    between widths of one video): one model call per shape; one embedding per clip."""
    by_shape = {}
    for k, clip in enumerate(clips):
        by_shape.setdefault(tuple(clip.shape), []).append(k)
    embeddings = [None] * len(clips)
    for rows in by_shape.values():
        out = _run_batch(encoder, [clips[k] for k in rows], device, bf16)
        if out.ndim != 2 or len(out) != len(rows):
            raise InputError(f"the encoder returned shape {out.shape} for a batch of "
                             f"{len(rows)} windows; expected (n_windows, n_features)")
        for k, embedding in zip(rows, out):
            embeddings[k] = embedding
    return embeddings


def _splits_preprocessing(encoder):
    return callable(getattr(encoder, "preprocess", None)) and callable(
        getattr(encoder, "embed", None))


def iter_encoded(sources, encoder, settings, *, batch_size, device, n_workers=2,
                 bf16=False, stats=None):
    """Encode every source and yield ``(index, tse_or_exception)`` as each completes.

    Parameters
    ----------
    sources : sequence
        Video files (paths or :class:`VideoFile`) or in-memory ``(T, ...)`` arrays.
    encoder : callable or torch.nn.Module
        The window encoder; a module with ``preprocess`` and ``embed`` methods has its
        preprocessing run in the decoding threads.
    settings : tuple
        ``(windows, stride, padding, clip_length)``, validated.
    batch_size : int
        Windows per model call, all of one video (see the module's docstring).
    device : torch.device
    n_workers : int, default=2
        Decoding threads.
    bf16 : bool, default=False
        Run the model under bfloat16 autocast.
    stats : EncodeStats, default=None
        Filled with the run's counters.

    Yields
    ------
    index : int
        Position of the source.
    result : ndarray of shape (n_windows, n_features) or Exception
        Its TSE, or why it failed: a :class:`VideoDecodeError` (an unreadable or empty
        file) or the ValueError of non-finite embeddings. Any other error (a bad setting,
        a clip the encoder's preprocessing rejects) is raised.
    """
    stats = EncodeStats() if stats is None else stats
    todo = queue.Queue()
    for index in range(len(sources)):
        todo.put(index)
    # A few batches of decoded windows in flight: enough to hide decoding jitter.
    out = queue.Queue(maxsize=4 * batch_size)
    stop = threading.Event()
    preprocess = encoder.preprocess if _splits_preprocessing(encoder) else None
    frame_size = getattr(encoder, "frame_size", None)
    n_workers = max(1, min(n_workers, len(sources)))
    threads = [threading.Thread(target=_decode_worker, daemon=True, args=(
        sources, todo, out, settings, frame_size, preprocess, stop)) for _ in range(n_workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        with _frozen(encoder, device), torch.inference_mode():
            yield from _consume(out, n_workers, encoder, batch_size, device, bf16, stats)
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock workers waiting on a full queue
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass
        stats.total_seconds += time.perf_counter() - start


def _finished(videos):
    for index in [i for i, v in videos.items() if v.ended and v.pending == 0]:
        video = videos.pop(index)
        try:
            yield index, video.tse()
        except ValueError as exc:
            yield index, exc


def _embed_clips(video, encoder, device, bf16, stats):
    """Embed the batched clips of ``video``, one batch of the video alone."""
    began = time.perf_counter()
    embeddings = _embed(encoder, [clip for _, _, clip in video.clips], device, bf16)
    stats.model_seconds += time.perf_counter() - began
    stats.windows += len(video.clips)
    for (width, position, _), embedding in zip(video.clips, embeddings):
        video.put(width, position, embedding)
    video.clips = []


def _consume(out, n_workers, encoder, batch_size, device, bf16, stats):
    videos, running = {}, n_workers
    while running:
        waited = time.perf_counter()
        item = out.get()
        stats.wait_seconds += time.perf_counter() - waited
        if item is _DONE:
            running -= 1
        elif item[0] == "start":
            videos[item[1]] = _Video(item[2])
            stats.frames_decoded += item[3]
        elif item[0] == "clip":
            video = videos[item[1]]
            video.clips.append(item[2:])
            if len(video.clips) >= batch_size:
                _embed_clips(video, encoder, device, bf16, stats)
        elif item[0] == "error":
            videos.pop(item[1], None)
            if not isinstance(item[2], VideoDecodeError):
                raise item[2]  # not the file's fault: a setting, the preprocessing...
            yield item[1], item[2]
        else:
            video = videos[item[1]]
            video.ended = True
            if video.clips:
                _embed_clips(video, encoder, device, bf16, stats)
        yield from _finished(videos)
