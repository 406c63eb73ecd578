"""The memory budget of video encoding: batches sized from ``working_memory``, windows in
flight bounded whatever the resolution, and the built-in encoder's decode size."""

import math
import tracemalloc

import numpy as np
import pytest
import torch

pytest.importorskip("av")

from sktdtw import TSESlidingEncoder  # noqa: E402
from sktdtw.encoders import RandomConv3dEncoder  # noqa: E402
from sktdtw.video import VideoReader, read_video, write_video  # noqa: E402

MIB = 2**20


def _write_gradient_video(path, n_frames, height, width):
    """A smooth moving gradient: quick for x264 to encode, different in every frame."""
    rows = np.arange(height)[:, None, None]
    cols = np.arange(width)[None, :, None]
    frames = [((rows + 2 * cols + 3 * t + np.arange(3) * 40) % 256).astype(np.uint8)
              for t in range(n_frames)]
    write_video(path, np.stack(frames))
    return str(path)


class _RecordingMean(torch.nn.Module):
    """The mean of every value of a frame over the window, recording each call's input."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, clips):
        self.calls.append((tuple(clips.shape), clips.dtype, clips.element_size() * clips.numel()))
        return clips.reshape(len(clips), clips.shape[1], -1).mean(dim=1)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return _write_gradient_video(tmp_path_factory.mktemp("video") / "gradient.mp4", 60, 96, 128)


@pytest.mark.parametrize("source", ["file", "array"])
def test_batches_take_at_most_a_quarter_of_the_working_memory(video, source):
    frames = read_video(video)
    X = [video] if source == "file" else [frames]
    clip_bytes = 12 * math.prod(frames.shape[1:]) * 4  # window=12 frames, as float32
    working_memory = 4 * 3.5 * clip_bytes / MIB  # room for 3 windows per call, not 4
    small = _RecordingMean()
    tse = TSESlidingEncoder(small, window=12, stride=2, working_memory=working_memory,
                            device="cpu").fit(X).transform(X)[0]
    sizes = [shape[0] for shape, _, _ in small.calls[1:]]  # the first call is fit's probe
    assert len(tse) == 25 and sum(sizes) == 25
    assert max(sizes) == 3 and all(n_bytes <= 3.5 * clip_bytes for _, _, n_bytes in small.calls)
    large = _RecordingMean()
    unbounded = TSESlidingEncoder(large, window=12, stride=2, device="cpu").fit(X).transform(X)[0]
    assert [shape[0] for shape, _, _ in large.calls[1:]] == [25]  # all within 1024 MiB
    np.testing.assert_allclose(tse, unbounded, rtol=1e-6)
    # batch_size stays the cap
    capped = _RecordingMean()
    TSESlidingEncoder(capped, window=12, stride=2, batch_size=2, device="cpu").fit(X).transform(X)
    assert max(shape[0] for shape, _, _ in capped.calls) == 2


def _overall_mean(windows):
    return windows.reshape(len(windows), -1).mean(axis=1, keepdims=True)


def test_windows_in_flight_stay_within_the_stated_budget(tmp_path):
    # 360 x 480 frames, 97 windows of 24 frames: 12 MiB per window as uint8, 1.2 GiB for
    # all of them, 47 MiB of float32 per window. A working memory of 256 MiB takes one
    # window per call, so at most 160 MiB in flight (five uint8 windows queued or being
    # filled, the call's uint8 stack and its float32 copy).
    path = _write_gradient_video(tmp_path / "large.mp4", 120, 360, 480)
    working_memory = 256
    encoder = TSESlidingEncoder(_overall_mean, window=24, stride=1,
                                working_memory=working_memory)
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc: decoded frames, batches
    try:
        tse = encoder.fit([path]).transform([path])[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert tse.shape == (97, 1)
    frame_means = read_video(path).reshape(120, -1).mean(axis=1, dtype=np.float64)
    expected = [frame_means[p:p + 24].mean() for p in range(97)]  # frames of equal size
    np.testing.assert_allclose(tse[:, 0], expected, rtol=1e-5)
    # The stated bound, 0.625 of the working memory, with the two decoding threads' ring
    # buffers of 25 frames each beside it.
    bound = 0.625 * working_memory * MIB + 2 * 25 * 360 * 480 * 3
    assert peak <= bound, f"{peak / MIB:.0f} MiB traced, the budget allows {bound / MIB:.0f}"


@pytest.mark.parametrize("source", ["file", "array"])
def test_a_window_larger_than_the_budget_is_an_error_saying_what_to_change(video, source,
                                                                          monkeypatch):
    X = [video] if source == "file" else [read_video(video)]
    name = f"video {video}" if source == "file" else "sample 0"
    # Said before any frame of a file is decoded (or held).
    monkeypatch.setattr(VideoReader, "windows", lambda *args: pytest.fail("decoded frames"))
    encoder = TSESlidingEncoder("mean", window=12, stride=2, working_memory=1)
    with pytest.raises(ValueError, match=(
            rf"{name}: one window of 12 frames of shape \(96, 128, 3\) takes 1.69 MiB as "
            r"float32, more than a batch may \(0.25 MiB.*VideoFile\(size=...\).*clip_length.*"
            r"working_memory=")):
        encoder.fit(X).transform(X)


def test_the_builtin_encoder_decodes_files_at_its_frame_size(video):
    encoder = TSESlidingEncoder(RandomConv3dEncoder(), window=12, stride=4).fit([video])
    # 96 x 128 frames, the shorter edge brought to 112 and the aspect ratio kept
    assert encoder.n_features_in_ == 112 * 149 * 3
    native = TSESlidingEncoder(RandomConv3dEncoder(frame_size=None), window=12, stride=4)
    assert native.fit([video]).n_features_in_ == 96 * 128 * 3
    np.testing.assert_allclose(
        encoder.transform([video])[0],
        encoder.transform([read_video(video, frame_size=112)])[0], rtol=1e-5, atol=1e-5)
