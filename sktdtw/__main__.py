"""Command line: ``python -m sktdtw demo`` (or ``sktdtw demo``), the package's main job.

Only the standard library is imported before the arguments are parsed: PyTorch and
scikit-learn are loaded by the command that runs, so ``sktdtw --help`` answers at once.
"""

import argparse
import os
import sys
import time

from ._cli import add_commands

__all__ = ["main"]

# The demo writes this figure (sktdtw._demo).
FIGURE_NAME = "dejavid_demo.png"
# len(sktdtw.datasets._videos.ACTION_ORDERS), the orders of its three motions (checked by
# the tests), written out so that building the parser imports nothing heavy.
_N_ACTION_ORDERS = 6


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number strictly between 0 and 1, got {text}")
    return value


def _build_parser(command=None):
    """The parser; ``command`` (the one on the command line, if known) is the only one
    whose options need heavy imports (the estimator options of ``fit``) to be built."""
    parser = argparse.ArgumentParser(
        prog="sktdtw",
        description="DejaVid: learned weighted DTW over temporal sequences of embeddings.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--n-videos", type=_positive_int, default=400,
                      help="number of videos, split in half for training and testing")
    demo.add_argument("--n-classes", type=int, choices=range(2, _N_ACTION_ORDERS + 1),
                      default=4, metavar=f"{{2..{_N_ACTION_ORDERS}}}",
                      help="number of classes (motion orders)")
    demo.add_argument("--test-size", type=_fraction, default=0.5,
                      help="fraction of the videos held out for testing")
    demo.add_argument("--max-epochs", type=_positive_int, default=None,
                      help="DejaVid training epochs (default: DejaVidClassifier's)")
    demo.add_argument("--centroid-length", type=_positive_int, default=None,
                      help="steps per class centroid (default: DejaVidClassifier's 'auto', "
                           "half the median number of windows)")
    demo.add_argument("--learning-rate", type=_positive_float, default=None,
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
    add_commands(commands, estimator_options=command == "fit")
    return parser


def _run_demo(args):
    from ._demo import run_demo  # heavy imports only when the demo runs

    return run_demo(args)


def main(argv=None):
    """Run the ``sktdtw`` command line; returns the exit status.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``None`` reads ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    args = _build_parser(command).parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
