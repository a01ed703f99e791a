"""Google Speech Commands (v0.02 or v0.01) from a user's copy: the 12-class keyword-spotting task.

The copy is the extracted archive: one folder per word of 1 s, 16 kHz mono WAV files,
`validation_list.txt` and `testing_list.txt` (paths such as `right/bb05582b_nohash_3.wav`, one a
line) and `_background_noise_/` with long WAV recordings of noise. Nothing is downloaded.

The task is MLPerf Tiny's and Arm ML-zoo's (and TF's speech_commands tutorial's), with labels in
their order: 0 `_silence_`, 1 `_unknown_`, then 2..11 yes, no, up, down, left, right, on, off, stop,
go (CLASS_NAMES). A file listed in `validation_list.txt` belongs to the validation split, one in
`testing_list.txt` to the test split, any other to the training split. In each split:
- each of the ten words is every recording of that word;
- `_unknown_` is drawn from the recordings of every other word folder, as many as the ten words'
  average in that split;
- `_silence_` is as many 1 s clips cut from the background noise at random places, each at a random
  gain in [0, 1] so that quiet rooms are silence too. The first 80 % of every noise file gives the
  training split's clips, the next 10 % the validation split's and the last 10 % the test split's,
  so that no stretch of noise is in two splits.
The draws have fixed seeds: the same copy gives the same task. Each split comes back in a fixed
random order, so that a cut of its head (`max_test_examples`) keeps every class.

Features are `udc.data.mfcc`'s (N, 49, 10, 1) uint8 MFCCs, cached in an .npz keyed by the copy's
path, the modification times of its lists and folders and the front end's constants: a second load
reads the cache. WAV files that are not 1 s, 16 kHz mono are fitted as `udc.data.audio` says.
"""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from udc.data import audio, mfcc
from udc.errors import BadDatasetError, OutputNotWritableError, UdcError
from udc.fileio import write_bytes_atomic

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASS_NAMES = (SILENCE, UNKNOWN) + WORDS
VALIDATION_LIST, TESTING_LIST = "validation_list.txt", "testing_list.txt"
NOISE_FOLDER = "_background_noise_"
SPLITS = ("train", "validation", "test")
NOISE_SHARES = (0.8, 0.1, 0.1)  # of every noise file, in SPLITS' order
CACHE_VERSION = 1  # bump when the task's construction changes: older caches are then not read
HOW_TO_GET = ("put your copy of Google's Speech Commands (v0.02 or v0.01, the extracted archive: word folders, "
              f"{VALIDATION_LIST}, {TESTING_LIST}, {NOISE_FOLDER}) in --config.data_dir or $UDC_DATA_DIR, "
              "or in /usr/share/datasets/speech-commands; udc does not download it")


def find_speech_commands(dirs) -> Path | None:
    """The first of `dirs` that looks like a Speech Commands copy (a list, a noise folder or a keyword folder)."""
    for directory in dirs:
        markers = (VALIDATION_LIST, TESTING_LIST, NOISE_FOLDER, WORDS[0])
        if any((directory / marker).exists() for marker in markers):
            return directory
    return None


def read_speech_commands(root: Path, cache_dir: Path) -> dict:
    """{split: (features (N, 49, 10, 1) uint8, labels (N,) int32)} of the copy at `root`, from the cache
    in `cache_dir` when it holds them, else computed and cached there."""
    cache = cache_dir / "speech_commands" / f"{_cache_key(root)}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as f:
                return {split: (f[f"x_{split}"], f[f"y_{split}"]) for split in SPLITS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache is computed again, and replaced
    splits = {split: _featurize(items) for split, items in _task(root).items()}
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{xy}_{split}": arrays[i] for split, arrays in splits.items() for i, xy in enumerate("xy")})
    try:
        write_bytes_atomic(cache, buffer.getvalue())
    except (OutputNotWritableError, OSError) as e:
        raise UdcError(f"cannot write the feature cache {cache} ({e}); "
                       "set $XDG_CACHE_HOME to a writable folder") from None
    return splits


def _cache_key(root: Path) -> str:
    stamps = sorted([path.name, path.stat().st_mtime_ns, path.stat().st_size] for path in root.iterdir())
    key = {"version": CACHE_VERSION, "folder": str(root.resolve()), "stamps": stamps, "front_end": mfcc.FRONT_END,
           "classes": CLASS_NAMES}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _listed(root: Path, name: str) -> set:
    return {line.strip() for line in (root / name).read_text().splitlines() if line.strip()}


def _task(root: Path) -> dict:
    """{split: [(label, what to read: a WAV path, or (noise samples, start, end, gain))]}, in a fixed random order."""
    missing = [name for name in (VALIDATION_LIST, TESTING_LIST) if not (root / name).is_file()]
    if missing:
        raise BadDatasetError(f"Speech Commands copy {root} lacks {' and '.join(missing)}, which say which "
                              "recordings are validation and test; extract the whole archive there")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    absent = [word for word in WORDS if not (root / word).is_dir()]
    if absent:
        raise BadDatasetError(f"Speech Commands copy {root} lacks the word folders {', '.join(absent)}; "
                              "extract the whole archive there")
    validation, testing = _listed(root, VALIDATION_LIST), _listed(root, TESTING_LIST)
    words = {split: [] for split in SPLITS}
    others = {split: [] for split in SPLITS}
    for folder in folders:
        recordings = sorted(folder.glob("*.wav"))
        if not recordings:
            raise BadDatasetError(f"word folder {folder} holds no .wav file; restore its recordings from the "
                                  "archive or remove the folder")
        for path in recordings:
            relative = f"{folder.name}/{path.name}"
            split = "validation" if relative in validation else "test" if relative in testing else "train"
            if folder.name in WORDS:
                words[split].append((CLASS_NAMES.index(folder.name), path))
            else:
                others[split].append((CLASS_NAMES.index(UNKNOWN), path))
    noise = _noise(root)
    task = {}
    for index, split in enumerate(SPLITS):
        rng = np.random.default_rng([CACHE_VERSION, index])
        class_size = int(round(len(words[split]) / len(WORDS)))
        unknown = [others[split][i] for i in rng.permutation(len(others[split]))[:class_size]]
        silence = [(CLASS_NAMES.index(SILENCE), clip) for clip in _silence_clips(noise, index, class_size, rng)]
        items = words[split] + unknown + silence
        task[split] = [items[i] for i in rng.permutation(len(items))]
    return task


def _noise(root: Path) -> list:
    recordings = sorted((root / NOISE_FOLDER).glob("*.wav"))
    if not recordings:
        raise BadDatasetError(f"{root / NOISE_FOLDER} holds no .wav file (the _silence_ class is cut from it); "
                              "restore the folder from the archive")
    return [audio.read_wav(path) for path in recordings]


def _silence_clips(noise: list, split_index: int, count: int, rng) -> list:
    """`count` (noise samples, start, end of the share, gain): 1 s clips from split `split_index`'s share of
    every noise file (less if the share is shorter)."""
    clips = []
    for _ in range(count):
        samples = noise[rng.integers(len(noise))]
        begin = int(len(samples) * sum(NOISE_SHARES[:split_index]))
        end = int(len(samples) * sum(NOISE_SHARES[:split_index + 1]))
        start = begin + int(rng.integers(max(1, end - begin - audio.CLIP_SAMPLES + 1)))
        clips.append((samples, start, end, float(rng.uniform(0.0, 1.0))))
    return clips


def _clip(source) -> np.ndarray:
    if isinstance(source, Path):
        return audio.fit_clip(audio.read_wav(source))
    samples, start, end, gain = source
    return audio.fit_clip(samples[start:min(end, start + audio.CLIP_SAMPLES)] * gain)


def _featurize(items: list) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of `items`, read a batch at a time: a whole split of clips would take gigabytes."""
    features = [mfcc.uint8_features(np.stack([_clip(source) for _, source in items[start:start + mfcc.BATCH]]))
                for start in range(0, len(items), mfcc.BATCH)]
    labels = np.array([label for label, _ in items], np.int32)
    shape = (0, mfcc.FRAMES, mfcc.COEFFICIENTS, 1)
    return (np.concatenate(features) if features else np.zeros(shape, np.uint8)), labels
