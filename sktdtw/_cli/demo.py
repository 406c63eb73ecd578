"""The main job, ``sktdtw demo``: DejaVid against mean pooling on synthetic action videos,
with a figure of the result (imported only when the demo runs)."""

import os
import time

import numpy as np
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from .. import DejaVidClassifier, TSESlidingEncoder
from .._atomic import atomic_file
from .._errors import InputError
from .._source import split_batch
from ..datasets import make_action_videos
from ..datasets._videos import ACTION_ORDERS, MOTIONS
from ..dtw import weighted_dtw_path
from ..encoders import RandomConv3dEncoder

__all__ = ["run_demo"]


def _mean_over_windows(tses):
    """The paper's baseline pooling: one embedding per video, the mean over its windows."""

    return np.stack([tse.mean(axis=0) for tse in tses])


def _timed(method, *args):
    start = time.perf_counter()
    result = method(*args)
    return result, time.perf_counter() - start


def run_demo(args, figure_name):
    """``sktdtw demo``, its figure written as ``figure_name`` in ``args.out``; returns the
    exit status."""
    if args.n_videos < 2 * args.n_classes:
        raise InputError(f"--n-videos must be at least 2 per class ({2 * args.n_classes})")
    encoder = TSESlidingEncoder(
        RandomConv3dEncoder(), window=8, stride=2, n_jobs=args.n_jobs, verbose=args.verbose
    )
    clf = DejaVidClassifier(random_state=args.seed, verbose=args.verbose).set_params(**{
        name: value for name in ("centroid_length", "learning_rate", "max_epochs")
        if (value := getattr(args, name)) is not None
    })
    # The options' numbers, by the estimators' own rules, before the videos are made.
    encoder._validate_params()
    clf._validate_params()
    videos, y = make_action_videos(args.n_videos, args.n_classes, random_state=args.seed)
    lengths = [len(video) for video in videos]
    print(
        f"{len(videos)} videos of {videos[0].shape[1]}x{videos[0].shape[2]} pixels, "
        f"{min(lengths)} to {max(lengths)} frames, {args.n_classes} classes:"
    )
    for label in range(args.n_classes):
        print(f"  class {label}: " + ", then ".join(MOTIONS[m] for m in ACTION_ORDERS[label]))
    X_train, X_test, y_train, y_test = train_test_split(
        videos, y, test_size=args.test_size, stratify=y, random_state=args.seed
    )

    dejavid = Pipeline([("encoder", encoder), ("clf", clf)])
    baseline = Pipeline([
        ("encoder", clone(encoder)),
        ("mean_pool", FunctionTransformer(_mean_over_windows)),
        ("scale", StandardScaler()),
        ("clf", LogisticRegression(max_iter=1000)),
    ])

    rows = []
    for name, model in (("DejaVid", dejavid), ("mean pooling + logistic", baseline)):
        _, fit_seconds = _timed(model.fit, X_train, y_train)
        y_pred, predict_seconds = _timed(model.predict, X_test)
        rows.append((name, np.mean(y_pred == y_test), fit_seconds, predict_seconds,
                     _n_learned_parameters(model[-1])))

    n_windows = [len(tse) for tse in dejavid["encoder"].transform(X_test[:1])]
    slopes = ("; DejaVid appends their time derivatives"
              if dejavid["clf"].derivative_scale_ is not None else "")
    print(
        f"\ntrain {len(X_train)} / test {len(X_test)} videos; embeddings of "
        f"{dejavid['encoder'].n_features_out_} features, {n_windows[0]} windows in the first "
        f"test video{slopes}; chance accuracy {1 / args.n_classes:.2f}; times include encoding"
    )
    header = f"{'method':<26}{'accuracy':>9}{'fit s':>8}{'predict s':>10}{'learned params':>16}"
    print(header)
    print("-" * len(header))
    for name, accuracy, fit_seconds, predict_seconds, n_params in rows:
        print(f"{name:<26}{accuracy:>9.3f}{fit_seconds:>8.1f}{predict_seconds:>10.1f}"
              f"{n_params:>16,d}")

    if not args.no_figure:
        _save_figure(
            dejavid, rows, X_test[0], y_test[0], os.path.join(args.out, figure_name)
        )
    return 0


def _n_learned_parameters(clf):
    if hasattr(clf, "centroids_"):  # DejaVidClassifier
        return (clf.centroids_.size * clf.learn_centroids
                + clf.weights_.size * clf.learn_weights)
    return clf.coef_.size + clf.intercept_.size


def _save_figure(dejavid, rows, video, label, path):
    """Write :func:`demo_figure` to ``path`` (nothing, and say so, without matplotlib)."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no figure written")
        return
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = demo_figure(dejavid, rows, video, label)
    with atomic_file(path) as fp:  # creates its directory
        fig.savefig(fp, format="png", dpi=100)
    plt.close(fig)
    print(f"figure written to {path}")


def demo_figure(dejavid, rows, video, label):
    """The demo's story in three panels: the accuracies, where in time each class's
    learned weights concentrate, and one test video's alignment to its predicted class.
    Centroid steps are numbered from 1 in both panels that show them."""
    from matplotlib import pyplot as plt

    clf = dejavid["clf"]
    fig, (ax_acc, ax_mass, ax_path) = plt.subplots(
        1, 3, figsize=(16, 4.6), constrained_layout=True,
        gridspec_kw={"width_ratios": [0.8, 1.3, 1.6]},
    )
    _plot_accuracies(ax_acc, rows, 1 / len(clf.classes_))
    _plot_weight_mass(ax_mass, clf)
    _plot_alignment(fig, ax_path, dejavid, video, label)
    return fig


def _plot_accuracies(ax, rows, chance):
    names = [name.replace(" + ", "\n+ ") for name, *_ in rows]
    accuracies = [accuracy for _, accuracy, *_ in rows]
    bars = ax.bar(names, accuracies, color=["tab:blue", "tab:gray"])
    ax.bar_label(bars, fmt="%.3f")
    ax.axhline(chance, color="k", linestyle="--", linewidth=1)
    ax.text(1.45, chance, "chance", va="bottom", ha="right", fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("test accuracy")
    ax.set_title("same embeddings: order kept vs averaged")


def _plot_weight_mass(ax, clf):
    """Per class, the total learned weight of each centroid step (averaged over the
    class's prototypes) over the class's mean step: the initial weights are the same at
    every step (weight_init="ones"), so a curve above 1 is a part of the action that
    training learned to weigh more."""
    mass = clf.weights_.sum(-1)  # (n_centroids, L)
    relative = mass / mass.mean(1, keepdims=True)
    steps = np.arange(1, mass.shape[1] + 1)
    for k, label in enumerate(clf.classes_):
        ax.plot(steps, relative[clf.centroid_class_ == k].mean(0), color=f"C{k}",
                marker=".", label=f"class {label}")
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("centroid step (time within the action)")
    ax.set_ylabel("weight of the step, in class means (1 = average)")
    ax.set_title("where in time each class's weights concentrate")
    ax.text(0.02, 0.02, "a step's learned weights summed over the features; all steps\n"
            "start at 1, so above 1 is a part of the action training weighs more",
            transform=ax.transAxes, fontsize=7, va="bottom")
    ax.legend(fontsize=8)


def _plot_alignment(fig, ax, dejavid, video, label):
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import MaxNLocator

    clf = dejavid["clf"]
    tse = dejavid["encoder"].transform([video])[0]
    dist = clf.transform([tse])[0]
    # The features the prototypes were fitted to (with the slopes, where appended).
    tse = split_batch(clf._model_source([tse]).read(np.arange(1)))[0]
    predicted = int(dist.argmin())
    # The prototype of the predicted class that the video is closest to.
    members = np.flatnonzero(clf.centroid_class_ == predicted)
    C, W = torch.from_numpy(clf.centroids_[members]), torch.from_numpy(clf.weights_[members])
    per_prototype, paths = weighted_dtw_path([torch.from_numpy(tse)], C, W)
    j = int(per_prototype[0].argmin())
    centroid, weights = clf.centroids_[members[j]], clf.weights_[members[j]]
    # cost[i, t]: the weighted L1 cost of aligning centroid step i with window t.
    cost = (weights[:, None, :] * np.abs(centroid[:, None, :] - tse[None, :, :])).sum(-1)
    # Log colours: a few heavily weighted steps would otherwise wash out the valley. Rows
    # are centroid steps 1..L, as in the weight panel.
    n_steps, n_windows = cost.shape
    image = ax.imshow(cost, aspect="auto", cmap="magma_r", interpolation="nearest",
                      norm=LogNorm(vmin=max(cost.min(), 1e-6), vmax=cost.max()),
                      extent=(-0.5, n_windows - 0.5, n_steps + 0.5, 0.5))
    fig.colorbar(image, ax=ax, label="weighted L1 cost (log scale); dark rows: steps\n"
                 "weighted heavily, costly wherever they align")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    steps = [(t, i + 1) for i, (lo, hi) in enumerate(paths[0, j].tolist())
             for t in range(lo, hi + 1)]
    ax.plot(*zip(*steps), color="cyan", marker="o", markersize=3, linewidth=1.5)
    verdict = "correct" if clf.classes_[predicted] == label else "wrong"
    ax.set_title(f"a test video: true class {label}, predicted {clf.classes_[predicted]}, "
                 f"{verdict}\nits warping path to the predicted class's centroid")
    ax.set_xlabel("window of the video (time)")
    ax.set_ylabel("centroid step")


