"""The pieces below the estimators work on their own: given explicit settings (no
estimator), the data source, the initial prototypes, the scorer and the training engine
train what DejaVidClassifier trains."""

import numpy as np
import pytest
import torch

from sktdtw import DBAInitializer, DejaVidClassifier
from sktdtw._model import (
    BarycenterSettings,
    ClassScorer,
    InitialDistances,
    InitSettings,
    class_barycenters,
    initial_prototypes,
    prototypes_per_class,
)
from sktdtw._source import as_source, check_targets
from sktdtw._training import SingleProcess, Trainer, TrainingSettings
from sktdtw.datasets import make_temporal_order


@pytest.fixture(scope="module")
def data():
    return make_temporal_order(n_samples=30, n_classes=2, random_state=0)


@pytest.mark.parametrize("feature_scaling", ["pooled", None])
def test_the_pieces_train_what_the_classifier_trains(data, feature_scaling):
    X, y = data
    length, epochs, batch, seed = 6, 3, 8, 0
    clf = DejaVidClassifier(
        centroid_length=length, n_prototypes=1, max_epochs=epochs, batch_size=batch,
        feature_scaling=feature_scaling, cv=None, calibration=None, random_state=seed,
    ).fit(X, y)

    source = as_source(X)
    _, y_index = check_targets(y, len(source))
    init = InitSettings(
        init="dba", n_classes=2, centroid_length=length, n_prototypes=1,
        barycenters=BarycenterSettings(centroid_length=length),
        feature_scaling=feature_scaling, chunk=batch,
    )
    rng = np.random.RandomState(seed)  # as the classifier draws from its random_state
    generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
    prototypes = initial_prototypes(
        init, source, y_index, prototypes_per_class(init, y_index), rng, generator,
        SingleProcess(), torch.device("cpu"),
    )
    scorer = ClassScorer(prototypes.centroid_class, diagonal=False, backend="auto")
    initial = InitialDistances.of(scorer.source_distances(
        source, np.arange(len(source)), *prototypes.frozen(), batch
    ))
    prototypes.centroid_offsets.requires_grad_()
    prototypes.log_weight_offsets.requires_grad_()
    settings = TrainingSettings(
        learning_rate=1e-2, centroid_learning_rate=1e-2 / 3, weight_decay=0.01,
        max_epochs=epochs, batch_size=batch, path_update="epoch", logit_norm="scaled",
        logit_scale=initial.logit_scale,
    )
    trainer = Trainer(settings, scorer, SingleProcess())
    state = trainer.initial_state(prototypes, generator)
    trainer.fit(state, source, y_index, {}, epochs)

    # The same code on the same machine: bit for bit.
    centroids, weights = (a.numpy() for a in prototypes.frozen())
    np.testing.assert_array_equal(centroids, clf.centroids_)
    np.testing.assert_array_equal(weights, clf.weights_)
    assert initial.logit_scale == clf.logit_scale_
    assert state.history["loss"] == clf.history_["loss"]
    assert not np.array_equal(centroids, initial_prototypes(
        init, source, y_index, 1, np.random.RandomState(seed), torch.Generator(),
        SingleProcess(), torch.device("cpu"),
    ).frozen()[0].numpy())  # training moved them


def test_class_barycenters_are_those_of_dbainitializer(data):
    X, y = data
    params = dict(centroid_length=5, n_samples=10, max_iter=4, n_prototypes=2)
    fitted = DBAInitializer(random_state=3, **params).fit(X, y)
    source = as_source(X)
    _, y_index = check_targets(y, len(source))
    result = class_barycenters(source, y_index, 2, BarycenterSettings(**params), 3)
    np.testing.assert_array_equal(result.centroids, fitted.centroids_)
    np.testing.assert_array_equal(result.centroid_class, fitted.centroid_class_)
    np.testing.assert_array_equal(result.n_iter, fitted.n_iter_)
    assert result.centroids.shape == (4, 5, X[0].shape[1])
