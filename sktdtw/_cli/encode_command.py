"""The work of ``sktdtw encode`` (its options are in :mod:`sktdtw._cli`): the video files
of a manifest into a TSE store.

Its modules (PyAV, PyTorch, transformers for a checkpoint, the module of a
``MODULE:CALLABLE``) are imported when the command runs, so that building the parser stays
cheap and a missing optional extra is one line of error.
"""

import functools
import importlib
import inspect
import re
import sys

from .._errors import InputError
from .store_commands import refuse_existing_store

__all__ = ["BUILTIN_ENCODERS", "run_encode"]

# The encoders shipped with sktdtw that --encoder takes by name, as the MODULE:CALLABLE each
# stands for.
BUILTIN_ENCODERS = {"random-conv3d": "sktdtw.encoders:RandomConv3dEncoder"}
_DOTTED = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
# MODULE:CALLABLE, both dotted names: no path reads so (not even C:\ on Windows).
_FACTORY = re.compile(rf"{_DOTTED}:{_DOTTED}")


def _encoder_from_factory(spec):
    """The ``torch.nn.Module`` that the callable named ``MODULE:CALLABLE`` returns when
    called with no arguments."""
    import torch

    module_name, name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(f"--encoder {spec}: module {module_name} cannot be imported: {exc} "
                         "(it must be on the module search path, e.g. PYTHONPATH=.)") from exc
    try:
        factory = functools.reduce(getattr, name.split("."), module)
    except AttributeError as exc:
        raise InputError(f"--encoder {spec}: module {module_name} has no attribute "
                         f"{name}") from exc
    if not callable(factory):
        raise InputError(f"--encoder {spec}: {name} is not callable (its type is "
                         f"{type(factory).__name__})")
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise InputError(f"--encoder {spec}: {name} cannot be called with no arguments: "
                         f"{exc}") from exc
    except ValueError:  # no signature to check (some built-ins): the call tells
        pass
    encoder = factory()
    if not isinstance(encoder, torch.nn.Module):
        raise InputError(f"--encoder {spec}: {name}() returned an object of type "
                         f"{type(encoder).__name__}, not a torch.nn.Module")
    return encoder


def _window_encoder(args):
    """The encoder ``--encoder`` names: built-in, ``MODULE:CALLABLE`` or a checkpoint."""
    from ..video._decode import _import_av

    factory = BUILTIN_ENCODERS.get(args.encoder, args.encoder)
    checkpoint = _FACTORY.fullmatch(factory) is None
    try:
        if checkpoint:
            from ..encoders._huggingface import _import_transformers

            _import_transformers()  # its extra, [transformers], includes PyAV too
        _import_av()
    except ImportError as exc:
        raise InputError(f"{exc}") from exc
    if checkpoint:
        from ..encoders import HuggingFaceVideoEncoder

        return HuggingFaceVideoEncoder(args.encoder, output=args.output or "both")
    if args.output is not None:
        raise InputError(f"--output chooses among a Hugging Face checkpoint's outputs; "
                         f"--encoder {args.encoder} is not one")
    return _encoder_from_factory(factory)


def run_encode(args):
    """``sktdtw encode``; returns the exit status."""
    refuse_existing_store(args.out, args.overwrite)  # now, not after loading the encoder
    encoder = _window_encoder(args)

    from .. import TSESlidingEncoder
    from ..video import encode_videos
    from ..video._pipeline import EncodeStats

    clip_length = args.clip_length
    if clip_length is None:  # the length a checkpoint requires, if the encoder has one
        clip_length = getattr(encoder, "num_frames", None)
    tse_encoder = TSESlidingEncoder(
        encoder, window=args.window, stride=args.stride, padding=args.padding,
        clip_length=clip_length, batch_size=args.batch_size,
        working_memory=args.working_memory, device=args.device, n_jobs=args.workers,
    )
    stats = EncodeStats()
    store, failures = encode_videos(
        args.videos, tse_encoder, args.out, fps=args.fps, size=args.size, seek=args.seek,
        root=args.root, allow_outside_root=args.allow_outside_root, bf16=args.bf16,
        overwrite=args.overwrite, verbose=1, stats=stats,
    )
    for video_id, reason in failures:
        print(f"sktdtw encode: failed: {video_id}: {reason}", file=sys.stderr)
    unlabelled = " (unlabelled)" if store.labels is None else ""
    print(f"store {store.path}: {len(store)} videos of {store.n_features} features"
          f"{unlabelled}; {len(failures)} failed"
          f"{' (see failures.csv there)' if failures else ''}; "
          f"{stats.windows} windows in {stats.total_seconds:.1f} s")
    # A failed video is not an error of the command line (the others are in the store),
    # but a script must not take a partial store for a whole one unless it said so.
    return 1 if failures and not args.allow_failures else 0
