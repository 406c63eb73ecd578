"""
Video classification with a sliding-window encoder and DejaVid
==============================================================

Each video is cut into short overlapping windows; a frozen video encoder embeds every
window, and the embeddings in temporal order form the video's *temporal sequence of
embeddings* (TSE). :class:`~sktdtw.DejaVidClassifier` then classifies the TSEs by
learned weighted DTW to one centroid series per class.

The synthetic videos show a disc doing the same three motions in a class-specific order,
so only the order tells the classes apart. The encoded TSEs are cached on disk with
``memory``, so encoding happens once per set of videos.

Set ``SKTDTW_EXAMPLE_QUICK=1`` for a fast, small run. The figure is saved to
``video_pipeline.png`` in the current directory, and also shown where there is a display.
"""

import os
import tempfile

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from sktdtw import DejaVidClassifier, TSESlidingEncoder
from sktdtw.datasets import make_action_videos
from sktdtw.encoders import RandomConv3dEncoder

quick = os.environ.get("SKTDTW_EXAMPLE_QUICK") == "1"

# %%
# Videos: 32 x 32 grayscale frames, 70 to 110 frames each.
videos, y = make_action_videos(n_videos=80 if quick else 400, n_classes=4, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    videos, y, test_size=0.5, stratify=y, random_state=0
)

# %%
# The pipeline: windows of 8 frames every 2 frames through a small frozen 3-D CNN, then
# DejaVid. The videos have about ten phases (three round trips and the pauses between
# them), hence 16 centroid steps.
cache = tempfile.TemporaryDirectory(prefix="sktdtw-example-")  # removed at exit
pipeline = Pipeline([
    ("encoder", TSESlidingEncoder(RandomConv3dEncoder(), window=8, stride=2, memory=cache.name)),
    ("clf", DejaVidClassifier(centroid_length=16, learning_rate=8e-3,
                              max_epochs=4 if quick else 36, random_state=0)),
])
pipeline.fit(X_train, y_train)
print(f"test accuracy: {pipeline.score(X_test, y_test):.3f}")

# %%
# One test video per class: a few of its frames, its TSE, and the predicted
# probabilities of the classes.
tses = pipeline["encoder"].transform(X_test)
proba = pipeline["clf"].predict_proba(tses)
fig, axes = plt.subplots(4, 3, figsize=(11, 9), gridspec_kw={"width_ratios": [3, 3, 1]},
                         constrained_layout=True)
for row, label in enumerate(range(4)):
    i = int(np.flatnonzero(y_test == label)[0])
    video = X_test[i]
    strip = np.hstack([video[t] for t in np.linspace(0, len(video) - 1, 8).astype(int)])
    axes[row, 0].imshow(strip, cmap="gray")
    axes[row, 0].set_axis_off()
    axes[row, 0].set_title(f"class {label}: 8 of its {len(video)} frames")
    axes[row, 1].imshow(tses[i].T, aspect="auto", cmap="viridis")
    axes[row, 1].set(title="its TSE", xlabel="window", ylabel="feature")
    axes[row, 2].barh(pipeline["clf"].classes_, proba[i])
    axes[row, 2].set(title="predicted probability", xlim=(0, 1))
    axes[row, 2].invert_yaxis()
fig.savefig("video_pipeline.png", dpi=100)
print(f"figure written to {os.path.abspath('video_pipeline.png')}")
if matplotlib.get_backend().lower() != "agg":  # the headless default shows nothing
    plt.show()
