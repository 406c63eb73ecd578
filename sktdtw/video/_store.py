"""Video files of a CSV manifest into a TSE store, resumable, reporting the files that fail."""

import csv
import os
import shutil
import sys

import numpy as np
from tqdm.auto import tqdm

from ..io import write_store
from ..io._manifest import _INTEGER, _read_manifest
from ._decode import VideoFile
from ._pipeline import EncodeStats, iter_encoded

__all__ = ["encode_videos"]

FAILURES_FILE = "failures.csv"


def _save_atomically(path, array):
    tmp = path + ".tmp"
    with open(tmp, "wb") as fp:
        np.save(fp, array, allow_pickle=False)
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(tmp, path)


class _Finished:
    """The TSEs of the videos encoded so far, read back one at a time in manifest order."""

    def __init__(self, files):
        self.files = files

    def __len__(self):
        return len(self.files)

    def __iter__(self):
        for file in self.files:
            yield np.load(file, allow_pickle=False)


def encode_videos(manifest_csv, tse_encoder, out_path, *, fps=None, size=None, seek=False,
                  root=None, bf16=False, verbose=0, stats=None):
    """Encode the video files of a CSV manifest into a TSE store.

    Windows are batched across videos and decoded by ``tse_encoder.n_jobs`` threads (at
    least 2) ahead of the model. Each finished TSE is saved at once to ``<out_path>.partial``,
    so an interrupted run, started again with the same arguments, encodes only the videos
    not finished yet; the store is written from them at the end and the directory removed.
    A video that cannot be decoded (unreadable, no frame) is skipped and reported.

    Parameters
    ----------
    manifest_csv : str or path-like
        CSV with the columns ``id``, ``path``, ``label`` and optionally ``split`` (as for
        :func:`sktdtw.io.build_store`); ``path`` is a video file.
    tse_encoder : TSESlidingEncoder
        Its encoder, window, stride, padding, clip_length, batch_size, device and n_jobs
        are used; it need not be fitted.
    out_path : str or path-like
        Directory of the new store; it must not exist.
    fps, size, seek
        How to decode every file (see :class:`VideoFile`); ``size=None`` takes the
        encoder's ``frame_size`` when it has one.
    root : str or path-like, default=None
        Directory that relative paths start from; None means the manifest's directory.
    bf16 : bool, default=False
        Run a ``torch.nn.Module`` encoder under bfloat16 autocast (for CUDA).
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
        If the manifest is malformed (the row is named), or every video failed.
    FileExistsError
        If ``out_path`` exists.
    """
    manifest = os.path.abspath(os.fspath(manifest_csv))
    out_path = os.path.abspath(os.fspath(out_path))
    if os.path.lexists(out_path):
        raise FileExistsError(f"{out_path} already exists; the store is written there")
    root = os.path.dirname(manifest) if root is None else os.fspath(root)
    rows, has_split = _read_manifest(manifest, root)
    partial = out_path + ".partial"
    os.makedirs(partial, exist_ok=True)
    files = [os.path.join(partial, f"{number}.npy") for number in range(len(rows))]
    todo = [i for i, file in enumerate(files) if not os.path.isfile(file)]
    videos = [VideoFile(rows[i].file, fps=fps, size=size, seek=seek) for i in todo]
    windows, stride, device = tse_encoder._window_settings()
    settings = (windows, stride, tse_encoder.padding, tse_encoder.clip_length)
    failures = {}
    encoded = iter_encoded(videos, tse_encoder.encoder, settings,
                           batch_size=tse_encoder.batch_size, device=device,
                           n_workers=max(2, tse_encoder.n_jobs or 1), bf16=bf16,
                           stats=EncodeStats() if stats is None else stats)
    progress = tqdm(total=len(rows), initial=len(rows) - len(todo), disable=verbose < 1,
                    desc="encoding videos", unit="video")
    with progress:
        for position, result in encoded:
            if isinstance(result, Exception):
                failures[todo[position]] = " ".join(str(result).split())
            else:
                _save_atomically(files[todo[position]], result)
            progress.update()
    done = [i for i in range(len(rows)) if i not in failures]
    if not done:
        raise ValueError(f"every video of {manifest} failed; the first, id {rows[0].id!r}: "
                         f"{failures[0]}")
    labels = [rows[i].label for i in done]
    if all(_INTEGER.fullmatch(label) for label in [row.label for row in rows]):
        labels = np.array([int(label) for label in labels], dtype=np.int64)
    store = write_store(out_path, _Finished([files[i] for i in done]), labels=labels,
                        ids=[rows[i].id for i in done],
                        splits=[rows[i].split for i in done] if has_split else None)
    report = [(rows[i].id, reason) for i, reason in sorted(failures.items())]
    if report:
        with open(os.path.join(out_path, FAILURES_FILE), "w", newline="",
                  encoding="utf-8") as fp:
            writer = csv.writer(fp)
            writer.writerow(["id", "path", "error"])
            writer.writerows((rows[i].id, rows[i].file, reason)
                             for i, reason in sorted(failures.items()))
    shutil.rmtree(partial)
    return store, report


def _run_encode(args):
    from .._encoder import TSESlidingEncoder
    from ..encoders import HuggingFaceVideoEncoder

    window = [float(w) if "." in w else int(w) for w in args.window.split(",")]
    tse_encoder = TSESlidingEncoder(
        HuggingFaceVideoEncoder(args.encoder, output=args.output),
        window=window[0] if len(window) == 1 else window,
        stride=float(args.stride) if "." in args.stride else int(args.stride),
        padding=args.padding, clip_length=args.clip_length, batch_size=args.batch_size,
        device=args.device, n_jobs=args.workers,
    )
    stats = EncodeStats()
    store, failures = encode_videos(args.videos, tse_encoder, args.out, fps=args.fps,
                                    seek=args.seek, bf16=args.bf16, verbose=1, stats=stats)
    for video_id, reason in failures:
        print(f"sktdtw encode: failed: {video_id}: {reason}", file=sys.stderr)
    print(f"store {store.path}: {len(store)} videos of {store.n_features} features; "
          f"{len(failures)} failed{' (see failures.csv there)' if failures else ''}; "
          f"{stats.windows} windows in {stats.total_seconds:.1f} s")
    return 0


def add_encode_command(commands, guarded):
    """Add ``sktdtw encode`` to the subparsers ``commands`` (errors reported by ``guarded``)."""
    encode = commands.add_parser(
        "encode", help="encode the video files of a CSV manifest into a TSE store",
        description=(
            "Decode every video of a CSV manifest (id,path,label[,split]) and encode it with "
            "a local transformers checkpoint (VideoMAE, TimeSformer or ViViT) over a sliding "
            "window into an on-disk TSE store. Finished videos are kept in <out>.partial: "
            "run the same command again after an interruption to resume. Videos that cannot "
            "be decoded are skipped and listed in failures.csv in the store."
        ),
    )
    encode.add_argument("--videos", required=True, metavar="CSV", help="the manifest")
    encode.add_argument("--encoder", required=True, metavar="DIR",
                        help="checkpoint directory (save_pretrained output)")
    encode.add_argument("--out", required=True, metavar="DIR", help="the store to write")
    encode.add_argument("--output", choices=("both", "embedding", "logits"), default="both",
                        help="per window: pooled embedding and logits (default), or one")
    encode.add_argument("--window", default="0.2",
                        help="frames (int) or fraction (float); comma-separated widths "
                             "need --padding same (default: 0.2)")
    encode.add_argument("--stride", default="0.025", help="frames or fraction (default 0.025)")
    encode.add_argument("--padding", choices=("valid", "same"), default="valid")
    encode.add_argument("--clip-length", type=int, default=None,
                        help="frames per clip (VideoMAE, ViViT: the checkpoint's num_frames)")
    encode.add_argument("--fps", type=float, default=None, help="resample to this frame rate")
    encode.add_argument("--seek", action="store_true",
                        help="seek over long unneeded stretches (sparse windows)")
    encode.add_argument("--batch-size", type=int, default=32, help="windows per model call")
    encode.add_argument("--workers", type=int, default=2, help="decoding threads")
    encode.add_argument("--device", default="auto", help="torch device (default: auto)")
    encode.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA)")
    encode.set_defaults(run=guarded(_run_encode))
