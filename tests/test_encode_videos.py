"""Video files of a manifest into a TSE store; TSESlidingEncoder on files; end to end."""

import os
import sys

import numpy as np
import pytest
import torch
from sklearn.pipeline import Pipeline

pytest.importorskip("av")

from sktdtw import DejaVidClassifier, TSESlidingEncoder  # noqa: E402
from sktdtw._cli import main  # noqa: E402
from sktdtw.datasets import make_action_videos  # noqa: E402
from sktdtw.encoders import RandomConv3dEncoder  # noqa: E402
from sktdtw.io import open_store  # noqa: E402
from sktdtw.video import VideoFile, encode_videos, read_video, write_video  # noqa: E402
from sktdtw.video._pipeline import EncodeStats  # noqa: E402

from conftest import LazySequence


def _interrupted(stop_at):
    """The default encoder, raising KeyboardInterrupt at its ``stop_at``-th call (a Ctrl-C
    midway); its class, configuration and weights are those of the default one."""
    encoder = RandomConv3dEncoder(in_channels=3)
    calls = []

    def forward(clips):
        calls.append(clips)
        if len(calls) == stop_at:
            raise KeyboardInterrupt
        return RandomConv3dEncoder.forward(encoder, clips)

    encoder.forward = forward
    return encoder


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    lines = ["id,path,label,split"]
    for i, length in enumerate((30, 44, 20, 36, 26, 40)):
        write_video(folder / f"v{i}.mp4", rng.integers(0, 256, (length, 32, 32, 3), np.uint8))
        lines.append(f"v{i},v{i}.mp4,{i % 2},{'train' if i < 4 else 'test'}")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    lines.append("broken,corrupt.mp4,1,test")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def _tse(encoder):
    return TSESlidingEncoder(encoder, clip_length=4, batch_size=8)


def test_interrupted_run_resumes_to_the_uninterrupted_store(manifest, tmp_path):
    expected, failures = encode_videos(manifest, _tse(RandomConv3dEncoder(in_channels=3)),
                                       tmp_path / "full")
    assert failures[0][0] == "broken" and "corrupt.mp4" in failures[0][1]
    assert len(failures) == 1 and expected.ids.tolist() == [f"v{i}" for i in range(6)]
    assert (tmp_path / "full" / "failures.csv").read_text().startswith("id,path,error\nbroken,")
    # The oracle: each video decoded whole and encoded on its own.
    folder = os.path.dirname(manifest)
    for i in range(6):
        alone = _tse(RandomConv3dEncoder(in_channels=3)).fit_transform(
            [read_video(os.path.join(folder, f"v{i}.mp4"))])[0]
        np.testing.assert_allclose(expected[i], alone, rtol=1e-5, atol=1e-5)

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        encode_videos(manifest, _tse(_interrupted(stop_at=12)), out)
    finished = os.listdir(str(out) + ".partial")
    assert 0 < len(finished) < 6 and not out.exists()
    stats = EncodeStats()
    resumed, failures = encode_videos(manifest, _tse(RandomConv3dEncoder(in_channels=3)), out,
                                      stats=stats)
    assert stats.windows < sum(expected.lengths)  # the finished videos were not re-encoded
    assert not os.path.exists(str(out) + ".partial") and len(failures) == 1
    for name in ("ids", "labels", "splits", "lengths"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(expected, name))
    np.testing.assert_allclose(resumed.read_batch(slice(None))[0],
                               expected.read_batch(slice(None))[0], rtol=1e-5, atol=1e-5)


def test_resuming_with_other_settings_is_refused(manifest, tmp_path):
    out = tmp_path / "store"
    # Batches of 8 windows of one video, 2 videos at a time: after 9 calls one is finished.
    with pytest.raises(KeyboardInterrupt):
        encode_videos(manifest, _tse(_interrupted(stop_at=10)), out, fps=12)
    assert [name for name in os.listdir(str(out) + ".partial") if name.endswith(".npy")]
    changes = [
        (dict(encoder=RandomConv3dEncoder(in_channels=3, random_state=1)), {},
         "encoder weights sha256"),
        (dict(window=0.3), {}, r"window \(\[0\.2\] then, \[0\.3\] now\)"),
        (dict(clip_length=8), {}, r"clip_length \(4 then, 8 now\)"),
        ({}, dict(fps=None), r"fps \(12 then, None now\)"),
        ({}, dict(fps=12, size=16), r"size \(None then, 16 now\)"),
        (dict(encoder="mean"), {}, r"encoder \('sktdtw.encoders.*RandomConv3dEncoder' then, "
         r"'mean' now\)"),
    ]
    for params, options, message in changes:
        tse = TSESlidingEncoder(**{"encoder": RandomConv3dEncoder(in_channels=3),
                                   "clip_length": 4, "batch_size": 8, **params})
        with pytest.raises(ValueError, match="cannot resume from .*store.partial: .*" + message):
            encode_videos(manifest, tse, out, **{"fps": 12, **options})
    edited = tmp_path / "edited.csv"
    edited.write_text(manifest.read_text().replace("v1,v1.mp4", "v1,v2.mp4"))
    with pytest.raises(ValueError, match="manifest ids and paths sha256"):
        encode_videos(edited, _tse(RandomConv3dEncoder(in_channels=3)), out, fps=12,
                      root=manifest.parent)
    store, _ = encode_videos(manifest, _tse(RandomConv3dEncoder(in_channels=3)), out, fps=12)
    assert len(store) == 6


@pytest.mark.parametrize("missing, extra", [("av", "video"), ("transformers", "transformers")])
def test_sktdtw_encode_without_an_extra_is_one_line(missing, extra, manifest, tmp_path,
                                                    monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
    status = main(["encode", "--videos", str(manifest), "--encoder", str(tmp_path),
                   "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sktdtw encode: error: ") and f"pip install 'sktdtw[{extra}]'" in err


@pytest.mark.parametrize("window, stride, padding, clip_length", [
    (0.2, 0.025, "valid", None), (8, 1, "valid", 3), ([2, 5], 3, "same", 4),
    ([1.0, 0.3], 0.5, "same", None),
])
def test_windows_of_files_are_those_of_the_decoded_arrays(window, stride, padding, clip_length,
                                                          tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    for length in (1, 3, 17, 50):  # shorter and longer than the windows
        paths.append(str(tmp_path / f"{length}.mp4"))
        write_video(paths[-1], rng.integers(0, 256, (length, 16, 16, 3), np.uint8), fps=20)
    videos = [VideoFile(p, fps=f) for p in paths for f in (None, 7.5)]
    encoder = TSESlidingEncoder("meanstd", window=window, stride=stride, padding=padding,
                                clip_length=clip_length, batch_size=4)
    from_files = encoder.fit(videos).transform(videos)
    from_arrays = encoder.fit([read_video(v) for v in videos]).transform(
        [read_video(v) for v in videos])
    for a, b in zip(from_files, from_arrays):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)


def test_transform_files_tensors_and_lazy_sequences_agree(manifest):
    folder = os.path.dirname(manifest)
    paths = [os.path.join(folder, f"v{i}.mp4") for i in range(3)]
    arrays = [read_video(p) for p in paths]
    encoder = _tse(RandomConv3dEncoder(in_channels=3)).fit(paths)
    assert encoder.n_features_in_ == 32 * 32 * 3 and encoder.n_features_out_ == 64
    from_files = encoder.transform(paths)
    for got in (encoder.transform(arrays), encoder.transform([torch.from_numpy(a) for a in arrays]),
                encoder.transform(LazySequence(arrays))):
        for a, b in zip(from_files, got):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="sample 1: video .*corrupt.mp4 cannot be opened"):
        encoder.transform([paths[0], os.path.join(folder, "corrupt.mp4")])


def test_sktdtw_encode_command(manifest, tmp_path, capsys):
    transformers = pytest.importorskip("transformers")
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil

    checkpoint = tmp_path / "ckpt"
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4,
                                         hidden_size=24, num_hidden_layers=1,
                                         num_attention_heads=2, intermediate_size=32,
                                         num_labels=3)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(checkpoint)
    VideoMAEImageProcessorPil(size={"shortest_edge": 32},
                              crop_size={"height": 32, "width": 32}).save_pretrained(checkpoint)
    # A clip length the checkpoint cannot take is one error, not a failure per video.
    status = main(["encode", "--videos", str(manifest), "--encoder", str(checkpoint),
                   "--out", str(tmp_path / "store6"), "--clip-length", "6"])
    err = capsys.readouterr().err
    reported = [line for line in err.splitlines() if line.startswith("sktdtw encode")]
    assert status == 2 and len(reported) == 1 and "Traceback" not in err
    assert "config.num_frames=4 frames, got 6" in reported[0]
    # By default, clips of the checkpoint's num_frames. A failed video ("broken") leaves
    # the others in the store, with exit status 1 unless failures are allowed.
    argv = ["encode", "--videos", str(manifest), "--encoder", str(checkpoint), "--stride", "4",
            "--window", "8", "--batch-size", "5"]
    assert main([*argv, "--out", str(tmp_path / "store")]) == 1
    out, err = capsys.readouterr()
    assert "failed: broken" in err and "1 failed (see failures.csv there)" in out
    store = open_store(tmp_path / "store")
    assert len(store) == 6 and store.n_features == 24 + 3
    assert store.lengths.tolist() == [(t - 8) // 4 + 1 for t in (30, 44, 20, 36, 26, 40)]
    assert main([*argv, "--out", str(tmp_path / "allowed"), "--allow-failures"]) == 0
    assert len(open_store(tmp_path / "allowed")) == 6
    capsys.readouterr()
    assert main(["encode", "--videos", str(manifest), "--encoder", str(checkpoint),
                 "--out", str(tmp_path / "store")]) == 2  # exists already


def test_end_to_end_pipeline_from_video_files(tmp_path):
    videos, y = make_action_videos(n_videos=16, n_classes=2, frame_size=32, random_state=0)
    paths = []
    for i, video in enumerate(videos):
        rgb = np.repeat((np.clip(video, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=3)
        paths.append(str(tmp_path / f"{i}.mp4"))
        write_video(paths[-1], rgb)

    def pipeline():
        return Pipeline([
            ("tse", TSESlidingEncoder(RandomConv3dEncoder(in_channels=3), window=8, stride=2)),
            ("clf", DejaVidClassifier(centroid_length=6, max_epochs=3, random_state=0)),
        ])

    from_files = pipeline().fit(paths, y)
    decoded = [read_video(p) for p in paths]
    in_memory = pipeline().fit(decoded, y)
    np.testing.assert_allclose(from_files.predict_proba(paths), in_memory.predict_proba(decoded),
                               rtol=1e-4, atol=1e-5)
    assert set(from_files.predict(paths)) <= {0, 1}
