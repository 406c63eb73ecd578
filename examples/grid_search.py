"""
Tuning DejaVid with GridSearchCV
================================

:class:`~sktdtw.DejaVidClassifier` is a scikit-learn estimator, so the usual model
selection tools apply. Here a grid search picks the centroid length and the learning
rates of the weights and of the centroids for the video pipeline. The encoder's
``memory`` cache keeps the frozen encoder from re-encoding the same videos for every
candidate: each cross-validation fold is encoded once.

Set ``SKTDTW_EXAMPLE_QUICK=1`` for a fast, small run.
"""

import os
import tempfile

from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from sktdtw import DejaVidClassifier, TSESlidingEncoder
from sktdtw.datasets import make_action_videos
from sktdtw.encoders import RandomConv3dEncoder

quick = os.environ.get("SKTDTW_EXAMPLE_QUICK") == "1"

videos, y = make_action_videos(n_videos=60 if quick else 240, n_classes=4, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    videos, y, test_size=0.25, stratify=y, random_state=0
)

cache = tempfile.TemporaryDirectory(prefix="sktdtw-example-")  # removed at exit
pipeline = Pipeline([
    ("encoder", TSESlidingEncoder(RandomConv3dEncoder(), window=8, stride=2,
                                  memory=cache.name)),
    ("clf", DejaVidClassifier(max_epochs=3 if quick else 36, random_state=0)),
])
param_grid = {
    "clf__centroid_length": [8, 16],
    "clf__learning_rate": [1e-3, 8e-3],
    # None: a third of the weights' learning rate, the paper's choice.
    "clf__centroid_learning_rate": [None, 1e-2],
}
search = GridSearchCV(pipeline, param_grid, cv=3, n_jobs=1).fit(X_train, y_train)

print("mean cross-validated accuracy of each candidate:")
for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
    print(f"  {score:.3f}  {params}")
print(f"best: {search.best_params_}")
print(f"test accuracy of the refitted best pipeline: {search.score(X_test, y_test):.3f}")
