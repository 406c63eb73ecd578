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
    # The oracle: each video decoded whole, at the encoder's frame size, and encoded on
    # its own.
    folder = os.path.dirname(manifest)
    for i in range(6):
        frames = read_video(os.path.join(folder, f"v{i}.mp4"), RandomConv3dEncoder().frame_size)
        alone = _tse(RandomConv3dEncoder(in_channels=3)).fit_transform([frames])[0]
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
        # The size recorded is what the files were decoded to: the encoder's frame_size.
        ({}, dict(fps=12, size=16), r"size \(112 then, 16 now\)"),
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


@pytest.mark.parametrize("missing, extra", [("av", "av"), ("transformers", "transformers pillow")])
def test_sktdtw_encode_without_an_extra_is_one_line(missing, extra, manifest, tmp_path,
                                                    monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` raises ImportError
    status = main(["encode", "--videos", str(manifest), "--encoder", str(tmp_path),
                   "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sktdtw encode: error: ") and f"pip install {extra}" in err


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
    # Files are decoded at the encoder's frame size (the 32-pixel videos grow to 112).
    arrays = [read_video(p, RandomConv3dEncoder().frame_size) for p in paths]
    encoder = _tse(RandomConv3dEncoder(in_channels=3)).fit(paths)
    assert encoder.n_features_in_ == 112 * 112 * 3 and encoder.n_features_out_ == 64
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
    assert "already exists; pass --overwrite to replace it" in capsys.readouterr().err
    # A checkpoint folder that is not there is named so, not as a Hub repo id.
    assert main(["encode", "--videos", str(manifest), "--encoder",
                 str(tmp_path / "no" / "ckpt"), "--out", str(tmp_path / "other")]) == 2
    assert capsys.readouterr().err == (f"sktdtw encode: error: checkpoint folder "
                                       f"{tmp_path / 'no' / 'ckpt'} does not exist\n")


# A small fit, for a model to predict with.
_TINY_FIT = ["--max-epochs", "1", "--centroid-length", "2", "--init", "mean",
             "--n-prototypes", "1", "--cv", "none", "--calibration", "none"]


def _encode(manifest, out, *options):
    """``sktdtw encode`` of ``manifest`` in windows of 8 frames (``options`` given later
    override these)."""
    return main(["encode", "--videos", str(manifest), "--out", str(out), "--window", "8",
                 "--stride", "4", "--clip-length", "4", "--batch-size", "8",
                 "--allow-failures", *options])


def test_sktdtw_encode_an_unlabelled_manifest_for_predict_not_fit(manifest, tmp_path,
                                                                   capsys):
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("".join(",".join(line.split(",")[:2]) + "\n"
                                  for line in manifest.read_text().splitlines()))
    assert unlabelled.read_text().startswith("id,path\nv0,v0.mp4\n")
    assert _encode(unlabelled, tmp_path / "unlabelled", "--encoder", "random-conv3d",
                   "--root", str(manifest.parent)) == 0
    assert "6 videos of 64 features (unlabelled)" in capsys.readouterr().out
    store = open_store(tmp_path / "unlabelled")
    assert store.labels is None and store.ids.tolist() == [f"v{i}" for i in range(6)]
    assert main(["fit", "--store", str(tmp_path / "unlabelled"), "--out",
                 str(tmp_path / "m.joblib")]) == 2
    assert ("has no labels; fit needs them: build or encode it from a manifest with a label "
            "column") in capsys.readouterr().err
    assert _encode(manifest, tmp_path / "labelled", "--encoder", "random-conv3d") == 0
    assert main(["fit", "--store", str(tmp_path / "labelled"), "--out",
                 str(tmp_path / "m.joblib"), *_TINY_FIT]) == 0
    assert main(["predict", "--model", str(tmp_path / "m.joblib"), "--store",
                 str(tmp_path / "unlabelled"), "--out", str(tmp_path / "p.csv")]) == 0
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "id,predicted,proba_0,proba_1"
    assert [row.split(",")[0] for row in rows[1:]] == store.ids.tolist()


def test_sktdtw_encode_by_name_and_size_is_encode_videos_of_that_encoder(manifest, tmp_path):
    assert _encode(manifest, tmp_path / "cli", "--encoder", "random-conv3d",
                   "--size", "16x24") == 0
    expected, _ = encode_videos(manifest, TSESlidingEncoder(
        RandomConv3dEncoder(), window=8, stride=4, clip_length=4, batch_size=8),
        tmp_path / "api", size=(16, 24))
    got = open_store(tmp_path / "cli")
    np.testing.assert_array_equal(got.lengths, expected.lengths)
    np.testing.assert_array_equal(got.read_batch(slice(None))[0],
                                  expected.read_batch(slice(None))[0])


_ENCODERS_MODULE = '''
import torch


class MeanColour(torch.nn.Module):
    """The mean colour of each clip; clips of 3 frames unless --clip-length says otherwise."""

    num_frames = 3

    def forward(self, clips):
        return clips.mean(dim=(1, 2, 3))


def build():
    return MeanColour()
'''


def test_sktdtw_encode_with_a_module_callable(manifest, tmp_path, monkeypatch):
    (tmp_path / "cli_test_encoders.py").write_text(_ENCODERS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["encode", "--videos", str(manifest), "--out", str(tmp_path / "store"),
                 "--encoder", "cli_test_encoders:build", "--window", "8", "--stride", "4",
                 "--allow-failures"]) == 0
    from cli_test_encoders import MeanColour

    # Its num_frames is the clip length, as a checkpoint's is.
    expected, _ = encode_videos(manifest, TSESlidingEncoder(
        MeanColour(), window=8, stride=4, clip_length=3), tmp_path / "api")
    got = open_store(tmp_path / "store")
    assert got.n_features == 3
    np.testing.assert_allclose(got.read_batch(slice(None))[0],
                               expected.read_batch(slice(None))[0], rtol=1e-6)


@pytest.mark.parametrize("encoder, message", [
    (["no_such_module_of_sktdtw:build"], "--encoder no_such_module_of_sktdtw:build: module "
     "no_such_module_of_sktdtw cannot be imported: No module named"),
    (["sktdtw.encoders:Nope"], "module sktdtw.encoders has no attribute Nope"),
    (["sktdtw:__version__"], "__version__ is not callable (its type is str)"),
    (["sktdtw.io:open_store"], "open_store cannot be called with no arguments"),
    (["collections:OrderedDict"], "OrderedDict() returned an object of type OrderedDict, not a "
     "torch.nn.Module"),
    (["random-conv3d", "--output", "logits"], "--output chooses among a Hugging Face "
     "checkpoint's outputs; --encoder random-conv3d is not one"),
])
def test_a_bad_encoder_is_one_line_before_anything_is_encoded(encoder, message, manifest,
                                                               tmp_path, capsys):
    assert _encode(manifest, tmp_path / "store", "--encoder", *encoder) == 2
    err = capsys.readouterr().err
    assert err.startswith("sktdtw encode: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not os.path.exists(tmp_path / "store.partial")


def test_sktdtw_encode_overwrite_replaces_a_store_only(manifest, tmp_path, capsys):
    out = tmp_path / "store"
    assert _encode(manifest, out, "--encoder", "random-conv3d") == 0
    lengths = open_store(out).lengths.tolist()
    capsys.readouterr()
    assert _encode(manifest, out, "--encoder", "random-conv3d", "--window", "4") == 2
    assert capsys.readouterr().err == (f"sktdtw encode: error: {out} already exists; pass "
                                       "--overwrite to replace it\n")
    assert open_store(out).lengths.tolist() == lengths
    assert _encode(manifest, out, "--encoder", "random-conv3d", "--window", "4",
                   "--overwrite") == 0
    assert open_store(out).lengths.tolist() == [(t - 4) // 4 + 1 for t in (30, 44, 20, 36, 26, 40)]
    # Never a directory that is not a store, refused before any video is encoded.
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    capsys.readouterr()
    assert _encode(manifest, tmp_path / "folder", "--encoder", "random-conv3d",
                   "--overwrite") == 2
    assert "folder exists and is not a TSE store; refusing to replace it" in (
        capsys.readouterr().err)
    assert (tmp_path / "folder" / "keep.txt").read_text() == "mine"
    assert not os.path.exists(tmp_path / "folder.partial")


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
    decoded = [read_video(p, RandomConv3dEncoder().frame_size) for p in paths]
    in_memory = pipeline().fit(decoded, y)
    np.testing.assert_allclose(from_files.predict_proba(paths), in_memory.predict_proba(decoded),
                               rtol=1e-4, atol=1e-5)
    assert set(from_files.predict(paths)) <= {0, 1}
