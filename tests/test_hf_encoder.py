"""HuggingFaceVideoEncoder on tiny random-weight checkpoints saved in the test (offline)."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sktdtw.encoders import HuggingFaceVideoEncoder  # noqa: E402

TINY = dict(image_size=32, patch_size=16, num_frames=4, hidden_size=24, num_hidden_layers=1,
            num_attention_heads=2, intermediate_size=32, num_labels=5)


def _checkpoint(kind, path):
    from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil
    from transformers.models.vivit.image_processing_vivit import VivitImageProcessor

    torch.manual_seed(0)
    if kind == "videomae":
        model = transformers.VideoMAEForVideoClassification(
            transformers.VideoMAEConfig(tubelet_size=2, **TINY))
        processor = VideoMAEImageProcessorPil(size={"shortest_edge": 32},
                                              crop_size={"height": 32, "width": 32})
    elif kind == "timesformer":
        model = transformers.TimesformerForVideoClassification(
            transformers.TimesformerConfig(**TINY))
        processor = VideoMAEImageProcessorPil(size={"shortest_edge": 36},
                                              crop_size={"height": 32, "width": 32})
    else:
        model = transformers.VivitForVideoClassification(
            transformers.VivitConfig(tubelet_size=[2, 16, 16], **TINY))
        processor = VivitImageProcessor(size={"shortest_edge": 32},
                                        crop_size={"height": 32, "width": 32})
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return model.eval(), processor


@pytest.mark.parametrize("kind", ["videomae", "timesformer", "vivit"])
def test_logits_and_embedding_match_the_model(kind, tmp_path):
    model, processor = _checkpoint(kind, tmp_path)
    clips = np.random.default_rng(0).integers(0, 256, (3, 4, 40, 48, 3), dtype=np.uint8)
    encoder = HuggingFaceVideoEncoder(tmp_path)
    with torch.inference_mode():
        out = encoder(clips)
        pixels = processor([list(c) for c in clips], return_tensors="pt")["pixel_values"]
        logits = model(pixel_values=pixels).logits
        hidden = model.config.hidden_size
        assert out.shape == (3, hidden + 5) == (3, encoder.n_features)
        torch.testing.assert_close(out[:, hidden:], logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.classifier(out[:, :hidden]), logits, rtol=1e-5,
                                   atol=1e-5)
        # Integer-valued float input (as TSESlidingEncoder passes) gives the same output.
        torch.testing.assert_close(encoder(clips.astype(np.float32)), out)
        torch.testing.assert_close(HuggingFaceVideoEncoder(tmp_path, "logits")(clips), logits,
                                   rtol=1e-5, atol=1e-5)
        assert HuggingFaceVideoEncoder(tmp_path, "embedding")(clips).shape == (3, hidden)


def test_fixed_clip_length_and_bad_inputs_are_named(tmp_path):
    _checkpoint("videomae", tmp_path)
    encoder = HuggingFaceVideoEncoder(tmp_path)
    assert encoder.num_frames == 4 and encoder.frame_size == 32
    with pytest.raises(ValueError, match="config.num_frames=4 frames, got 6; set clip_length=4"):
        encoder(np.zeros((1, 6, 32, 32, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(n, T, H, W, 3\)"):
        encoder(np.zeros((1, 4, 32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="integer values in \\[0, 255\\]"):
        encoder(np.full((1, 4, 32, 32, 3), 0.5, dtype=np.float32))
    # What a resumed sktdtw encode run checks: the output kind and preprocessing count.
    from sktdtw.video._store import _encoder_identity

    identity = _encoder_identity(encoder)
    assert identity == _encoder_identity(HuggingFaceVideoEncoder(tmp_path))
    assert identity != _encoder_identity(HuggingFaceVideoEncoder(tmp_path, output="logits"))
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path)
    processor.image_mean = [0.0, 0.0, 0.0]
    processor.save_pretrained(tmp_path)
    assert identity != _encoder_identity(HuggingFaceVideoEncoder(tmp_path))
    with pytest.raises(ValueError, match="output must be one of"):
        HuggingFaceVideoEncoder(tmp_path, output="pooled")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="no transformers checkpoint can be read from"):
        HuggingFaceVideoEncoder(tmp_path)


@pytest.mark.parametrize("path, message", [
    ("{tmp}/empty", "{tmp}/empty is not a Hugging Face checkpoint folder: it has no "
     "config.json"),
    ("{tmp}/file.txt", "{tmp}/file.txt is a file, not a Hugging Face checkpoint folder"),
    ("{tmp}/no/such/folder", "checkpoint folder {tmp}/no/such/folder does not exist"),
    ("./no-such-folder", "checkpoint folder ./no-such-folder does not exist"),
    ("no-such-model", "checkpoint folder no-such-model does not exist, and no model of that "
     "id is in the Hugging Face cache"),
])
def test_a_path_that_is_not_a_checkpoint_folder_says_so(path, message, tmp_path,
                                                        monkeypatch):
    """Not the Hub's "Repo id must be in the form 'repo_name' or 'namespace/repo_name'"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(ValueError) as error:
        HuggingFaceVideoEncoder(path.format(tmp=tmp_path))
    assert str(error.value).startswith(message.format(tmp=tmp_path)), error.value
