"""Command line over TSE stores: ``build-store``, ``fit``, ``predict``, ``evaluate``.

``fit`` has one option per :class:`DejaVidClassifier` parameter, generated from its
``get_params()`` and ``_parameter_constraints`` and documented from its docstring, so a new
parameter becomes an option without touching this module.

PyTorch, scikit-learn and NumPy are imported by the commands that use them, not at import
time, so that the parser (``sktdtw --help``) is built in a fraction of a second.
"""

import argparse
import csv
import functools
import inspect
import json
import os
import re
import sys
import time
from numbers import Integral

from ._atomic import atomic_file

__all__ = ["add_commands"]

# Namespace prefix of the estimator options, apart from the command's own (--store, --out...).
_PARAM = "param_"
_TOP_K = 5


class CommandError(Exception):
    """A user error reported as one line on stderr with exit status 2."""


def _guarded(run):
    """Report user errors as one line on stderr and exit status 2, without a traceback."""

    @functools.wraps(run)
    def guarded(args):
        try:
            return run(args)
        except (CommandError, ValueError, OSError) as exc:
            message = " ".join(str(exc).split())
            print(f"sktdtw {args.command}: error: {message}", file=sys.stderr)
            return 2

    return guarded


# ---------------------------------------------------------------- estimator options


def _parameter_docs(docstring):
    """The first sentence of each parameter's numpydoc entry, as plain text."""
    lines = inspect.cleandoc(docstring).splitlines()
    start = lines.index("Parameters") + 2  # skip the underline
    docs, name = {}, None
    for line in lines[start:]:
        if line and not line[0].isspace():
            match = re.match(r"(\w+)\s*:", line)
            if not match:  # the next section's title
                break
            name = match.group(1)
            docs[name] = []
        elif name is not None and line.strip():
            docs[name].append(line.strip())
    sentences = {}
    for name, words in docs.items():
        text = " ".join(words)
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
        match = re.match(r"(.*?\.)(\s|$)", text)
        sentences[name] = match.group(1) if match else text
    return sentences


def _named(function, name):
    # argparse names the type in "invalid <name> value" messages.
    function.__name__ = name
    return function


def _nullable(convert, name):
    def parse(text):
        return None if text.lower() == "none" else convert(text)

    return _named(parse, f"{name} or none")


def _choice(options, nullable):
    allowed = sorted(options) + (["none"] if nullable else [])

    def parse(text):
        if nullable and text.lower() == "none":
            return None
        if text not in options:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(allowed)})"
            )
        return text

    return _named(parse, "choice"), "{" + ",".join(allowed) + "}"


def _option(constraints, default):
    """``add_argument`` keywords for a parameter, from its scikit-learn constraints."""
    from sklearn.utils._param_validation import Interval, StrOptions

    nullable = None in constraints
    words = [c for c in constraints if isinstance(c, StrOptions)]
    numbers = [c for c in constraints if isinstance(c, Interval)]
    if words and numbers:  # e.g. an int or "auto"
        convert = int if numbers[0].type is Integral else float
        options = sorted(words[0].options)

        def number_or_word(text):
            return text if text in options else convert(text)

        return {"type": _named(number_or_word, convert.__name__),
                "metavar": f"{convert.__name__.upper()}|{'|'.join(options)}"}
    for constraint in constraints:
        if constraint == "boolean":
            return {"action": argparse.BooleanOptionalAction}
        if isinstance(constraint, StrOptions):
            parse, metavar = _choice(constraint.options, nullable)
            return {"type": parse, "metavar": metavar}
        if isinstance(constraint, Interval):
            number = (int, "int") if constraint.type is Integral else (float, "float")
        elif constraint in ("verbose", Integral):
            number = (int, "int")
        elif constraint == "random_state":
            number, nullable = (int, "int"), True
        elif constraint is str:
            number = (str, "str")
        else:
            continue
        convert, name = number
        parse = _nullable(convert, name) if nullable else convert
        return {"type": parse, "metavar": name.upper() + ("|none" if nullable else "")}
    # Unknown constraints: go by the default value.
    if isinstance(default, bool):
        return {"action": argparse.BooleanOptionalAction}
    convert = type(default) if isinstance(default, (int, float)) else str
    return {"type": _nullable(convert, convert.__name__) if default is None or nullable
            else convert}


def _shown(value):
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _add_estimator_options(parser):
    from ._classifier import DejaVidClassifier

    group = parser.add_argument_group(
        "estimator options",
        "DejaVidClassifier parameters, one option each (use none for None); unset options "
        "keep the estimator's defaults",
    )
    docs = _parameter_docs(DejaVidClassifier.__doc__)
    constraints = DejaVidClassifier._parameter_constraints
    for name, default in DejaVidClassifier().get_params().items():
        help_text = f"{docs.get(name, name)} (default: {_shown(default)})"
        group.add_argument(
            "--" + name.replace("_", "-"), dest=_PARAM + name, default=argparse.SUPPRESS,
            help=help_text.replace("%", "%%"), **_option(constraints.get(name, []), default),
        )


def _estimator_params(args):
    return {dest[len(_PARAM):]: value for dest, value in vars(args).items()
            if dest.startswith(_PARAM)}


# ---------------------------------------------------------------- shared steps


def _open(path, split):
    from .io import open_store

    store = open_store(path)
    return store if split is None else store.split(split)


def _load_model(path):
    import joblib
    from sklearn.utils.validation import check_is_fitted

    if not os.path.isfile(path):
        raise CommandError(f"no model file at {path}")
    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling raises anything (EOFError, pickle errors, ...)
        raise CommandError(f"cannot load a model from {path}: {exc}") from exc
    if not hasattr(model, "predict_proba"):
        raise CommandError(f"{path} holds a {type(model).__name__}, not a classifier")
    check_is_fitted(model)
    return model


def _labels_of(store, command):
    if store.labels is None:
        raise CommandError(f"the store {store.path} has no labels; {command} needs them")
    return store.labels


def _write_atomically(path, write, mode="w"):
    """Write ``path`` through ``write(file)`` to a temporary sibling, then rename it."""
    with atomic_file(path, mode) as fp:
        write(fp)


def _init_distributed(device):
    """Join the process group when launched by torchrun; returns whether this call did."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not torch.distributed.is_available():
        return False
    if torch.distributed.is_initialized():
        return False
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        # One GPU per process: torchrun's LOCAL_RANK makes plain "cuda" this rank's GPU.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


# ---------------------------------------------------------------- commands


@_guarded
def _run_build_store(args):
    import numpy as np

    from .io import build_store

    if os.path.lexists(args.out) and not args.overwrite:
        raise CommandError(f"{os.path.abspath(args.out)} already exists; pass --overwrite to "
                           "replace it")
    start = time.perf_counter()
    store = build_store(args.manifest, args.out, root=args.root, overwrite=args.overwrite,
                        verbose=args.verbose)
    parts = [f"{len(store)} series of {store.n_features} features "
             f"({int(store.lengths.sum())} time steps)"]
    if store.splits is not None:
        names, counts = np.unique(store.splits, return_counts=True)
        parts.append("splits " + ", ".join(f"{n} {c}" for n, c in zip(names, counts)))
    print(f"store {store.path}: {'; '.join(parts)}; built in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


@_guarded
def _run_fit(args):
    import joblib
    import torch

    from ._checkpoint import read_checkpoint
    from ._classifier import DejaVidClassifier

    store = _open(args.store, args.split)
    labels = _labels_of(store, "fit")
    model = DejaVidClassifier(**_estimator_params(args))
    checkpoint = None if model.checkpoint is None else read_checkpoint(model.checkpoint)
    distributed = _init_distributed(model.device)
    try:
        start = time.perf_counter()
        model.fit(store, labels)
        seconds = time.perf_counter() - start
        if not distributed or torch.distributed.get_rank() == 0:
            _write_atomically(args.out, lambda fp: joblib.dump(model, fp), mode="wb")
            print(_fit_summary(model, len(store), checkpoint, seconds, args.out))
    finally:
        if distributed:
            torch.distributed.destroy_process_group()
    return 0


def _fit_summary(model, n_samples, checkpoint, seconds, out):
    """What ``fit`` did: trained, resumed a checkpoint, or found it finished."""
    done = 0 if checkpoint is None else len(checkpoint["history"]["loss"])
    if checkpoint is not None and done == len(model.history_["loss"]):
        return (f"checkpoint {model.checkpoint} already holds a finished fit ({done} epochs): "
                f"nothing to train; its model written to {out}")
    resumed = f", resumed after epoch {done} of checkpoint {model.checkpoint}" if done else ""
    return (f"fitted on {n_samples} series, {len(model.classes_)} classes, "
            f"{model.n_epochs_} epochs in {seconds:.1f} s{resumed}; model written to {out}")


@_guarded
def _run_predict(args):
    model = _load_model(args.model)
    store = _open(args.store, args.split)
    proba = model.predict_proba(store)
    # The most probable class is the nearest centroid: the softmax is increasing in the
    # logits, which decrease with the distance.
    predicted = model.classes_[proba.argmax(1)]

    def write(fp):
        writer = csv.writer(fp)
        writer.writerow(["id", "predicted"] + [f"proba_{c}" for c in model.classes_])
        for sample_id, label, row in zip(store.ids, predicted, proba):
            writer.writerow([sample_id, label] + [repr(float(p)) for p in row])

    _write_atomically(args.out, write)
    print(f"predictions for {len(store)} series written to {args.out}")
    return 0


@_guarded
def _run_evaluate(args):
    import numpy as np

    model = _load_model(args.model)
    store = _open(args.store, args.split)
    labels = _labels_of(store, "evaluate").tolist()
    proba = model.predict_proba(store)
    classes = model.classes_.tolist()
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({label for label in labels if label not in index}, key=str)
    if unknown:
        print(f"sktdtw evaluate: warning: {len(unknown)} label(s) of the store are not classes "
              f"of the model (counted as errors): {', '.join(map(str, unknown[:10]))}",
              file=sys.stderr)
    every_label = classes + unknown
    index.update({label: len(classes) + i for i, label in enumerate(unknown)})
    truth = np.array([index[label] for label in labels], dtype=np.int64)
    k = min(_TOP_K, len(classes))
    # A stable sort on -proba ranks ties like argmax does (first class first).
    ranked = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    metrics = {
        "split": args.split,
        "n_samples": len(store),
        "n_classes": len(classes),
        "top1_accuracy": float(np.mean(ranked[:, 0] == truth)),
        f"top{_TOP_K}_accuracy": float(np.mean((ranked == truth[:, None]).any(1))),
        f"top{_TOP_K}_k": k,
    }
    confusion = np.zeros((len(every_label), len(every_label)), dtype=np.int64)
    np.add.at(confusion, (truth, ranked[:, 0]), 1)

    def write_confusion(fp):
        writer = csv.writer(fp)
        writer.writerow(["true\\predicted"] + every_label)
        for label, row in zip(every_label, confusion.tolist()):
            writer.writerow([label] + row)

    metrics_file = os.path.join(args.out_dir, "metrics.json")
    confusion_file = os.path.join(args.out_dir, "confusion_matrix.csv")
    _write_atomically(metrics_file, lambda fp: json.dump(metrics, fp, indent=2))
    _write_atomically(confusion_file, write_confusion)
    print(json.dumps(metrics, indent=2))
    print(f"written to {metrics_file} and {confusion_file}")
    return 0


def add_commands(commands, estimator_options=True):
    """Add ``build-store``, ``fit``, ``predict`` and ``evaluate`` to the ``sktdtw`` parser.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The subparsers of the ``sktdtw`` command line.
    estimator_options : bool, default=True
        Add ``fit``'s estimator options (this imports the estimator, hence PyTorch); the
        command line leaves them out unless ``fit`` is the command.

    Examples
    --------
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="sktdtw")
    >>> add_commands(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["fit", "--store", "S", "--out", "m.joblib",
    ...                           "--max-epochs", "2", "--no-learn-weights"])
    >>> args.param_max_epochs, args.param_learn_weights
    (2, False)
    """
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
    build.add_argument("--root", metavar="DIR", default=None,
                       help="directory that relative paths start from (default: the "
                            "manifest's directory)")
    build.add_argument("-v", "--verbose", action="count", default=0, help="show progress bars")
    build.set_defaults(run=_run_build_store)

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
        _add_estimator_options(fit)
    fit.set_defaults(run=_run_fit)

    predict = commands.add_parser(
        "predict", help="write the predictions of a fitted model on a TSE store as CSV",
        description=(
            "Predict the series of a TSE store (or of one of its splits) with a model written "
            "by fit; the CSV has the columns id, predicted, then proba_<class> for every class."
        ),
    )
    predict.add_argument("--model", required=True, metavar="FILE", help="model written by fit")
    predict.add_argument("--store", required=True, metavar="DIR", help="the TSE store")
    predict.add_argument("--split", default=None,
                         help="predict this split of the store only (default: every sample)")
    predict.add_argument("--out", required=True, metavar="CSV", help="predictions file to write")
    predict.set_defaults(run=_run_predict)

    evaluate = commands.add_parser(
        "evaluate", help="top-1/top-5 accuracy and confusion matrix of a model on a TSE store",
        description=(
            f"Score a model written by fit on the labelled series of a TSE store (or of one "
            f"of its splits): top-1 and top-{_TOP_K} accuracy over predict_proba (k capped at "
            f"the number of classes), printed and written to metrics.json, and the confusion "
            f"matrix (rows: true labels, columns: predicted) to confusion_matrix.csv."
        ),
    )
    evaluate.add_argument("--model", required=True, metavar="FILE", help="model written by fit")
    evaluate.add_argument("--store", required=True, metavar="DIR", help="the TSE store")
    evaluate.add_argument("--split", default=None,
                          help="evaluate on this split of the store only (default: every "
                               "sample)")
    evaluate.add_argument("--out-dir", default=".", metavar="DIR",
                          help="directory for metrics.json and confusion_matrix.csv (default: "
                               "the current directory)")
    evaluate.set_defaults(run=_run_evaluate)

    from ._encode_command import add_encode_command  # kept apart: it imports nothing heavy

    add_encode_command(commands, _guarded, CommandError)
