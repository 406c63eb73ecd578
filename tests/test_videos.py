"""make_action_videos and the shipped RandomConv3dEncoder."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tslearn.neighbors import KNeighborsTimeSeriesClassifier
from tslearn.utils import to_time_series_dataset

from sktdtw.datasets import make_action_videos
from sktdtw.datasets._videos import ACTION_ORDERS
from sktdtw.encoders import RandomConv3dEncoder


def _disc_tracks(video):
    """Per frame: the disc's centre (x, y) and area, measured from the pixels."""
    mask = video > video.max() / 2
    rows, cols = np.indices(video.shape[1:])
    area = mask.sum(axis=(1, 2))
    x = (mask * cols).sum(axis=(1, 2)) / area
    y = (mask * rows).sum(axis=(1, 2)) / area
    return np.stack([x, y, area], axis=1).astype(np.float64)


def test_shapes_lengths_labels_and_seed():
    videos, y = make_action_videos(n_videos=30, n_classes=3, frame_size=24, random_state=0)
    assert len(videos) == 30 and y.shape == (30,)
    assert all(v.dtype == np.float32 and v.shape[1:] == (24, 24) for v in videos)
    assert len({len(v) for v in videos}) > 5  # lengths vary with the random speeds
    np.testing.assert_array_equal(np.bincount(y), [10, 10, 10])
    again, y_again = make_action_videos(n_videos=30, n_classes=3, frame_size=24, random_state=0)
    np.testing.assert_array_equal(y, y_again)
    assert all(np.array_equal(a, b) for a, b in zip(videos, again))
    other, _ = make_action_videos(n_videos=30, n_classes=3, frame_size=24, random_state=1)
    assert not np.array_equal(videos[0][:5], other[0][:5])


def test_each_class_performs_the_three_motions_in_its_order():
    videos, y = make_action_videos(n_videos=36, n_classes=6, noise=0.0, random_state=0)
    for video, label in zip(videos, y):
        tracks = _disc_tracks(video)
        deviation = np.abs(tracks - tracks[0])
        # Frame at which x, y and the area first move away from the resting pose.
        onsets = [np.flatnonzero(deviation[:, q] > [1.0, 1.0, 8.0][q])[0] for q in range(3)]
        assert tuple(np.argsort(onsets)) == ACTION_ORDERS[label]
        # Every motion is a round trip: the disc ends where and as it started.
        assert np.abs(tracks[-1] - tracks[0]).max() < 1e-9


def test_order_separates_the_classes_but_time_averages_do_not():
    videos, y = make_action_videos(n_videos=100, n_classes=4, random_state=0)
    tracks = [_disc_tracks(v) for v in videos]
    averaged = np.stack([t.mean(axis=0) for t in tracks])
    averaged_accuracy = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression()), averaged, y, cv=4
    ).mean()
    ordered_accuracy = cross_val_score(
        KNeighborsTimeSeriesClassifier(n_neighbors=1),
        to_time_series_dataset([(t - t.mean(0)) / t.std(0) for t in tracks]), y, cv=4,
    ).mean()
    assert averaged_accuracy < 0.45  # chance is 0.25
    assert ordered_accuracy > 0.9


@pytest.mark.parametrize("params", [
    dict(n_classes=7), dict(n_classes=1), dict(motion_frames=(1, 5)), dict(pause_frames=(5, 2)),
    dict(frame_size=8), dict(noise=-1.0), dict(n_videos=0),
])
def test_invalid_parameters(params):
    with pytest.raises(ValueError):
        make_action_videos(**params)


# --- the shipped encoder -------------------------------------------------------------------


def _moving_disc(xs, y0=12.0, size=32):
    rows, cols = np.indices((size, size))
    return np.stack([
        ((cols - x) ** 2 + (rows - y0) ** 2 <= 16).astype(np.float32) for x in xs
    ])


def test_random_encoder_is_seeded_frozen_and_shaped():
    a, b, c = RandomConv3dEncoder(), RandomConv3dEncoder(), RandomConv3dEncoder(random_state=1)
    clips = torch.rand(3, 8, 32, 32)
    torch.testing.assert_close(a(clips), b(clips))
    assert not torch.allclose(a(clips), c(clips))
    assert a(clips).shape == (3, a.n_features) and a.n_features == 64
    assert not any(p.requires_grad for p in a.parameters()) and not a.training
    colour = RandomConv3dEncoder(channels=4, time_cells=3, space_cells=1)
    rgb = torch.rand(2, 5, 20, 28, 3)  # as decoded video files are: the default takes them
    assert colour(rgb).shape == (2, 12)
    # Grayscale is a colour clip whose channels are equal.
    gray = rgb[..., 0]
    torch.testing.assert_close(colour(gray), colour(gray[..., None].expand(-1, -1, -1, -1, 3)))
    torch.testing.assert_close(colour(gray[..., None]), colour(gray))
    with pytest.raises(ValueError, match=r"got 4 in .*RandomConv3dEncoder\(in_channels=4\)"):
        colour(torch.rand(2, 5, 20, 28, 4))
    with pytest.raises(ValueError, match="expected clips of shape"):
        colour(torch.rand(2, 5, 20))


def test_random_encoder_keeps_where_and_how_things_move():
    encoder = RandomConv3dEncoder()
    rightwards = torch.from_numpy(_moving_disc(np.linspace(8, 20, 8)))
    leftwards = rightwards.flip(0)  # the same frames in reverse: same time average
    shifted = torch.from_numpy(_moving_disc(np.linspace(8, 20, 8), y0=20.0))
    emb = encoder(torch.stack([rightwards, leftwards, shifted, rightwards]))
    torch.testing.assert_close(rightwards.mean(0), leftwards.mean(0))
    scale = emb[0].abs().mean()
    assert (emb[0] - emb[1]).abs().mean() > 0.1 * scale  # direction of motion
    assert (emb[0] - emb[2]).abs().mean() > 0.1 * scale  # place
    torch.testing.assert_close(emb[0], emb[3])
