"""The ``sktdtw`` command line: ``demo``, ``build-store``, ``fit``, ``predict``, ``evaluate``
and ``encode``.

Only the standard library is imported before the arguments are parsed: PyTorch and
scikit-learn are loaded by the command that runs, so that ``sktdtw --help`` answers at once.
The user's errors (invalid arguments or data, files that cannot be read or written) are
reported as one line with exit status 2; any other exception is a bug and propagates with
its traceback.
"""

import argparse
import sys

from .. import __version__
from .._errors import InputError
from .encode_command import BUILTIN_ENCODERS, run_encode
from .store_commands import TOP_K, run_build_store, run_evaluate, run_fit, run_predict

__all__ = ["build_parser", "main"]

# The demo writes this figure (sktdtw._cli.demo).
FIGURE_NAME = "dejavid_demo.png"
# len(sktdtw.datasets._videos.ACTION_ORDERS), the orders of its three motions (checked by
# the tests), written out so that building the parser imports nothing heavy.
_N_ACTION_ORDERS = 6
# Exception types that are the user's to fix besides InputError and OSError, by module:
# a module that is not loaded cannot have raised its type.
_USER_ERROR_TYPES = (
    ("sklearn.utils._param_validation", "InvalidParameterError"),  # a bad estimator option
    ("sktdtw.dtw", "DistanceOverflowError"),  # values too large for float32 distances
)


def _is_user_error(exc):
    """Whether ``exc`` is the user's to fix rather than a bug of sktdtw."""
    if isinstance(exc, (InputError, OSError)):
        return True
    return any(
        isinstance(exc, getattr(sys.modules.get(module), name, ()))
        for module, name in _USER_ERROR_TYPES
    )


def main(argv=None):
    """Run the ``sktdtw`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 on a user error (reported as one line on stderr).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = build_parser(estimator_options=command == "fit").parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"sktdtw {args.command}: interrupted{_resume_hint(args)}", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    except Exception as exc:
        if not _is_user_error(exc):
            raise
        message = " ".join(str(exc).split())
        print(f"sktdtw {args.command}: error: {message}", file=sys.stderr)
        return 2


# ---------------------------------------------------------------- argument types


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def _frames_or_fraction(text):
    """An int (frames) or, with a decimal point, a float (a fraction of the video)."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected frames (an int) or a fraction (a float such as 0.2), got {text!r}"
        ) from None


def _frame_size(text):
    """N (the shorter edge) or HxW (height x width)."""
    try:
        size = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) not in (1, 2) or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"expected N (the shorter edge) or HxW (height x width), integers >= 1, got {text!r}")
    return size[0] if len(size) == 1 else size


def _widths(text):
    """One window width, or several separated by commas."""
    widths = [_frames_or_fraction(width) for width in text.split(",")]
    return widths[0] if len(widths) == 1 else widths


# ---------------------------------------------------------------- the parser


def _resume_hint(args):
    """What an interrupted ``fit`` with a checkpoint keeps, and how to resume it."""
    checkpoint = getattr(args, "param_checkpoint", None)
    if checkpoint is None:
        return ""
    return (f"; {checkpoint!r} keeps the epochs the final model finished (the cross-fits "
            "before it are run again): the same command resumes from it")


def build_parser(estimator_options=True):
    """The ``sktdtw`` parser.

    Parameters
    ----------
    estimator_options : bool, default=True
        Add ``fit``'s estimator options; building them imports the estimator (hence
        PyTorch), so :func:`main` leaves them out unless ``fit`` is the command.

    Returns
    -------
    parser : argparse.ArgumentParser

    Examples
    --------
    >>> args = build_parser().parse_args(["fit", "--store", "S", "--out", "m.joblib",
    ...                                   "--max-epochs", "2", "--no-learn-weights"])
    >>> args.param_max_epochs, args.param_learn_weights
    (2, False)
    """
    parser = argparse.ArgumentParser(
        prog="sktdtw",
        description="DejaVid: learned weighted DTW over temporal sequences of embeddings.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo(commands)
    _add_store_commands(commands, estimator_options)
    _add_encode(commands)
    return parser


class _DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: ...)`` to an option's help unless the help states its default
    already or there is none to state (``None``, a flag's ``False``)."""

    def _get_help_string(self, action):
        stated = "default" in (action.help or "")
        if stated or action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _add_demo(commands):
    demo = commands.add_parser(
        "demo",
        help="classify synthetic action videos with DejaVid and a mean-pooling baseline",
        description=(
            "Generate grayscale videos of a disc doing the same three motions (right and "
            "back, down and back, grow and shrink) in a class-specific order; encode each "
            "video into a temporal sequence of embeddings with a frozen random 3-D CNN over "
            "a sliding window (8 frames, stride 2); then fit "
            "Pipeline([TSESlidingEncoder, DejaVidClassifier]) and the mean-pooling baseline "
            "(the same embeddings averaged over the windows, then a standardised logistic "
            "regression) on one half, score both on the other half, print a table, and save "
            "a figure of the learned weights and of one video's alignment to its class "
            "centroid. Averaging discards the order that defines the classes, so the "
            "baseline stays near chance while DejaVid does not."
        ),
        formatter_class=_DefaultsHelpFormatter,
    )
    demo.add_argument("--n-videos", type=_positive_int, default=400,
                      help="number of videos, split in half for training and testing")
    demo.add_argument("--n-classes", type=int, choices=range(2, _N_ACTION_ORDERS + 1),
                      default=4, metavar=f"{{2..{_N_ACTION_ORDERS}}}",
                      help="number of classes (motion orders)")
    demo.add_argument("--test-size", type=_fraction, default=0.5,
                      help="fraction of the videos held out for testing")
    # The estimators' options are checked by the estimators' own parameter constraints.
    demo.add_argument("--max-epochs", type=int, default=None,
                      help="DejaVid training epochs (default: DejaVidClassifier's)")
    demo.add_argument("--centroid-length", type=int, default=None,
                      help="steps per class centroid (default: DejaVidClassifier's 'auto', "
                           "half the median number of windows)")
    demo.add_argument("--learning-rate", type=float, default=None,
                      help="learning rate of the log-weights (default: DejaVidClassifier's)")
    demo.add_argument("--seed", type=int, default=0,
                      help="seed of the videos, the split and the classifier")
    demo.add_argument("--out", default=".", metavar="DIR",
                      help=f"directory for the figure {FIGURE_NAME} (created if missing)")
    demo.add_argument("--no-figure", action="store_true", help="do not write the figure")
    demo.add_argument("--n-jobs", type=int, default=None,
                      help="threads encoding videos in parallel (default: 1)")
    demo.add_argument("--verbose", type=int, default=0,
                      help=">= 1 shows progress bars for encoding and training")
    demo.set_defaults(run=_run_demo)


def _add_store_commands(commands, estimator_options):
    """``build-store``, ``fit``, ``predict`` and ``evaluate``."""
    _add_build_store(commands)
    _add_fit(commands, estimator_options)
    _add_predict(commands)
    _add_evaluate(commands)


def _add_build_store(commands):
    build = commands.add_parser(
        "build-store", help="build a TSE store from per-sample .npy/.pt files and a CSV manifest",
        description=(
            "Build an on-disk TSE store from a CSV manifest with the columns id,path[,label]"
            "[,split] (no label column: an unlabelled store, e.g. to predict), one row per "
            "sample, whose path is a .npy or .pt file holding one "
            "(T, n_features) array. Every row is checked first (a bad row is named), then the "
            "series are copied one at a time into a temporary directory renamed to --out."
        ),
    )
    build.add_argument("--manifest", required=True, metavar="CSV", help="the manifest")
    build.add_argument("--out", required=True, metavar="DIR",
                       help="directory of the new store (must not exist, unless --overwrite)")
    build.add_argument("--overwrite", action="store_true",
                       help="replace an existing store at --out (never another directory); "
                            "the previous store stays readable until the new one is complete")
    _add_root(build)
    build.add_argument("-v", "--verbose", action="count", default=0, help="show progress bars")
    build.set_defaults(run=run_build_store)


def _add_fit(commands, estimator_options):
    fit = commands.add_parser(
        "fit", help="fit a DejaVidClassifier on a TSE store and save it with joblib",
        description=(
            "Fit a DejaVidClassifier on the series and labels of a TSE store (or of one of "
            "its splits) and write it with joblib. Launched by torchrun (WORLD_SIZE > 1), "
            "the processes join a process group (NCCL on CUDA devices, Gloo on CPUs) and "
            "train data-parallel; rank 0 writes the model."
        ),
    )
    fit.add_argument("--store", required=True, metavar="DIR", help="the TSE store")
    fit.add_argument("--out", required=True, metavar="FILE", help="model file to write")
    fit.add_argument("--split", default=None,
                     help="fit on this split of the store only (default: every sample)")
    if estimator_options:
        from .estimator_options import add_estimator_options  # imports the estimator

        add_estimator_options(fit)
    fit.set_defaults(run=run_fit)


def _add_model_store_split(parser, verb):
    """``--model``, ``--store`` and ``--split`` of a command that ``verb``s a fitted model on
    a store."""
    parser.add_argument("--model", required=True, metavar="FILE",
                        help="model written by fit: a joblib pickle, and loading one runs "
                             "whatever code it names, so load models only from trusted "
                             "sources")
    parser.add_argument("--store", required=True, metavar="DIR", help="the TSE store")
    parser.add_argument("--split", default=None,
                        help=f"{verb} this split of the store only (default: every sample)")


def _add_predict(commands):
    predict = commands.add_parser(
        "predict", help="write the predictions of a fitted model on a TSE store as CSV",
        description=(
            "Predict the series of a TSE store (or of one of its splits) with a model written "
            "by fit; the CSV has the columns id, predicted, then proba_<class> for every class."
        ),
    )
    _add_model_store_split(predict, "predict")
    predict.add_argument("--out", required=True, metavar="CSV", help="predictions file to write")
    predict.set_defaults(run=run_predict)


def _add_evaluate(commands):
    evaluate = commands.add_parser(
        "evaluate", help="top-1/top-5 accuracy and confusion matrix of a model on a TSE store",
        description=(
            f"Score a model written by fit on the labelled series of a TSE store (or of one "
            f"of its splits): top-1 and top-{TOP_K} accuracy over predict_proba (k capped at "
            f"the number of classes), printed and written to metrics.json, and the confusion "
            f"matrix (rows: true labels, columns: predicted) to confusion_matrix.csv."
        ),
    )
    _add_model_store_split(evaluate, "evaluate on")
    evaluate.add_argument("--out-dir", default=".", metavar="DIR",
                          help="directory for metrics.json and confusion_matrix.csv (default: "
                               "the current directory)")
    evaluate.set_defaults(run=run_evaluate)


def _add_root(parser):
    """``--root``, for the relative paths of a manifest, and ``--allow-outside-root``."""
    parser.add_argument("--root", metavar="DIR", default=None,
                        help="directory that relative paths start from (default: the "
                             "manifest's directory)")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="read files outside the root too (by default a path leading out "
                             "of it, by .., an absolute path, ~ or a symbolic link, is an "
                             "error)")


def _add_encode(commands):
    encode = commands.add_parser(
        "encode", help="encode the video files of a CSV manifest into a TSE store",
        description=(
            "Decode every video of a CSV manifest (id,path[,label][,split]; no label column: "
            "an unlabelled store, to predict) and encode it with a frozen encoder over a "
            "sliding window into an on-disk TSE store. Finished videos are kept in "
            "<out>.partial: run the same command again after an interruption to resume "
            "(other settings are refused). Videos that cannot be decoded are skipped and "
            "listed in failures.csv in the store. Needs PyAV (pip install av), and "
            "transformers and pillow for a checkpoint."
        ),
    )
    builtins = ", ".join(BUILTIN_ENCODERS)
    encode.add_argument("--videos", required=True, metavar="CSV", help="the manifest")
    encode.add_argument("--encoder", required=True, metavar="ENCODER",
                        help=f"{builtins} (sktdtw.encoders.RandomConv3dEncoder, random "
                             "weights); MODULE:CALLABLE, an importable callable that, called "
                             "with no arguments, returns a torch.nn.Module mapping RGB clips "
                             "(n, T, H, W, 3), floats in [0, 255], to (n, n_features); or a "
                             "local Hugging Face checkpoint folder (save_pretrained output of "
                             "VideoMAE, TimeSformer or ViViT; ./DIR for a folder whose name "
                             "reads as one of the others)")
    encode.add_argument("--out", required=True, metavar="DIR",
                        help="the store to write (must not exist, unless --overwrite)")
    encode.add_argument("--overwrite", action="store_true",
                        help="replace an existing store at --out (never another directory); "
                             "the previous store stays readable until the new one is complete")
    encode.add_argument("--output", choices=("both", "embedding", "logits"), default=None,
                        help="a checkpoint's output per window: pooled embedding and logits "
                             "(default: both), or one")
    encode.add_argument("--window", type=_widths, default="0.2",
                        help="frames (int) or fraction (float); comma-separated widths "
                             "need --padding same (default: 0.2)")
    encode.add_argument("--stride", type=_frames_or_fraction, default="0.025",
                        help="frames or fraction (default 0.025)")
    encode.add_argument("--padding", choices=("valid", "same"), default="valid")
    encode.add_argument("--clip-length", type=int, default=None,
                        help="frames per clip (default: the encoder's num_frames, a "
                             "checkpoint's, which VideoMAE and ViViT require; without one, "
                             "every frame of the window)")
    encode.add_argument("--size", type=_frame_size, default=None, metavar="N|HxW",
                        help="resize frames on decode: N the shorter edge, or height x width "
                             "(default: the encoder's frame_size, a checkpoint's image "
                             "processor's; without one, the native size)")
    _add_root(encode)
    encode.add_argument("--fps", type=float, default=None, help="resample to this frame rate")
    encode.add_argument("--seek", action="store_true",
                        help="seek over long unneeded stretches (sparse windows)")
    encode.add_argument("--batch-size", type=int, default=32,
                        help="most windows per model call (default: 32)")
    encode.add_argument("--working-memory", type=float, default=None, metavar="MIB",
                        help="memory budget of the windows in flight, in MiB; a model call "
                             "takes at most a quarter of it (default: scikit-learn's "
                             "working_memory, 1024)")
    encode.add_argument("--workers", type=int, default=2, help="decoding threads")
    encode.add_argument("--device", default="auto", help="torch device (default: auto)")
    encode.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA)")
    encode.add_argument("--allow-failures", action="store_true",
                        help="exit with status 0 even if some videos failed (listed in the "
                             "store's failures.csv); by default that is status 1")
    encode.set_defaults(run=run_encode)


# ---------------------------------------------------------------- commands


def _run_demo(args):
    from .demo import run_demo  # imports PyTorch and scikit-learn

    return run_demo(args, FIGURE_NAME)
