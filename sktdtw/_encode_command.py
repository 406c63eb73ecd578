"""``sktdtw encode``: the video files of a manifest into a TSE store.

Its modules (PyAV, transformers, PyTorch) are imported when the command runs, so that
building the parser stays cheap and a missing optional extra is one line of error.
"""

import sys

__all__ = ["add_encode_command"]


def _number(text, option):
    """An int (frames) or, with a decimal point, a float (fraction)."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise ValueError(f"{option} takes frames (an int) or a fraction (a float such as "
                         f"0.2), got {text!r}") from None


def _run_encode(args, error):
    from .encoders._huggingface import _import_transformers
    from .video._decode import _import_av

    try:
        _import_transformers()  # its extra, [transformers], includes PyAV too
        _import_av()
    except ImportError as exc:
        raise error(f"{exc}") from exc

    from ._encoder import TSESlidingEncoder
    from .encoders import HuggingFaceVideoEncoder
    from .video._pipeline import EncodeStats
    from .video._store import encode_videos

    window = [_number(w, "--window") for w in args.window.split(",")]
    encoder = HuggingFaceVideoEncoder(args.encoder, output=args.output)
    tse_encoder = TSESlidingEncoder(
        encoder,
        window=window[0] if len(window) == 1 else window, stride=_number(args.stride, "--stride"),
        padding=args.padding, clip_length=args.clip_length or encoder.num_frames, batch_size=args.batch_size,
        device=args.device, n_jobs=args.workers,
    )
    stats = EncodeStats()
    store, failures = encode_videos(args.videos, tse_encoder, args.out, fps=args.fps,
                                    seek=args.seek, root=args.root, bf16=args.bf16, verbose=1, stats=stats)
    for video_id, reason in failures:
        print(f"sktdtw encode: failed: {video_id}: {reason}", file=sys.stderr)
    print(f"store {store.path}: {len(store)} videos of {store.n_features} features; "
          f"{len(failures)} failed{' (see failures.csv there)' if failures else ''}; "
          f"{stats.windows} windows in {stats.total_seconds:.1f} s")
    return 0


def add_encode_command(commands, guarded, error):
    """Add ``sktdtw encode`` to the subparsers ``commands``; ``guarded`` reports the
    exceptions of type ``error`` (and user errors) as one line."""
    encode = commands.add_parser(
        "encode", help="encode the video files of a CSV manifest into a TSE store",
        description=(
            "Decode every video of a CSV manifest (id,path,label[,split]) and encode it with "
            "a local transformers checkpoint (VideoMAE, TimeSformer or ViViT) over a sliding "
            "window into an on-disk TSE store. Finished videos are kept in <out>.partial: "
            "run the same command again after an interruption to resume (other settings "
            "are refused). Videos that cannot be decoded are skipped and listed in "
            "failures.csv in the store. Needs pip install 'sktdtw[transformers]'."
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
                        help="frames per clip (default: the checkpoint's num_frames, which "
                             "VideoMAE and ViViT require)")
    encode.add_argument("--root", metavar="DIR", default=None,
                        help="directory that relative paths start from (default: the "
                             "manifest's directory)")
    encode.add_argument("--fps", type=float, default=None, help="resample to this frame rate")
    encode.add_argument("--seek", action="store_true",
                        help="seek over long unneeded stretches (sparse windows)")
    encode.add_argument("--batch-size", type=int, default=32, help="windows per model call")
    encode.add_argument("--workers", type=int, default=2, help="decoding threads")
    encode.add_argument("--device", default="auto", help="torch device (default: auto)")
    encode.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA)")
    encode.set_defaults(run=guarded(lambda args: _run_encode(args, error)))
