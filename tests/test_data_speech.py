"""Keyword-spotting data: a small Speech Commands copy made here (a tone per word, noise), the WAV reader,
the feature cache, the bad-input lines, and the espeak-ng keyword set on a tiny size."""

import shutil
import wave

import ml_collections
import numpy as np
import pytest

from udc.data import audio, load_raw, load_splits, mfcc, speech_commands, synthetic_keywords
from udc.data import loaders
from udc.data.loaders import RawDataset
from udc.errors import BadDatasetError, DatasetNotFoundError

OTHER_WORDS = ("cat", "dog")
PER_WORD = 5  # recording 0 of each word is in the validation list, 1 in the testing list, the rest train


def _tone(frequency: float, seconds: float = 1.0, rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _write(path, samples: np.ndarray, rate: int = audio.SAMPLE_RATE) -> None:
    """A 16-bit WAV of (N,) or (N, channels) samples at any rate."""
    frames = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(frames.shape[1])
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.round(frames * 32767).astype("<i2").tobytes())


def _recording(word_index: int, take: int) -> np.ndarray:
    return _tone(300 + 150 * word_index + 10 * take)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr("udc.data.loaders.UDC_CACHE", tmp_path / "cache")
    return tmp_path / "cache"


@pytest.fixture
def copy(tmp_path):
    root = tmp_path / "speech_commands_v0.02"
    listed = {speech_commands.VALIDATION_LIST: [], speech_commands.TESTING_LIST: []}
    for word_index, word in enumerate(speech_commands.WORDS + OTHER_WORDS):
        (root / word).mkdir(parents=True)
        for take in range(PER_WORD):
            name = f"{word_index:08x}_nohash_{take}.wav"
            audio.write_wav(root / word / name, _recording(word_index, take))
            if take < len(listed):
                listed[list(listed)[take]].append(f"{word}/{name}")
    for name, lines in listed.items():
        (root / name).write_text("\n".join(lines) + "\n")
    (root / speech_commands.NOISE_FOLDER).mkdir()
    audio.write_wav(root / speech_commands.NOISE_FOLDER / "white_noise.wav",
                    np.random.default_rng(0).normal(0, 0.1, 20 * audio.SAMPLE_RATE))
    return root


def test_the_lists_make_the_splits_and_the_labels_follow_the_tutorial(copy):
    raw = load_raw("speech_commands", data_dir=copy)
    assert speech_commands.CLASS_NAMES[:3] == ("_silence_", "_unknown_", "yes") and raw.num_classes == 12
    assert raw.x_train.shape[1:] == (49, 10, 1) and raw.x_train.dtype == np.uint8 and raw.source == str(copy)
    # Each word: 3 training recordings, 1 validation, 1 test; _unknown_ and _silence_ as many as an average word.
    np.testing.assert_array_equal(np.bincount(raw.y_train), [3] * 12)
    np.testing.assert_array_equal(np.bincount(raw.y_val), [1] * 12)
    np.testing.assert_array_equal(np.bincount(raw.y_test), [1] * 12)
    for word_index, word in enumerate(speech_commands.WORDS):
        validation_file = copy / word / f"{word_index:08x}_nohash_0.wav"
        expected = mfcc.uint8_features(audio.fit_clip(audio.read_wav(validation_file))[None])[0]
        np.testing.assert_array_equal(raw.x_val[raw.y_val == speech_commands.CLASS_NAMES.index(word)][0], expected)
    assert len(np.unique(raw.x_train.reshape(len(raw.x_train), -1), axis=0)) == len(raw.x_train)


def test_the_validation_list_is_the_validation_split(copy):
    raw = load_raw("speech_commands", data_dir=copy)
    config = ml_collections.ConfigDict(dict(dataset="speech_commands", data_dir=str(copy), download=False,
                                            val_fraction=0.5, seed=3, split_seed=None, max_train_examples=0,
                                            max_test_examples=0))
    splits = load_splits(config)
    assert len(splits.train) == len(raw.y_train)  # nothing is drawn from training for validation
    np.testing.assert_array_equal(splits.val.y, raw.y_val)
    np.testing.assert_array_equal(splits.val.x, raw.x_val / np.float32(255))
    config.max_train_examples = 18  # half of training: half of validation, from its head
    cut = load_splits(config)
    assert len(cut.train) == 18 and cut.val.y.tolist() == raw.y_val[:6].tolist()


def test_a_short_clip_is_padded_a_long_one_cut(tmp_path):
    _write(tmp_path / "short.wav", _tone(500, 0.5))
    _write(tmp_path / "long.wav", _tone(500, 1.5))
    short = audio.fit_clip(audio.read_wav(tmp_path / "short.wav"))
    long = audio.fit_clip(audio.read_wav(tmp_path / "long.wav"))
    assert short.shape == long.shape == (audio.CLIP_SAMPLES,)
    assert not short[8000:].any() and np.abs(short[:8000] - _tone(500, 0.5)).max() < 1e-4
    np.testing.assert_allclose(long, _tone(500), atol=1e-4)


def test_another_rate_is_resampled_and_a_stereo_file_gives_its_first_channel(tmp_path):
    _write(tmp_path / "8k.wav", _tone(440, 1.0, rate=8000), rate=8000)
    resampled = audio.read_wav(tmp_path / "8k.wav")
    assert len(resampled) == audio.SAMPLE_RATE
    assert np.argmax(np.abs(np.fft.rfft(resampled))) == 440  # 1 Hz a bin over 1 s
    np.testing.assert_allclose(resampled[1000:-1000], _tone(440)[1000:-1000], atol=0.01)
    _write(tmp_path / "stereo.wav", np.stack([_tone(440), np.zeros(audio.SAMPLE_RATE)], axis=1))
    np.testing.assert_allclose(audio.read_wav(tmp_path / "stereo.wav"), _tone(440), atol=1e-4)


def test_the_features_are_cached_until_the_copy_changes(copy, cache, monkeypatch):
    first = load_raw("speech_commands", data_dir=copy)
    assert list(cache.glob("speech_commands/*.npz"))

    def not_again(clips):
        raise AssertionError("the features were computed again")

    monkeypatch.setattr(mfcc, "uint8_features", not_again)
    second = load_raw("speech_commands", data_dir=copy)
    for a, b in ((first.x_train, second.x_train), (first.y_val, second.y_val), (first.x_test, second.x_test)):
        np.testing.assert_array_equal(a, b)
    (copy / speech_commands.TESTING_LIST).write_text("yes/00000000_nohash_1.wav\n")
    with pytest.raises(AssertionError, match="computed again"):
        load_raw("speech_commands", data_dir=copy)


def _error_line(error_type, copy) -> str:
    with pytest.raises(error_type) as caught:
        load_raw("speech_commands", data_dir=copy)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_copies_say_what_to_do(copy):
    (copy / "wow").mkdir()
    assert _error_line(BadDatasetError, copy) == (f"word folder {copy / 'wow'} holds no .wav file; restore its "
                                                  "recordings from the archive or remove the folder")
    (copy / "wow").rmdir()
    (copy / "yes" / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    assert _error_line(BadDatasetError, copy).startswith(
        f"{copy / 'yes' / 'broken.wav'} is not a readable PCM WAV file (")
    (copy / "yes" / "broken.wav").unlink()
    (copy / speech_commands.TESTING_LIST).unlink()
    assert _error_line(BadDatasetError, copy) == (f"Speech Commands copy {copy} lacks testing_list.txt, which say "
                                                  "which recordings are validation and test; extract the whole "
                                                  "archive there")


def test_a_missing_copy_names_the_places_and_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr("udc.data.loaders.DEBIAN_DATASETS", tmp_path / "debian")
    monkeypatch.setattr("udc.data.loaders.KERAS_CACHE", tmp_path / "keras")
    monkeypatch.delenv("UDC_DATA_DIR", raising=False)
    message = _error_line(DatasetNotFoundError, tmp_path / "nowhere")
    assert message.startswith(f"dataset 'speech_commands' not found (looked in: {tmp_path / 'nowhere'}, ")
    assert message.endswith("to get it: put your copy of Google's Speech Commands (v0.02 or v0.01, the extracted "
                            "archive: word folders, validation_list.txt, testing_list.txt, _background_noise_) in "
                            "--config.data_dir or $UDC_DATA_DIR, or in /usr/share/datasets/speech-commands; udc "
                            "does not download it")


@pytest.mark.parametrize("changes, message", [
    (dict(x_val=np.zeros((2, 4, 4, 1), np.uint8), y_val=np.zeros(2, np.int32)),
     "the training images are 8x8x1 (HxWxC) but the validation images 4x4x1"),
    (dict(x_val=np.zeros((2, 8, 8, 1), np.uint8)), "a validation split needs both its images (x_val) and its labels"),
    (dict(x_val=np.zeros((2, 8, 8, 1), np.uint8), y_val=np.array([0, 7], np.int32)),
     "1 of 2 validation labels are outside 0..2"),
], ids=["shape", "no-labels", "label-range"])
def test_a_validation_split_is_checked_like_the_others(changes, message):
    arrays = dict(x_train=np.zeros((6, 8, 8, 1), np.uint8), y_train=np.arange(6, dtype=np.int32) % 3,
                  x_test=np.zeros((3, 8, 8, 1), np.uint8), y_test=np.arange(3, dtype=np.int32))
    with pytest.raises(BadDatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RawDataset("toy", **arrays, num_classes=3, **changes)


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (install.sh installs it as root; "
                                         "sudo apt-get install espeak-ng)")


@needs_espeak
def test_the_synthetic_set_has_the_layout_is_deterministic_and_learnable(tmp_path, cache):
    folder = synthetic_keywords.generated_folder(cache / "synthetic_keywords", per_word=20)
    assert "SYNTHETIC" in (folder / "README.txt").read_text().splitlines()[0]
    for word in speech_commands.WORDS + synthetic_keywords.OTHER_WORDS:
        with wave.open(str(next((folder / word).glob("*.wav"))), "rb") as f:
            assert (f.getframerate(), f.getnchannels(), f.getsampwidth(), f.getnframes()) == (16000, 1, 2, 16000)
    again = synthetic_keywords.generated_folder(tmp_path / "again", per_word=20)
    for name in ("validation_list.txt", "yes/" + sorted(p.name for p in (folder / "yes").iterdir())[-1]):
        assert (folder / name).read_bytes() == (again / name).read_bytes()
    assert not list((cache / "synthetic_keywords").glob(".*"))  # the temporary folder was renamed into place

    raw = loaders.load_synthetic_keywords(utterances_per_word=20)
    assert raw.source == str(folder) and raw.x_train.shape[1:] == (49, 10, 1)

    def summary(x):  # each coefficient's mean and spread over time: blind to where the word is
        x = x[..., 0].astype(np.float32)
        return np.concatenate([x.mean(1), x.std(1)], axis=1)

    train, held_out = summary(raw.x_train), summary(np.concatenate([raw.x_val, raw.x_test]))
    scale = train.std(0) + 1e-6
    centroids = np.stack([train[raw.y_train == c].mean(0) for c in range(12)]) / scale
    predicted = np.argmin(((held_out[:, None] / scale - centroids) ** 2).sum(-1), axis=1)
    accuracy = np.mean(predicted == np.concatenate([raw.y_val, raw.y_test]))
    assert accuracy > 3 / 12, f"nearest centroid {accuracy:.2f}, chance 1/12"


def test_without_espeak_the_synthetic_set_says_what_to_install(cache, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatasetNotFoundError) as caught:
        load_raw("synthetic_keywords")
    assert str(caught.value) == ("dataset 'synthetic_keywords' is spoken by espeak-ng, which is not installed; "
                                 "install it: sudo apt-get install espeak-ng")
