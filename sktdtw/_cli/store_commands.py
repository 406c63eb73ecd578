"""The work of ``sktdtw build-store``, ``fit``, ``predict`` and ``evaluate`` (their options
are in :mod:`sktdtw._cli`)."""

import json
import os
import sys
import time
import warnings

from .._atomic import atomic_file, check_writable
from .._csv import write_csv
from .._errors import InputError

__all__ = ["TOP_K", "refuse_existing_store", "run_build_store", "run_evaluate", "run_fit",
           "run_predict"]

# evaluate's top-k accuracy besides top-1.
TOP_K = 5


def _open(path, split):
    from ..io import open_store

    store = open_store(path)
    return store if split is None else store.split(split)


def _load_model(path, command):
    """The fitted classifier in the joblib file ``path``; a model saved by another sktdtw
    version is one line of warning on stderr."""
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from .._persistence import SktdtwVersionWarning

    if not os.path.isfile(path):
        raise InputError(f"no model file at {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SktdtwVersionWarning)
        try:
            model = joblib.load(path)
        except Exception as exc:  # unpickling raises anything (EOFError, pickle errors, ...)
            raise InputError(f"cannot load a model from {path}: {exc}") from exc
    for warning in caught:
        if issubclass(warning.category, SktdtwVersionWarning):
            print(f"sktdtw {command}: warning: {path}: {warning.message}", file=sys.stderr)
        else:  # not ours to report: shown as it would have been
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    if not hasattr(model, "predict_proba"):
        raise InputError(f"{path} holds a {type(model).__name__}, not a classifier")
    try:
        check_is_fitted(model)
    except NotFittedError as exc:
        raise InputError(f"{path} holds an unfitted {type(model).__name__}") from exc
    return model


def _labels_of(store, command):
    if store.labels is None:
        raise InputError(f"the store {store.path} has no labels; {command} needs them: build "
                         "or encode it from a manifest with a label column (a store without "
                         "labels is for predict)")
    return store.labels


def refuse_existing_store(out, overwrite):
    """Raise, saying how to replace it, if ``--out`` exists and ``--overwrite`` is not given.

    Parameters
    ----------
    out : str
        The ``--out`` of the command, the store it writes.
    overwrite : bool
        Its ``--overwrite``; the writer then refuses a directory that is not a store.
    """
    if os.path.lexists(out) and not overwrite:
        raise InputError(f"{os.path.abspath(out)} already exists; pass --overwrite to "
                         "replace it")


def _init_distributed(device):
    """Join the process group when launched by torchrun; returns whether this call did."""
    import torch

    from .._device import resolve_device

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not torch.distributed.is_available():
        return False
    if torch.distributed.is_initialized():
        return False
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None:
        # One GPU per process: torchrun's LOCAL_RANK makes plain "cuda" this rank's GPU.
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


# ---------------------------------------------------------------- commands


def run_build_store(args):
    """``sktdtw build-store``; returns the exit status."""
    import numpy as np

    from ..io import build_store

    refuse_existing_store(args.out, args.overwrite)
    start = time.perf_counter()
    store = build_store(args.manifest, args.out, root=args.root,
                        allow_outside_root=args.allow_outside_root, overwrite=args.overwrite,
                        verbose=args.verbose)
    parts = [f"{len(store)} series of {store.n_features} features "
             f"({int(store.lengths.sum())} time steps)"]
    if store.splits is not None:
        names, counts = np.unique(store.splits, return_counts=True)
        parts.append("splits " + ", ".join(f"{n} {c}" for n, c in zip(names, counts)))
    print(f"store {store.path}: {'; '.join(parts)}; built in "
          f"{time.perf_counter() - start:.1f} s")
    return 0


def run_fit(args):
    """``sktdtw fit``; returns the exit status."""
    import joblib
    import torch

    from .. import DejaVidClassifier
    from .._training import read_checkpoint
    from .estimator_options import estimator_params

    store = _open(args.store, args.split)
    labels = _labels_of(store, "fit")
    check_writable(args.out)  # now, not after the fit
    model = DejaVidClassifier(**estimator_params(args))
    checkpoint = None if model.checkpoint is None else read_checkpoint(model.checkpoint)
    distributed = _init_distributed(model.device)
    try:
        start = time.perf_counter()
        model.fit(store, labels)
        seconds = time.perf_counter() - start
        if not distributed or torch.distributed.get_rank() == 0:
            with atomic_file(args.out) as fp:
                joblib.dump(model, fp)
            print(_fit_summary(model, len(store), checkpoint, seconds, args.out))
        if distributed:
            # Every rank is done before any tears its Gloo connections down: a peer still
            # inside a collective would abort (SIGABRT) when they close.
            torch.distributed.barrier()
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


def run_predict(args):
    """``sktdtw predict``; returns the exit status."""
    model = _load_model(args.model, "predict")
    store = _open(args.store, args.split)
    check_writable(args.out)
    proba = model.predict_proba(store)
    # The most probable class is the nearest centroid: the softmax is increasing in the
    # logits, which decrease with the distance.
    predicted = model.classes_[proba.argmax(1)]

    header = ["id", "predicted"] + [f"proba_{c}" for c in model.classes_]
    with atomic_file(args.out, "w") as fp:
        write_csv(fp, [header] + [[sample_id, label] + [repr(float(p)) for p in row]
                                  for sample_id, label, row in zip(store.ids, predicted, proba)])
    print(f"predictions for {len(store)} series written to {args.out}")
    return 0


def run_evaluate(args):
    """``sktdtw evaluate``; returns the exit status."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    model = _load_model(args.model, "evaluate")
    store = _open(args.store, args.split)
    labels = _labels_of(store, "evaluate").tolist()
    metrics_file = os.path.join(args.out_dir, "metrics.json")
    confusion_file = os.path.join(args.out_dir, "confusion_matrix.csv")
    for file in (metrics_file, confusion_file):
        check_writable(file)
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
    k = min(TOP_K, len(classes))
    # A stable sort on -proba ranks ties like argmax does (first class first).
    ranked = np.argsort(-proba, axis=1, kind="stable")[:, :k]
    metrics = {
        "split": args.split,
        "n_samples": len(store),
        "n_classes": len(classes),
        "top1_accuracy": float(np.mean(ranked[:, 0] == truth)),
        f"top{TOP_K}_accuracy": float(np.mean((ranked == truth[:, None]).any(1))),
        f"top{TOP_K}_k": k,
    }
    confusion = confusion_matrix(truth, ranked[:, 0], labels=np.arange(len(every_label)))
    with atomic_file(metrics_file, "w") as fp:
        json.dump(metrics, fp, indent=2)
    with atomic_file(confusion_file, "w") as fp:
        write_csv(fp, [["true\\predicted"] + every_label]
                  + [[label] + row for label, row in zip(every_label, confusion.tolist())])
    print(json.dumps(metrics, indent=2))
    print(f"written to {metrics_file} and {confusion_file}")
    return 0
