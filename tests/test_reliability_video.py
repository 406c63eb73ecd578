"""Reliability of ``sktdtw encode`` and of the video pipeline (issue 21, part 2): bad
numbers and files are errors named at once, never a hang; the videos that can be encoded
are; an interrupted run resumes to the store of an uninterrupted one.

The command line runs in a child process where it could hang, under a time limit.
"""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("av")
transformers = pytest.importorskip("transformers")

from sktdtw import TSESlidingEncoder  # noqa: E402
from sktdtw._cli import main  # noqa: E402
from sktdtw.encoders import RandomConv3dEncoder  # noqa: E402
from sktdtw.video import encode_videos, write_video  # noqa: E402

from conftest import subprocess_env  # noqa: E402

TIMEOUT = 120


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny random VideoMAE classifier (clips of 4 frames of 32 x 32) and its processor."""
    from transformers.models.videomae.image_processing_pil_videomae import (
        VideoMAEImageProcessorPil,
    )

    path = tmp_path_factory.mktemp("checkpoint")
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4,
                                         hidden_size=24, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32,
                                         num_labels=3)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(path)
    VideoMAEImageProcessorPil(size={"shortest_edge": 32},
                              crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A manifest of three short videos."""
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    lines = ["id,path,label"]
    for i, length in enumerate((12, 20, 16)):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 256, (length, 32, 32, 3), np.uint8))
        lines.append(f"v{i},v{i}.mp4,{i % 2}")
    (folder / "videos.csv").write_text("\n".join(lines) + "\n")
    return folder / "videos.csv"


def _encode_in_child(*argv):
    """``sktdtw encode`` in a child process: (exit status, its own stderr lines), or a
    failure when it is still running after TIMEOUT seconds (a hang) or shows a traceback."""
    code = "import sys\nfrom sktdtw._cli import main\nsys.exit(main(sys.argv[1:]))"
    try:
        done = subprocess.run([sys.executable, "-c", code, "encode", *map(str, argv)],
                              capture_output=True, text=True, env=subprocess_env(),
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"sktdtw encode {' '.join(map(str, argv))} hung")
    assert "Traceback" not in done.stderr, done.stderr
    # transformers' progress bars aside.
    return done.returncode, [line for line in done.stderr.splitlines()
                             if line.startswith("sktdtw encode")]


# ------------------------------------------------------------ item 7: numbers of encode


@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "'batch_size' parameter of TSESlidingEncoder must be an int in the "
     r"range \[1, inf\). Got 0"),
    ("--clip-length", "0", "'clip_length' parameter of TSESlidingEncoder must be an int in "
     r"the range \[1, inf\) or None. Got 0"),
    ("--fps", "inf", "fps must be a finite number > 0, got inf"),
])
def test_encode_numbers_are_checked_by_the_estimators_rules(checkpoint, videos, tmp_path,
                                                            option, value, message):
    status, err = _encode_in_child("--videos", videos, "--encoder", checkpoint, "--out",
                                   tmp_path / "store", option, value)
    assert status == 2 and len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "store").exists()


def test_encode_videos_checks_the_encoders_parameters_first(videos, tmp_path):
    with pytest.raises(ValueError, match="'batch_size' parameter of TSESlidingEncoder"):
        encode_videos(videos, TSESlidingEncoder(RandomConv3dEncoder(in_channels=3),
                                                batch_size=0), tmp_path / "store")
    assert not os.path.exists(tmp_path / "store.partial")


def test_demo_numbers_are_checked_by_the_estimators_rules(capsys, monkeypatch):
    import sktdtw._cli.demo

    def never(*args, **kwargs):
        raise AssertionError("the videos were made before the options were checked")

    monkeypatch.setattr(sktdtw._cli.demo, "make_action_videos", never)
    status = main(["demo", "--centroid-length", "0", "--no-figure"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "'centroid_length' parameter of DejaVidClassifier must be" in err[0]


# ------------------------------------------------------------ item 8: files that block


def test_a_fifo_in_the_manifest_fails_by_id_and_the_rest_is_encoded(videos, tmp_path):
    for i in range(3):
        shutil.copy(videos.parent / f"v{i}.mp4", tmp_path)
    os.mkfifo(tmp_path / "pipe.mp4")  # nobody writes it: opening it to read would block
    manifest = tmp_path / "videos.csv"
    manifest.write_text(videos.read_text() + "pipe,pipe.mp4,1\n")
    code = ("import sys\nfrom sktdtw import TSESlidingEncoder\n"
            "from sktdtw.video import encode_videos\n"
            "store, failures = encode_videos(sys.argv[1], TSESlidingEncoder('mean', window=4, "
            "stride=4), sys.argv[2])\n"
            "print(store.ids.tolist(), failures)")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(manifest), str(tmp_path / "s")],
                              capture_output=True, text=True, env=subprocess_env(),
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("a FIFO in the manifest blocked the run")
    assert done.returncode == 0, done.stderr
    assert "['v0', 'v1', 'v2'] [('pipe', 'video " in done.stdout
    assert "pipe.mp4 is not a regular file" in done.stdout


# ------------------------------------------------------------ item 10: pickled weights


class _Payload:
    def __reduce__(self):
        return (print, ("the payload ran",))


def test_pickled_hf_weights_are_refused_saying_why(checkpoint, tmp_path, capsys):
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoint, folder)
    os.remove(folder / "model.safetensors")
    torch.save({"payload": _Payload()}, folder / "pytorch_model.bin")
    status = main(["encode", "--videos", str(tmp_path / "none.csv"), "--encoder", str(folder),
                   "--out", str(tmp_path / "store")])
    captured = capsys.readouterr()
    reported = [line for line in captured.err.splitlines() if line.startswith("sktdtw encode")]
    assert status == 2 and len(reported) == 1, captured.err
    assert re.search(r"pickled: its weights are a PyTorch pickle \(pytorch_model\.bin\) .* "
                     r"refused because unpickling them could run code\. Use a checkpoint saved "
                     r"as safetensors", reported[0])
    assert "the payload ran" not in captured.out


# ------------------------------------------------------------ item 15: a failed first run


def test_a_setting_error_before_any_video_leaves_nothing_to_resume(checkpoint, videos,
                                                                   tmp_path, capsys):
    argv = ["encode", "--videos", str(videos), "--encoder", str(checkpoint), "--out",
            str(tmp_path / "store"), "--window", "4", "--stride", "4"]
    assert main(argv + ["--clip-length", "3"]) == 2  # VideoMAE needs its num_frames, 4
    assert "config.num_frames=4 frames, got 3" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "store.partial")
    # A partial directory with settings but no finished video, as a killed run leaves it.
    os.makedirs(tmp_path / "store.partial")
    (tmp_path / "store.partial" / "settings.json").write_text('{"clip_length": 3}')
    assert main(argv) == 0, capsys.readouterr().err
    assert not os.path.exists(tmp_path / "store.partial") and os.path.isdir(tmp_path / "store")


# ------------------------------------------------------------ item 21: resumed encode


class _BatchSensitive(torch.nn.Module):
    """A window encoder whose output depends on its batch's size, as PyTorch's kernels may
    (another algorithm for another batch size) in the last bits; here in the third digit."""

    def forward(self, clips):
        means = clips.float().mean(dim=(1, 2, 3, 4))
        return torch.stack([means, means + 1e-3 * len(clips)], dim=1)


def test_a_resumed_encode_is_bit_identical_to_an_uninterrupted_one(videos, tmp_path):
    def encoder(stop_at=None):
        module, calls = _BatchSensitive(), []

        def forward(clips):
            calls.append(len(clips))
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return _BatchSensitive.forward(module, clips)

        module.forward = forward
        return TSESlidingEncoder(module, window=4, stride=2, batch_size=3, n_jobs=3)

    full, _ = encode_videos(videos, encoder(), tmp_path / "full")
    # 2 + 3 + 3 model calls for the 5, 9 and 7 windows: after 6, one video at least is done.
    with pytest.raises(KeyboardInterrupt):
        encode_videos(videos, encoder(stop_at=7), tmp_path / "resumed")
    assert [name for name in os.listdir(tmp_path / "resumed.partial") if name.endswith(".npy")]
    resumed, _ = encode_videos(videos, encoder(), tmp_path / "resumed")
    np.testing.assert_array_equal(resumed.read_batch(slice(None))[0],
                                  full.read_batch(slice(None))[0])
    # Each video as if encoded alone.
    for i in range(3):
        alone = encoder().fit_transform([str(videos.parent / f"v{i}.mp4")])[0]
        np.testing.assert_array_equal(full[i], alone)
