"""TSESlidingEncoder: window rules, resampling, encoders, caching, errors, sklearn API."""

import json

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from sktdtw import DejaVidClassifier, TSESlidingEncoder
from sktdtw.datasets import make_temporal_order

_TWO_D_IS_UNIVARIATE = (
    "2-D X is (n_samples, T) univariate series: n_features_in_ is 1, not X.shape[1]"
)
_RAGGED_OUTPUT = "transform returns a list of (n_windows_i, n_features) arrays, not a 2-D array"
_EXPECTED_FAILED = {
    "check_n_features_in": _TWO_D_IS_UNIVARIATE,
    "check_n_features_in_after_fitting": _TWO_D_IS_UNIVARIATE,
    "check_estimators_empty_data_messages": (
        "an (n, 0) array holds empty series; the error names the empty series, not features"
    ),
    "check_transformer_general": _RAGGED_OUTPUT,
    "check_transformer_data_not_an_array": _RAGGED_OUTPUT,
    "check_transformer_preserve_dtypes": _RAGGED_OUTPUT,
}


@parametrize_with_checks(
    [TSESlidingEncoder(), TSESlidingEncoder("meanstd", window=[2, 1.0], stride=1, padding="same")],
    expected_failed_checks=lambda est: _EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _windows_of(length, **params):
    """The frame indices of every window, read back through the "flatten" encoder."""
    ramp = np.arange(length, dtype=np.float64)[:, None]
    return TSESlidingEncoder("flatten", **params).fit_transform([ramp])[0].astype(np.int64)


# --- window rules --------------------------------------------------------------------------


def test_paper_setting_gives_33_windows_whenever_possible():
    for length in range(1, 700):
        windows = _windows_of(length, window=0.2, stride=0.025)
        width = int(np.floor(0.2 * length + 0.5)) or 1
        distinct = length - width + 1
        assert windows.shape == (min(33, distinct), width), length
        # Contiguous windows from the first frame to the last, starting every
        # stride * length frames to within one frame.
        assert np.all(windows - windows[:, :1] == np.arange(width)), length
        starts = windows[:, 0]
        assert starts[0] == 0 and windows[-1, -1] == length - 1
        assert np.all(np.diff(starts) >= 1)
        if len(starts) == 33:
            assert np.abs(np.diff(starts) - 0.025 * length).max() < 1, length


@pytest.mark.parametrize("length", [1, 7, 8, 30, 101])
@pytest.mark.parametrize(("window", "stride"), [(1, 1), (8, 1), (8, 3), (5, 10)])
def test_int_window_and_stride_match_sliding_window_view(length, window, stride):
    ramp = np.arange(length)
    expected = sliding_window_view(ramp, min(window, length))[::stride]
    np.testing.assert_array_equal(_windows_of(length, window=window, stride=stride), expected)


def test_window_longer_than_the_sequence_is_clamped_to_it():
    np.testing.assert_array_equal(_windows_of(5, window=16, stride=2), [np.arange(5)])
    np.testing.assert_array_equal(_windows_of(3, window=0.9, stride=0.5), [np.arange(3)])


def test_float_window_with_int_stride_and_whole_sequence_window():
    np.testing.assert_array_equal(_windows_of(20, window=1.0, stride=1), [np.arange(20)])
    windows = _windows_of(20, window=0.25, stride=4)
    np.testing.assert_array_equal(windows, sliding_window_view(np.arange(20), 5)[::4])


@pytest.mark.parametrize("length", [1, 3, 10, 40])
def test_same_padding_centres_every_width_on_the_same_positions(length):
    widths = [4, 7, 1.0]
    encoder = TSESlidingEncoder("mean", window=widths, stride=1, padding="same")
    ramp = np.arange(length, dtype=np.float64)[:, None]
    tse = encoder.fit_transform([ramp])[0]
    assert tse.shape == (length, len(widths))
    for column, window in enumerate(widths):
        width = min(length if window == 1.0 else window, length)
        for position, window_mean in enumerate(tse[:, column]):
            # The window of "width" consecutive frames whose mean is window_mean.
            start = window_mean - (width - 1) / 2
            assert start == int(start) and 0 <= start <= length - width
            assert start <= position < start + width  # it contains its position ...
            centred = position - width // 2
            if 0 <= centred <= length - width:  # ... and is centred on it when it fits
                assert start == centred


def test_same_padding_positions_follow_the_stride():
    ramp = np.arange(10, dtype=np.float64)[:, None]
    tse = TSESlidingEncoder("mean", window=1, stride=3, padding="same").fit_transform([ramp])[0]
    np.testing.assert_array_equal(tse[:, 0], [0, 3, 6, 9])
    tse = TSESlidingEncoder("mean", window=1, stride=0.25, padding="same").fit_transform([ramp])[0]
    np.testing.assert_array_equal(tse[:, 0], np.floor(np.arange(4) * 2.5 + 0.5))


def test_several_widths_need_same_padding():
    encoder = TSESlidingEncoder(window=[4, 8], stride=1)
    with pytest.raises(ValueError, match="padding='same'"):
        encoder.fit([np.zeros((10, 2))])


# --- clip_length ---------------------------------------------------------------------------


def test_clip_length_samples_frames_uniformly():
    np.testing.assert_array_equal(
        _windows_of(10, window=10, stride=1, clip_length=5), [[1, 3, 5, 7, 9]]
    )
    # A window shorter than the clip repeats its frames evenly.
    np.testing.assert_array_equal(
        _windows_of(3, window=3, stride=1, clip_length=6), [np.repeat(np.arange(3), 2)]
    )
    # Windows of varying widths all become clips of clip_length frames.
    for length in (40, 77, 300):
        windows = _windows_of(length, window=0.2, stride=0.025, clip_length=16)
        assert windows.shape == (33, 16)
        assert np.all(np.diff(windows, axis=1) >= 0)


# --- encoders and inputs -------------------------------------------------------------------


def test_builtin_encoders_on_videos_match_numpy():
    rng = np.random.default_rng(0)
    videos = rng.random((2, 12, 4, 5, 3)).astype(np.float32)  # (n, T, H, W, C)
    for name, reduce in [
        ("mean", lambda w: w.reshape(len(w), 4, -1).mean(1)),
        ("meanstd", lambda w: np.hstack([w.reshape(len(w), 4, -1).mean(1),
                                         w.reshape(len(w), 4, -1).std(1)])),
        ("flatten", lambda w: w.reshape(len(w), -1)),
    ]:
        encoder = TSESlidingEncoder(name, window=4, stride=3).fit(videos)
        assert encoder.n_features_in_ == 4 * 5 * 3
        tses = encoder.transform(list(videos))
        for video, tse in zip(videos, tses):
            windows = np.stack([video[s:s + 4] for s in range(0, 9, 3)])
            np.testing.assert_allclose(tse, reduce(windows), rtol=1e-6, atol=1e-6)
            assert tse.dtype == np.float32
        assert encoder.n_features_out_ == tses[0].shape[1]


def test_ragged_series_give_ragged_tses():
    X = [np.ones((30, 2)), np.ones((9, 2)), np.ones((100, 2))]
    tses = TSESlidingEncoder(window=4, stride=2).fit_transform(X)
    assert [t.shape for t in tses] == [(14, 2), (3, 2), (49, 2)]


class _Recorder(torch.nn.Module):
    """Records how it is called; a linear map of the mean frame of each window."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.calls = []

    def forward(self, windows):
        self.calls.append(dict(
            training=self.training, grad=torch.is_grad_enabled(),
            inference=torch.is_inference_mode_enabled(), n=len(windows),
            device=windows.device, dtype=windows.dtype,
        ))
        return self.linear(windows.mean(1))


def test_module_runs_frozen_in_eval_mode_in_batches():
    module = _Recorder()
    module.train()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    X = [np.random.default_rng(i).random((20, 3)) for i in range(3)]
    encoder = TSESlidingEncoder(module, window=4, stride=1, batch_size=5, device="cpu").fit(X)
    module.calls.clear()
    tses = encoder.transform(X)
    assert all(not c["training"] and not c["grad"] and c["inference"] for c in module.calls)
    assert all(c["device"] == torch.device("cpu") and c["dtype"] == torch.float32
               for c in module.calls)
    assert [c["n"] for c in module.calls] == [5, 5, 5, 2] * 3  # 17 windows per sequence
    assert module.training  # the flag is restored
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key])
    with torch.no_grad():
        expected = module.linear(torch.from_numpy(
            sliding_window_view(X[1], 4, axis=0).mean(-1)).float()).numpy()
    np.testing.assert_allclose(tses[1], expected, rtol=1e-5, atol=1e-6)
    assert isinstance(tses[1], np.ndarray)


def test_plain_callable_gets_numpy_and_may_return_tensors():
    seen = []

    def energy(windows):
        seen.append(type(windows))
        return torch.from_numpy((windows**2).sum(axis=(1, 2))[:, None])

    X = [np.full((6, 2), 2.0)]
    tse = TSESlidingEncoder(energy, window=3, stride=3).fit_transform(X)[0]
    np.testing.assert_array_equal(tse, [[24.0], [24.0]])
    assert set(seen) == {np.ndarray}


def test_n_jobs_gives_the_same_tses():
    X = [np.random.default_rng(i).random((40 + i, 3)) for i in range(8)]
    one = TSESlidingEncoder("meanstd", window=0.2, stride=0.025).fit_transform(X)
    two = TSESlidingEncoder("meanstd", window=0.2, stride=0.025, n_jobs=2).fit_transform(X)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_verbose_shows_a_progress_bar(capsys):
    TSESlidingEncoder(verbose=1).fit_transform([np.ones((50, 1))] * 3)
    assert "encoding" in capsys.readouterr().err
    TSESlidingEncoder(verbose=0).fit_transform([np.ones((50, 1))] * 3)
    assert capsys.readouterr().err == ""


def test_works_as_the_first_step_of_a_dejavid_pipeline():
    X, y = make_temporal_order(n_samples=40, n_classes=2, random_state=0)
    pipe = Pipeline([
        ("encoder", TSESlidingEncoder("meanstd", window=3, stride=1)),
        ("clf", DejaVidClassifier(centroid_length=4, max_epochs=2, random_state=0)),
    ]).fit(X, y)
    assert pipe["clf"].n_features_in_ == 2 * pipe["encoder"].n_features_in_
    assert pipe.predict(X).shape == (40,)


# --- caching -------------------------------------------------------------------------------

_ENCODER_CALLS = []


def _counting_mean(windows):
    _ENCODER_CALLS.append(len(windows))
    return windows.reshape(len(windows), windows.shape[1], -1).mean(1)


def test_memory_caches_the_encoded_tses(tmp_path):
    X = [np.random.default_rng(i).random((30, 2)) for i in range(3)]
    encoder = TSESlidingEncoder(_counting_mean, window=5, stride=2, memory=str(tmp_path)).fit(X)
    _ENCODER_CALLS.clear()
    first = encoder.transform(X)
    assert sum(_ENCODER_CALLS) == 3 * 13
    second = encoder.transform(X)
    assert sum(_ENCODER_CALLS) == 3 * 13  # served from the cache
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    # Other input or other settings miss the cache.
    encoder.transform([x + 1 for x in X])
    encoder.set_params(stride=3).transform(X)
    assert sum(_ENCODER_CALLS) == 3 * 13 * 2 + 3 * 9


def test_memory_metadata_does_not_hold_the_data(tmp_path):
    """joblib.Memory writes the repr of the cached call's arguments and warns ("Persisting
    input arguments took ...") when that is slow: the sequences must not be written out."""
    X = [np.random.default_rng(i).random((400, 50)) for i in range(40)]
    TSESlidingEncoder(_counting_mean, window=5, memory=str(tmp_path)).fit(X).transform(X)
    metadata = list(tmp_path.rglob("metadata.json"))
    assert metadata
    for file in metadata:
        args = json.loads(file.read_text())["input_args"]
        assert args["sequences"] == "<40 sequences>"
        assert file.stat().st_size < 2000


def test_memory_needs_a_picklable_encoder(tmp_path):
    encoder = TSESlidingEncoder(lambda w: w.mean(1), window=2, stride=1, memory=str(tmp_path))
    encoder.fit([np.ones((5, 1))])
    with pytest.raises(ValueError, match="picklable"):
        encoder.transform([np.ones((5, 1))])


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    dict(window=0), dict(window=1.5), dict(window=True), dict(window=[]), dict(window=[4, 0]),
    dict(stride=0.0), dict(stride=-1), dict(clip_length=0), dict(encoder="median"),
    dict(padding="full"), dict(device="no-such-device"), dict(batch_size=0),
])
def test_invalid_parameters_raise_value_errors(params):
    with pytest.raises(ValueError):
        TSESlidingEncoder(**params).fit([np.ones((10, 2))])


def test_bad_sequences_are_named_by_index():
    good = np.ones((10, 2))
    with_nan = good.copy()
    with_nan[3, 1] = np.nan
    encoder = TSESlidingEncoder(window=2, stride=1)
    with pytest.raises(ValueError, match="sample 1 .*non-finite"):
        encoder.fit([good, with_nan])
    with pytest.raises(ValueError, match="sample 2 .*empty"):
        encoder.fit([good, good, np.ones((0, 2))])
    with pytest.raises(ValueError, match="sample 1 .*empty"):
        encoder.fit([np.ones((5, 4, 4)), np.ones((0, 4, 4))])
    with pytest.raises(ValueError, match="sample 1 .*frames of shape"):
        encoder.fit([np.ones((5, 4, 4)), np.ones((5, 4, 3))])
    encoder.fit([good])
    with pytest.raises(ValueError, match="sample 0 .*3 features.*expecting 2"):
        encoder.transform([np.ones((10, 3))])


def test_bad_encoder_output_is_named_by_sample():
    def nan_on_large(windows):
        return np.where(windows.max() > 5, np.nan, 1.0) * np.ones((len(windows), 1))

    def wrong_rows(windows):
        return np.ones((len(windows) + 1, 2))

    X = [np.ones((6, 1)), np.full((6, 1), 9.0)]
    with pytest.raises(ValueError, match="sample 1: the encoder produced non-finite"):
        TSESlidingEncoder(nan_on_large, window=2, stride=1).fit(X).transform(X)
    with pytest.raises(ValueError, match="sample 0: the encoder returned shape"):
        TSESlidingEncoder(wrong_rows, window=2, stride=1).fit(X)


def test_varying_window_widths_with_flatten_need_clip_length():
    X = [np.ones((20, 1)), np.ones((40, 1))]
    encoder = TSESlidingEncoder("flatten", window=0.2, stride=0.1).fit(X)
    with pytest.raises(ValueError, match="sample 1: .*clip_length"):
        encoder.transform(X)
    tses = encoder.set_params(clip_length=4).fit(X).transform(X)
    assert {t.shape[1] for t in tses} == {4}


def test_invalid_device_is_a_clear_error():
    from sktdtw import TSESlidingEncoder

    with pytest.raises(ValueError, match="not a valid torch device"):
        TSESlidingEncoder(window=2, stride=1, device="nonsense").fit_transform([np.ones((5, 2))])
