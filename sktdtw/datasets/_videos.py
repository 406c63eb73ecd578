"""Synthetic action videos whose classes differ only in the order of their motions."""

from __future__ import annotations

from itertools import permutations
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from .._errors import InputError

__all__ = ["make_action_videos"]

MOTIONS = ("right-and-back", "down-and-back", "grow-and-shrink")
# Every ordering of the three motions; class k performs ACTION_ORDERS[k].
ACTION_ORDERS = tuple(permutations(range(len(MOTIONS))))


def _check_range(value, name, low):
    if not (
        len(value) == 2 and all(isinstance(v, Integral) for v in value)
        and low <= value[0] <= value[1]
    ):
        raise InputError(
            f"{name} must be a pair of ints (lo, hi) with {low} <= lo <= hi, got {value}"
        )
    return int(value[0]), int(value[1])


def _rest(tracks, pose, n_frames):
    """Append ``n_frames`` of the disc resting in ``pose`` (x, y, radius) to ``tracks``."""
    for track, value in zip(tracks, pose):
        track.append(np.full(n_frames, value))


def _render(frame_size, x, y, radius, brightness):
    """Frames of a soft-edged disc of centre (x[t], y[t]) and radius radius[t]."""
    grid = np.arange(frame_size, dtype=np.float64)
    dist = np.sqrt(
        (grid[None, None, :] - x[:, None, None]) ** 2
        + (grid[None, :, None] - y[:, None, None]) ** 2
    )
    # A one-pixel linear edge: sub-pixel motion changes the frames smoothly.
    return brightness * np.clip(radius[:, None, None] + 0.5 - dist, 0.0, 1.0)


@validate_params(
    {
        "n_videos": [Interval(Integral, 1, None, closed="left")],
        "n_classes": [Interval(Integral, 2, len(ACTION_ORDERS), closed="both")],
        "frame_size": [Interval(Integral, 16, None, closed="left")],
        "motion_frames": [tuple],
        "pause_frames": [tuple],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_action_videos(
    n_videos: int = 200,
    n_classes: int = 4,
    *,
    frame_size: int = 32,
    motion_frames: tuple[int, int] = (12, 24),
    pause_frames: tuple[int, int] = (8, 12),
    noise: float = 0.05,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Grayscale videos of a disc performing the same three motions in class-specific orders.

    Every video shows one bright disc that performs three motions, each a round trip
    from its resting pose: ``"right-and-back"`` (moves right, then back left),
    ``"down-and-back"`` (moves down, then back up) and ``"grow-and-shrink"``, in a
    class-specific order: class 0 right, down, grow; 1 right, grow, down; 2 down, right,
    grow; 3 down, grow, right; 4 grow, right, down; 5 grow, down, right. All classes
    contain the same motions, resting poses and transitions and differ only in their
    temporal order — the paper's "opening versus closing a door". The disc rests for a
    pause between motions, so a short window never sees the end of one motion and the
    start of the next: per-window content has the same distribution in every class, and
    averaging embeddings over time cannot tell the classes apart, while their order can.

    Per video, at random: the resting position and radius, the brightness, the duration
    (speed) of each motion, the pauses, a few still frames at the start and the end, and
    Gaussian pixel noise.

    Parameters
    ----------
    n_videos : int, default=200
        Number of videos; the classes are balanced (as far as divisibility allows) and
        shuffled.
    n_classes : int, default=4
        Number of classes, from 2 to 6 (the orderings used are the first ``n_classes``).
    frame_size : int, default=32
        Height and width of the frames, in pixels (at least 16).
    motion_frames : (int, int), default=(12, 24)
        Inclusive range of the duration of each motion, in frames.
    pause_frames : (int, int), default=(8, 12)
        Inclusive range of the pause between two motions, in frames.
    noise : float, default=0.05
        Standard deviation of the Gaussian pixel noise (the disc has brightness 0.6 to 1
        on a black background).
    random_state : int, RandomState instance or None, default=None
        Seed of the generator.

    Returns
    -------
    videos : list of ndarray of shape (T_i, frame_size, frame_size), float32
        The videos; ``T_i`` varies with the random durations.
    y : ndarray of shape (n_videos,), int
        The class of each video.

    Examples
    --------
    >>> from sktdtw.datasets import make_action_videos
    >>> videos, y = make_action_videos(n_videos=6, n_classes=3, random_state=0)
    >>> len(videos), videos[0].ndim, videos[0].dtype, sorted(set(y.tolist()))
    (6, 3, dtype('float32'), [0, 1, 2])
    """
    motion_lo, motion_hi = _check_range(motion_frames, "motion_frames", 2)
    pause_lo, pause_hi = _check_range(pause_frames, "pause_frames", 0)
    rng = check_random_state(random_state)
    y = rng.permutation(np.arange(n_videos) % n_classes)

    excursion = frame_size / 4  # how far the disc travels in a translation
    base_radius_range = (frame_size / 10, frame_size / 7)
    growth = frame_size / 10
    margin = base_radius_range[1] + growth + 1
    videos = []
    for label in y:
        x0 = rng.uniform(margin, frame_size - 1 - margin - excursion)
        y0 = rng.uniform(margin, frame_size - 1 - margin - excursion)
        r0 = rng.uniform(*base_radius_range)
        xs, ys, rs = [], [], []
        for motion in ACTION_ORDERS[label]:
            _rest((xs, ys, rs), (x0, y0, r0), rng.randint(pause_lo, pause_hi + 1))
            n_frames = rng.randint(motion_lo, motion_hi + 1)
            # A smooth round trip: 0 -> 1 -> 0 with zero speed at both ends.
            phase = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_frames) / (n_frames - 1))
            xs.append(x0 + excursion * phase * (motion == 0))
            ys.append(y0 + excursion * phase * (motion == 1))
            rs.append(r0 + growth * phase * (motion == 2))
        _rest((xs, ys, rs), (x0, y0, r0), rng.randint(pause_lo, pause_hi + 1))
        frames = _render(
            frame_size, np.concatenate(xs), np.concatenate(ys), np.concatenate(rs),
            rng.uniform(0.6, 1.0),
        )
        frames += rng.normal(0.0, noise, size=frames.shape)
        videos.append(frames.astype(np.float32))
    return videos, y
