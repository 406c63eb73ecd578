"""Video files of a CSV manifest into a TSE store, resumable, reporting the files that fail.

Finished TSEs are saved one ``.npy`` file each in ``<out>.partial``, next to a record of
the encoding settings; the store is then built from them by the public
:func:`sktdtw.io.build_store`, which parses the labels and splits the way it does for any
manifest.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil

import numpy as np
import torch
from tqdm.auto import tqdm

from .._atomic import atomic_file
from .._csv import write_csv
from .._errors import InputError
from .._sliding_encoder import TSESlidingEncoder
from .._typing import FrameSize, PathLike
from ..io import TSEStore, build_store
from ..io._manifest import read_manifest, resolve_manifest_path
from ..io._writer import _check_destination
from ._decode import VideoFile
from ._pipeline import EncodeStats, iter_encoded

__all__ = ["encode_videos"]

FAILURES_FILE = "failures.csv"
SETTINGS_FILE = "settings.json"
_TSE_MANIFEST = "tses.csv"
_REQUIRED = ("id", "path")
_OPTIONAL = ("label", "split")


def _read_video_manifest(manifest):
    """The rows (dicts of the columns id, path[, label][, split]) and those columns."""
    rows = [cells for _, _, cells in read_manifest(manifest, _REQUIRED, _OPTIONAL)]
    return rows, tuple(rows[0])


def _encoder_identity(encoder):
    """What the encoder computes: its name and, for a module, its config and weights."""
    if isinstance(encoder, str):
        return {"encoder": encoder}
    kind = type(encoder)
    name = getattr(encoder, "__qualname__", None) or kind.__qualname__
    identity = {"encoder": f"{getattr(encoder, '__module__', kind.__module__)}.{name}"}
    if isinstance(encoder, torch.nn.Module):
        identity["encoder config"] = encoder.extra_repr()
        digest = hashlib.sha256()
        for key, tensor in encoder.state_dict().items():
            digest.update(f"{key} {tensor.dtype} {tuple(tensor.shape)}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                          .numpy())
        identity["encoder weights sha256"] = digest.hexdigest()
    return identity


def _encoding_settings(rows, videos, tse_encoder, fps, size, bf16):
    """Everything the finished TSEs depend on, as saved in the settings file."""
    windows, stride, _ = tse_encoder._window_settings()
    manifest = hashlib.sha256()
    for row, video in zip(rows, videos):
        manifest.update(f"{row['id']}\0{video}\0".encode())
    if size is None:
        size = getattr(tse_encoder.encoder, "frame_size", None)
    settings = {
        "manifest ids and paths sha256": manifest.hexdigest(),
        **_encoder_identity(tse_encoder.encoder),
        "window": windows, "stride": stride, "padding": tse_encoder.padding,
        "clip_length": tse_encoder.clip_length, "fps": fps, "size": size, "bf16": bf16,
    }
    return json.loads(json.dumps(settings))  # tuples as lists, as read back


def _has_finished_videos(partial):
    return any(name.endswith(".npy") for name in os.listdir(partial))


def _check_resumable(partial, settings):
    """Record ``settings`` in a partial directory holding no finished video (whatever an
    earlier run that finished none recorded), or check they are the recorded ones."""
    path = os.path.join(partial, SETTINGS_FILE)
    if not _has_finished_videos(partial):
        with atomic_file(path, "w") as fp:
            json.dump(settings, fp, indent=1)
        return
    if not os.path.isfile(path):
        raise InputError(f"{partial} holds encoded videos but no {SETTINGS_FILE}, so they "
                         "cannot be checked against this run's settings; remove it")
    try:
        with open(path, encoding="utf-8") as fp:
            recorded = json.load(fp)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read: {exc}; remove {partial}") from exc
    differing = [f"{key} ({recorded.get(key)!r} then, {settings.get(key)!r} now)"
                 for key in sorted(set(settings) | set(recorded))
                 if recorded.get(key) != settings.get(key)]
    if differing:
        raise InputError(
            f"cannot resume from {partial}: it was encoded with other settings: "
            f"{'; '.join(differing)}. Run again with the same ones, or remove {partial}"
        )


def _build(rows, columns, done, files, partial, out_path, overwrite, verbose):
    """The store of the finished videos, through build_store on a manifest of their TSEs."""
    tse_manifest = os.path.join(partial, _TSE_MANIFEST)
    with atomic_file(tse_manifest, "w") as fp:
        writer = csv.writer(fp)
        writer.writerow(columns)
        writer.writerows([rows[i][c] if c != "path" else files[i] for c in columns]
                         for i in done)
    return build_store(tse_manifest, out_path, overwrite=overwrite, verbose=verbose)


def encode_videos(
    manifest_csv: PathLike, tse_encoder: TSESlidingEncoder, out_path: PathLike, *,
    fps: float | None = None, size: FrameSize = None, seek: bool = False,
    root: PathLike | None = None, allow_outside_root: bool = False, bf16: bool = False,
    overwrite: bool = False, verbose: int = 0, stats: EncodeStats | None = None,
) -> tuple[TSEStore, list[tuple[str, str]]]:
    """Encode the video files of a CSV manifest into a TSE store.

    Windows are batched per video and decoded by ``tse_encoder.n_jobs`` threads (at
    least 2) ahead of the model. Each finished TSE is saved at once to ``<out_path>.partial``,
    so an interrupted run, started again with the same arguments, encodes only the videos
    not finished yet; the store is written from them at the end and the directory removed.
    The settings the TSEs depend on (the manifest's ids and paths, the encoder's class,
    configuration and weights, window, stride, padding, clip_length, fps, size, bf16) are
    recorded there, and a run with other settings refuses to resume. A video that cannot
    be decoded (unreadable, no frame) is skipped and reported.

    Parameters
    ----------
    manifest_csv : str or path-like
        CSV with the columns ``id``, ``path`` and optionally ``label`` (without it the store
        is unlabelled, e.g. videos to predict) and ``split``, as for
        :func:`sktdtw.io.build_store`; ``path`` is a video file.
    tse_encoder : TSESlidingEncoder
        Its encoder, window, stride, padding, clip_length, batch_size, working_memory,
        device and n_jobs are used; it need not be fitted.
    out_path : str or path-like
        Directory of the new store; it must not exist unless ``overwrite``.
    fps, size, seek
        How to decode every file (see :class:`VideoFile`); ``size=None`` takes the
        encoder's ``frame_size`` when it has one.
    root : str or path-like, default=None
        Directory that relative paths start from; None means the manifest's directory.
    allow_outside_root : bool, default=False
        Read videos outside ``root`` too; by default a row whose path leads out of it is
        an error (as for :func:`sktdtw.io.build_store`).
    bf16 : bool, default=False
        Run a ``torch.nn.Module`` encoder under bfloat16 autocast (for CUDA).
    overwrite : bool, default=False
        Replace an existing store at ``out_path`` (never a directory that is not a store);
        it stays readable there until the new one is complete.
    verbose : int, default=0
        ``>= 1`` shows a progress bar over the videos.
    stats : EncodeStats, default=None
        Filled with the run's counters (frames, windows, model and waiting time).

    Returns
    -------
    store : TSEStore
        The new store, in manifest order, without the failed videos.
    failures : list of (str, str)
        ``(id, reason)`` of every video that failed, also written to ``failures.csv`` in
        the store directory when there is any.

    Raises
    ------
    ValueError
        If a parameter of ``tse_encoder`` is invalid (scikit-learn's InvalidParameterError,
        before anything is read), the manifest is malformed (the row is named), every video
        failed, or ``<out_path>.partial`` was encoded with other settings (they are named).
    FileExistsError
        If ``out_path`` exists and ``overwrite`` is False, or is not a store (checked
        before anything is encoded).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sktdtw import TSESlidingEncoder
    >>> from sktdtw.video import encode_videos, write_video
    >>> folder = tempfile.mkdtemp()
    >>> for name, t in (("a", 12), ("b", 20)):
    ...     write_video(os.path.join(folder, name + ".mp4"), np.zeros((t, 16, 16, 3), np.uint8))
    >>> with open(os.path.join(folder, "videos.csv"), "w") as fp:
    ...     _ = fp.write("id,path,label\\na,a.mp4,run\\nb,b.mp4,jump\\n")
    >>> store, failures = encode_videos(os.path.join(folder, "videos.csv"),
    ...                                 TSESlidingEncoder(window=4, stride=4),
    ...                                 os.path.join(folder, "store"))
    >>> store.lengths.tolist(), store.n_features, failures
    ([3, 5], 768, [])
    """
    # Its parameters, checked now: encode_videos does not fit it, and a batch_size < 1
    # would never fill a batch.
    tse_encoder._validate_params()
    manifest = os.path.abspath(os.fspath(manifest_csv))
    out_path = os.path.abspath(os.fspath(out_path))
    _check_destination(out_path, overwrite)  # now, not after the encoding
    root = os.path.dirname(manifest) if root is None else os.fspath(root)
    rows, columns = _read_video_manifest(manifest)
    videos = []
    for number, row in enumerate(rows, start=1):
        video, outside = resolve_manifest_path(row["path"], root, allow_outside_root)
        if outside:
            raise InputError(f"manifest {manifest}, row {number} (id {row['id']!r}): {outside}")
        videos.append(video)
    settings = _encoding_settings(rows, videos, tse_encoder, fps, size, bf16)
    partial = out_path + ".partial"
    os.makedirs(partial, exist_ok=True)
    _check_resumable(partial, settings)
    files = [os.path.join(partial, f"{number}.npy") for number in range(len(rows))]
    todo = [i for i, file in enumerate(files) if not os.path.isfile(file)]
    windows, stride, device = tse_encoder._window_settings()
    encoded = iter_encoded(
        [VideoFile(videos[i], fps=fps, size=size, seek=seek) for i in todo],
        tse_encoder.encoder, (windows, stride, tse_encoder.padding, tse_encoder.clip_length),
        batch_size=tse_encoder.batch_size, device=device,
        working_memory=tse_encoder.working_memory,
        n_workers=max(2, tse_encoder.n_jobs or 1), bf16=bf16,
        stats=EncodeStats() if stats is None else stats)
    failures = {}
    try:
        with tqdm(total=len(rows), initial=len(rows) - len(todo), disable=verbose < 1,
                  desc="encoding videos", unit="video") as progress:
            for position, result in encoded:
                if isinstance(result, Exception):
                    failures[todo[position]] = " ".join(str(result).split())
                else:
                    with atomic_file(files[todo[position]]) as fp:
                        np.save(fp, result, allow_pickle=False)
                progress.update()
    except BaseException:
        if not _has_finished_videos(partial):  # nothing to resume (e.g. a setting's error)
            shutil.rmtree(partial, ignore_errors=True)
        raise
    done = [i for i in range(len(rows)) if i not in failures]
    if not done:
        raise InputError(f"every video of {manifest} failed; the first, id "
                         f"{rows[0]['id']!r}: {failures[0]}")
    store = _build(rows, columns, done, files, partial, out_path, overwrite, verbose)
    if failures:
        table = [("id", "path", "error")] + [(rows[i]["id"], videos[i], failures[i])
                                             for i in sorted(failures)]
        with atomic_file(os.path.join(out_path, FAILURES_FILE), "w") as fp:
            write_csv(fp, table)
    shutil.rmtree(partial)
    return store, [(rows[i]["id"], failures[i]) for i in sorted(failures)]
