"""The work of ``sktdtw encode`` (its options are in :mod:`sktdtw._cli`): the video files
of a manifest into a TSE store.

Its modules (PyAV, transformers, PyTorch) are imported when the command runs, so that
building the parser stays cheap and a missing optional extra is one line of error.
"""

import sys

from ._errors import InputError

__all__ = ["run_encode"]


def run_encode(args):
    """``sktdtw encode``; returns the exit status."""
    from .encoders._huggingface import _import_transformers
    from .video._decode import _import_av

    try:
        _import_transformers()  # its extra, [transformers], includes PyAV too
        _import_av()
    except ImportError as exc:
        raise InputError(f"{exc}") from exc

    from ._sliding_encoder import TSESlidingEncoder
    from .encoders import HuggingFaceVideoEncoder
    from .video._pipeline import EncodeStats
    from .video._store import encode_videos

    encoder = HuggingFaceVideoEncoder(args.encoder, output=args.output)
    tse_encoder = TSESlidingEncoder(
        encoder, window=args.window, stride=args.stride, padding=args.padding,
        clip_length=encoder.num_frames if args.clip_length is None else args.clip_length,
        batch_size=args.batch_size, device=args.device, n_jobs=args.workers,
    )
    stats = EncodeStats()
    store, failures = encode_videos(
        args.videos, tse_encoder, args.out, fps=args.fps, seek=args.seek, root=args.root,
        allow_outside_root=args.allow_outside_root, bf16=args.bf16, verbose=1, stats=stats,
    )
    for video_id, reason in failures:
        print(f"sktdtw encode: failed: {video_id}: {reason}", file=sys.stderr)
    print(f"store {store.path}: {len(store)} videos of {store.n_features} features; "
          f"{len(failures)} failed{' (see failures.csv there)' if failures else ''}; "
          f"{stats.windows} windows in {stats.total_seconds:.1f} s")
    # A failed video is not an error of the command line (the others are in the store),
    # but a script must not take a partial store for a whole one unless it said so.
    return 1 if failures and not args.allow_failures else 0
