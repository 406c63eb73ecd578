"""
DejaVid on a multivariate time-series benchmark
===============================================

DejaVid is not tied to videos: any set of variable-length multivariate series works.
JapaneseVowels (UEA archive; shipped inside ``aeon``, so it loads offline) has 12 LPC
cepstrum coefficients per time step, 7 to 29 steps per utterance, and 9 speakers to
tell apart. We compare

* DejaVid on the standardised raw series,
* DejaVid on a sliding-window TSE of them (mean and standard deviation over windows of
  a fifth of each series, the paper's window and stride),
* 1-nearest-neighbour DTW (tslearn) as a reference.

Requires ``aeon`` (``pip install aeon``). Set ``SKTDTW_EXAMPLE_QUICK=1`` for a fast,
small run.
"""

import os
import time

import numpy as np
from aeon.datasets import load_japanese_vowels
from sklearn.pipeline import make_pipeline
from tslearn.neighbors import KNeighborsTimeSeriesClassifier
from tslearn.utils import to_time_series_dataset

from sktdtw import DejaVidClassifier, TSESlidingEncoder

quick = os.environ.get("SKTDTW_EXAMPLE_QUICK") == "1"

# aeon stores each series as (channels, length); sktdtw takes (length, channels).
X_train, y_train = load_japanese_vowels(split="train")
X_test, y_test = load_japanese_vowels(split="test")
X_train, X_test = [x.T for x in X_train], [x.T for x in X_test]
if quick:
    X_train, y_train, X_test, y_test = X_train[::5], y_train[::5], X_test[::5], y_test[::5]

# Standardise every channel with the statistics of all training time steps.
steps = np.concatenate(X_train)
mean, std = steps.mean(axis=0), steps.std(axis=0)
X_train = [(x - mean) / std for x in X_train]
X_test = [(x - mean) / std for x in X_test]
lengths = [len(x) for x in X_train]
print(f"{len(X_train)} training / {len(X_test)} test series, {X_train[0].shape[1]} channels, "
      f"{min(lengths)} to {max(lengths)} steps, {len(set(y_train))} classes")

# The paper's HMDB51 settings suit a small training set: a higher learning rate, and
# weights starting at one (DTW with unit weights) instead of at random.
dejavid = dict(learning_rate=8e-3, weight_init="ones", max_epochs=3 if quick else 36,
               random_state=0)
models = {
    "DejaVid on the raw series": DejaVidClassifier(**dejavid),
    "DejaVid on a mean/std TSE": make_pipeline(
        TSESlidingEncoder("meanstd", window=0.2, stride=0.025), DejaVidClassifier(**dejavid)
    ),
}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    print(f"{name:<28} accuracy {model.score(X_test, y_test):.3f} "
          f"({time.perf_counter() - start:.1f} s to fit)")

knn = KNeighborsTimeSeriesClassifier(n_neighbors=1, metric="dtw")
knn.fit(to_time_series_dataset(X_train), y_train)
print(f"{'1-NN DTW (tslearn)':<28} accuracy "
      f"{knn.score(to_time_series_dataset(X_test), y_test):.3f}")
