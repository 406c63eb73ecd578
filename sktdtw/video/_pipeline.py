"""Encoding many videos: decoding threads ahead of the model, each video's windows batched.

A video's windows go to the model in runs of at most ``batch_size`` windows and of a byte
budget (from ``working_memory``), in the video's order, never mixed with another video's:
a model's output for a window may depend on the size and the rest of its batch (PyTorch
picks other kernels for other batch sizes), so batches mixing videos as the decoding
threads deliver them would make a video's TSE depend on which videos are encoded with it,
and a resumed ``encode_videos`` differ from an uninterrupted one in the last bits. The
cost: a video's last, partial batch, a smaller model call. The decoding threads form the
batches, so the windows in flight are bounded by batches: one filling per thread, two
queued and the one the model runs, uint8 as decoded until the model call.
"""

import queue
import threading
import time

import numpy as np
import torch

from .._errors import InputError
from .._windows import (
    _frozen,
    _run_encoder,
    _window_frame_indices,
    batch_budget,
    windows_per_batch,
)
from ._decode import VideoDecodeError, VideoReader, as_video_file

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
    """A video's window embeddings, assembled into its TSE as its batches are embedded."""

    def __init__(self, counts):
        self.parts = [None] * len(counts)
        self.counts = counts
        self.pending = sum(counts)

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
    """``(counts, windows, n_frames, frame_shape)`` of a video file or an in-memory
    sequence; ``windows`` yields ``(width, position, clip)``."""
    windows, stride, padding, clip_length = settings
    if isinstance(source, np.ndarray):
        indices = _window_frame_indices(len(source), windows, stride, padding, clip_length)
        clips = ((j, p, source[rows]) for j, block in enumerate(indices)
                 for p, rows in enumerate(block))
        return indices, clips, len(source), source.shape[1:]
    reader = VideoReader(source, frame_size)
    indices = _window_frame_indices(reader.n_frames, windows, stride, padding, clip_length)
    return indices, reader.windows(indices), reader.n_frames, reader.frame_shape


def _batches(clips, per_batch):
    """The clips in runs of at most ``per_batch[width]`` windows (the widest of them
    deciding), in the order decoded: each run is one model call, whatever else is
    decoded beside it."""
    batch = []
    for width, position, clip in clips:
        batch.append((width, position, clip))
        if len(batch) >= min(per_batch[w] for w, _, _ in batch):
            yield batch
            batch = []
    if batch:
        yield batch


def _decode_worker(sources, todo, out, settings, frame_size, preprocess, limits, stop):
    """Decode the videos whose indices ``todo`` hands out, putting their windows on ``out``
    in batches of at most ``limits = (batch_size, budget)``."""
    while not stop.is_set():
        try:
            index = todo.get_nowait()
        except queue.Empty:
            break
        try:
            indices, clips, n_frames, frame_shape = _source_windows(
                sources[index], settings, frame_size)
            # Sized before decoding, so that a window too large for the budget is an error
            # before its frames are held.
            name = (f"sample {index}" if isinstance(sources[index], np.ndarray)
                    else f"video {as_video_file(sources[index]).path}")
            per_batch = [windows_per_batch(block.shape[1:] + tuple(frame_shape), *limits, name)
                         for block in indices]
            out.put(("start", index, [len(b) for b in indices], n_frames))
            for batch in _batches(clips, per_batch):
                if stop.is_set():
                    return
                if preprocess is not None:
                    batch = [(j, p, preprocess(clip[None])[0]) for j, p, clip in batch]
                out.put(("batch", index, batch))
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


def iter_encoded(sources, encoder, settings, *, batch_size, device, working_memory=None,
                 n_workers=2, bf16=False, stats=None):
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
        Most windows per model call, all of one video (see the module's docstring).
    device : torch.device
    working_memory : float, default=None
        Memory budget in MiB (None: scikit-learn's ``working_memory`` setting). A model
        call takes at most a quarter of it as float32 clips (fewer than ``batch_size``
        windows when they are large); the windows waiting for the model are kept as the
        decoder gives them (uint8), at most one batch per decoding thread and two queued.
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
    # Two batches queued besides the one each decoding thread fills: enough to hide the
    # decoding jitter, and the bound on the windows in flight.
    out = queue.Queue(maxsize=2)
    limits = (batch_size, batch_budget(working_memory))
    stop = threading.Event()
    preprocess = encoder.preprocess if _splits_preprocessing(encoder) else None
    frame_size = getattr(encoder, "frame_size", None)
    n_workers = max(1, min(n_workers, len(sources)))
    threads = [threading.Thread(target=_decode_worker, daemon=True, args=(
        sources, todo, out, settings, frame_size, preprocess, limits, stop))
        for _ in range(n_workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        with _frozen(encoder, device), torch.inference_mode():
            yield from _consume(out, n_workers, encoder, device, bf16, stats)
    finally:
        stop.set()
        while any(t.is_alive() for t in threads):  # unblock workers waiting on a full queue
            try:
                out.get(timeout=0.05)
            except queue.Empty:
                pass
        stats.total_seconds += time.perf_counter() - start


def _finished(videos):
    # A video is complete when its last window is embedded, whatever other videos'
    # batches the queue holds after it.
    for index in [i for i, v in videos.items() if v.pending == 0]:
        video = videos.pop(index)
        try:
            yield index, video.tse()
        except ValueError as exc:
            yield index, exc


def _embed_batch(video, batch, encoder, device, bf16, stats):
    """Embed one batch of ``video``'s windows (one model call per clip shape)."""
    began = time.perf_counter()
    embeddings = _embed(encoder, [clip for _, _, clip in batch], device, bf16)
    stats.model_seconds += time.perf_counter() - began
    stats.windows += len(batch)
    for (width, position, _), embedding in zip(batch, embeddings):
        video.put(width, position, embedding)


def _consume(out, n_workers, encoder, device, bf16, stats):
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
        elif item[0] == "batch":
            _embed_batch(videos[item[1]], item[2], encoder, device, bf16, stats)
        else:
            videos.pop(item[1], None)
            if not isinstance(item[2], VideoDecodeError):
                raise item[2]  # not the file's fault: a setting, the preprocessing...
            yield item[1], item[2]
        yield from _finished(videos)
