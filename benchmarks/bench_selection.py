"""How well ``fit``'s choice of epochs and prototypes picks, against every other choice it
could have made, on aeon's sets and their stress variants (those of ``bench_accuracy.py``).

One default fit per set records the out-of-fold scores of every candidate
(``cv_results_``). Its final model is then trained over the whole schedule while the test
split's class distances are recorded at every candidate epoch count, as the model chosen
at that count would have scored them (the final model of a choice is a prefix of that run;
the training series, untrained, are scored too). This needs the test split inside ``fit``,
so the classifier's private ``_fit_model`` is wrapped for the final fit only: the one place
a benchmark reaches inside the package.

Reported per set: every candidate's out-of-fold accuracy and log-loss and its test accuracy;
per rule (the one ``fit`` uses and alternatives), the candidate it picks and that
candidate's test accuracy; and the oracle, the best test accuracy of any candidate, which
bounds every selection rule over these candidates.

Usage::

    python benchmarks/bench_selection.py [--datasets NAME ...] [--variants NAME+VARIANT ...]
"""

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from bench_accuracy import classification_datasets, environment, load_set

from sktdtw import DejaVidClassifier
from sktdtw._inference import INFERENCE_CHUNK
from sktdtw._model import (
    INIT,
    TRAINING_SERIES,
    HeldOutDistances,
    candidate_epochs,
    prototypes_per_class,
)
from sktdtw._source import DerivativeSource, as_source


def _standard_error(accuracy, n):
    return np.sqrt(accuracy * (1 - accuracy) / n)


def _within_kind(cv, rows, rule, n):
    """The row of ``cv_results_`` that ``rule`` picks among ``rows`` (one kind)."""
    accuracy, log_loss = cv["accuracy"][rows], cv["log_loss"][rows]
    epochs = cv["n_epochs"][rows]
    best = min(range(len(rows)), key=lambda i: (-accuracy[i], log_loss[i], i))
    near = [i for i in range(len(rows))
            if accuracy[i] >= accuracy[best] - _standard_error(accuracy[best], n)]
    pick = {
        # fit's own rule (the lowest log-loss, then the fewest epochs) is not rebuilt
        # here: its pick is read from best_index_. "highest accuracy" was fit's rule up to
        # c536dc4.
        "highest accuracy": best,
        "fewest epochs within one SE": min(near, key=lambda i: epochs[i]),
        "lowest log-loss within one SE": min(near, key=lambda i: (log_loss[i], i)),
        "start unless beaten by one SE": (
            best if accuracy[best] > accuracy[0] + _standard_error(accuracy[best], n) else 0
        ),
    }[rule]
    return rows[pick]


# fit's rule (FIT_RULE, from best_index_) and alternatives to it.
FIT_RULE = "lowest log-loss (fit's rule)"
ALTERNATIVES = ["highest accuracy", "fewest epochs within one SE",
                "lowest log-loss within one SE", "start unless beaten by one SE"]


def choose(cv, rule, n, untrained_only=False):
    """The candidate ``rule`` picks within each kind, and between kinds fit's rule (a later
    kind must beat the choice so far by one standard error); ``untrained_only``: among the
    candidates of 0 epochs only, as a fit with ``max_epochs=0`` would."""
    best = None
    for kind in dict.fromkeys(cv["prototypes"]):
        rows = np.flatnonzero((cv["prototypes"] == kind)
                              & ((cv["n_epochs"] == 0) if untrained_only else True))
        row = _within_kind(cv, rows, rule, n)
        accuracy = cv["accuracy"]
        if best is None or accuracy[row] > accuracy[best] + _standard_error(accuracy[row], n):
            best = row
    return int(best)


def test_accuracy_by_candidate(X_train, y_train, X_test, y_test, seed):
    """The default fit's ``cv_results_`` and ``best_index_`` and, per kind and epoch
    count, the test accuracy of the final model at that candidate."""
    classes = np.unique(y_train)
    test, test_index = as_source(list(X_test)), np.searchsorted(classes, y_test)
    scored = {}
    fit_model = DejaVidClassifier._fit_model

    def final_fit_scoring_test(self, init, source, y_index, *, n_prototypes, stop_epoch,
                               held_out=None, progress=None, **kwargs):
        if held_out is not None or progress is not None:  # a cross-fit: as it is
            return fit_model(self, init, source, y_index, n_prototypes=n_prototypes,
                             stop_epoch=stop_epoch, held_out=held_out, progress=progress,
                             **kwargs)
        # The test series get the features the final model learns from.
        features = (DerivativeSource(test, source.scale) if isinstance(source, DerivativeSource)
                    else test)
        for kind, count in ((INIT, prototypes_per_class(init, y_index)),
                            (TRAINING_SERIES, TRAINING_SERIES)):
            epochs = [0] if kind == TRAINING_SERIES else candidate_epochs(self.max_epochs)
            recorded = HeldOutDistances(features, np.arange(len(test)), epochs, INFERENCE_CHUNK)
            model = fit_model(self, init, source, y_index, n_prototypes=count,
                              stop_epoch=epochs[-1], held_out=recorded, **kwargs)
            scored[kind] = {int(e): float(np.mean(d.argmin(1) == test_index))
                            for e, d in recorded.dist.items()}
        return model  # the training series' (unused: only cv_results_ is read)

    DejaVidClassifier._fit_model = final_fit_scoring_test
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = DejaVidClassifier(random_state=seed).fit(list(X_train), y_train)
    finally:
        DejaVidClassifier._fit_model = fit_model
    return clf.cv_results_, clf.best_index_, scored


def run(name, seed):
    (X_train, y_train), (X_test, y_test) = load_set(name)
    cv, fit_pick, scored = test_accuracy_by_candidate(X_train, y_train, X_test, y_test, seed)
    n = len(X_train)
    test = np.array([scored[str(k)][int(e)] for k, e in zip(cv["prototypes"], cv["n_epochs"])])
    start = choose(cv, "highest accuracy", n, untrained_only=True)
    picks = {FIT_RULE: int(fit_pick), **{rule: choose(cv, rule, n) for rule in ALTERNATIVES}}
    return {
        "n_train": n, "n_test": len(X_test),
        "candidates": {
            "prototypes": cv["prototypes"].tolist(), "n_epochs": cv["n_epochs"].tolist(),
            "out_of_fold_accuracy": cv["accuracy"].tolist(),
            "out_of_fold_log_loss": cv["log_loss"].tolist(), "test_accuracy": test.tolist(),
        },
        "untrained (max_epochs=0)": {"candidate": start, "test_accuracy": float(test[start])},
        "rules": {rule: {"candidate": i, "test_accuracy": float(test[i])}
                  for rule, i in picks.items()},
        "oracle_test_accuracy": float(test.max()),
    }


def summary(report):
    sets = list(report["datasets"].values())
    out = {"oracle": float(np.mean([s["oracle_test_accuracy"] for s in sets])),
           "untrained (max_epochs=0)": float(np.mean(
               [s["untrained (max_epochs=0)"]["test_accuracy"] for s in sets]))}
    for rule in [FIT_RULE, *ALTERNATIVES]:
        accuracy = [s["rules"][rule]["test_accuracy"] for s in sets]
        below_start = sum(
            a < s["untrained (max_epochs=0)"]["test_accuracy"] - _standard_error(a, s["n_test"])
            for a, s in zip(accuracy, sets)
        )
        out[rule] = {"mean_test_accuracy": float(np.mean(accuracy)),
                     "sets_below_untrained_by_one_se": int(below_start)}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="default: every classification set in aeon's wheel")
    parser.add_argument("--variants", nargs="*", default=[],
                        help="stress variants, as in bench_accuracy.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output", type=Path,
        default=Path(__file__).resolve().parent / "results" / "bench_selection.json",
    )
    args = parser.parse_args()
    report = {"environment": environment(), "seed": args.seed, "datasets": {}}
    for name in (args.datasets or classification_datasets()) + args.variants:
        report["datasets"][name] = run(name, args.seed)
        report["mean"] = summary(report)
        args.output.write_text(json.dumps(report, indent=2))  # a run cut short keeps what it has
        rules = report["datasets"][name]["rules"]
        print(name, {rule[:24]: round(r["test_accuracy"], 3) for rule, r in rules.items()},
              flush=True)
    print(json.dumps(report["mean"], indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
