"""A SYNTHETIC keyword set: words spoken by espeak-ng on this machine, in Speech Commands' folder layout.

The speech is formant synthesis (Debian's `espeak-ng`), not human recordings: a model trained on it
learns these ten words in these voices, and says little about accuracy on people. It makes the
keyword-spotting task run on a fresh machine, with nothing downloaded (tests, demo configs).

For each of Speech Commands' ten words `per_word` utterances, and for each of OTHER_WORDS (the
`_unknown_` class) enough for about two classes, each in a voice drawn from VOICES (seven English
accents, each plain and with espeak-ng's male and female variants) at a random speed and pitch; the
speech is resampled to 16 kHz, trimmed of its silence, scaled to a random peak, shifted to a random
place in its 1 s clip and mixed with background noise at a random SNR. `_background_noise_` holds
white, pink and brown noise made with numpy. As in Speech Commands, no voice speaks in two splits: a
tenth of the voices speak the validation list, another tenth the test list. Everything follows from
`seed`: the same seed and espeak-ng give the same files.

`generated_folder` writes a set once into a cache folder named after its parameters (in a
temporary folder renamed into place, so that an interrupted generation leaves nothing half
written); `udc.data.speech_commands` reads it like a user's copy.
"""

import io
import os
import shutil
import subprocess
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from udc.data import audio
from udc.data.speech_commands import NOISE_FOLDER, TESTING_LIST, VALIDATION_LIST, WORDS
from udc.errors import DatasetNotFoundError, UdcError

GENERATOR_VERSION = 1  # bump when anything below changes what is generated: older sets are then not reused
DEFAULT_PER_WORD = 150
OTHER_WORDS = ("bed", "bird", "cat", "dog", "house", "tree", "wow", "zero")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5")
VOICES = tuple(accent + variant for accent in ACCENTS for variant in VARIANTS)
SPEED_WPM = (120, 220)
PITCH = (20, 80)  # espeak-ng's 0..99
PEAK_DB = (-20.0, -1.0)
SNR_DB = (5.0, 30.0)
NOISE_SECONDS = 30
NOISE_RMS = 0.05
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # power falls as 1 / f ** exponent
SPLIT_SHARES = {"validation": 0.1, "test": 0.1}  # of the voices and of each word's utterances, as in Speech Commands
TRIM_LEVEL = 0.02  # of the peak: quieter samples at the ends are silence


def espeak_version() -> str:
    if shutil.which("espeak-ng") is None:
        raise DatasetNotFoundError("dataset 'synthetic_keywords' is spoken by espeak-ng, which is not installed; "
                                   "install it: sudo apt-get install espeak-ng")
    version = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return version.split("Data at:")[0].strip()  # "eSpeak NG text-to-speech: 1.51", without the data's path


def generated_folder(cache_dir: Path, per_word: int = DEFAULT_PER_WORD, seed: int = 0) -> Path:
    """The folder of the set of these parameters in `cache_dir`, generated the first time."""
    version = espeak_version()
    espeak = f"{zlib.crc32(version.encode()):08x}"
    folder = Path(cache_dir) / f"v{GENERATOR_VERSION}-{per_word}-per-word-seed-{seed}-espeak-{espeak}"
    if folder.is_dir():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    except OSError as e:
        raise UdcError(f"cannot write the synthetic keyword set in {folder.parent} ({e.strerror}); "
                       "set $XDG_CACHE_HOME to a writable folder") from None
    try:
        generate(temporary, per_word, seed, version)
        os.rename(temporary, folder)
    except OSError:
        if not folder.is_dir():  # another process renamed its own copy into place first: use that one
            raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return folder


def generate(folder: Path, per_word: int, seed: int, version: str) -> None:
    """Writes a set in Speech Commands' layout into the existing, empty `folder`."""
    rng = np.random.default_rng(seed)
    noise = {colour: _coloured_noise(exponent, rng) for colour, exponent in NOISE_COLOURS.items()}
    (folder / NOISE_FOLDER).mkdir()
    for colour, samples in noise.items():
        audio.write_wav(folder / NOISE_FOLDER / f"{colour}_noise.wav", samples)
    voices = list(rng.permutation(VOICES))
    n_validation, n_test = (max(1, round(len(voices) * share)) for share in SPLIT_SHARES.values())
    voices_of = {"validation": voices[:n_validation], "test": voices[n_validation:n_validation + n_test],
                 "train": voices[n_validation + n_test:]}
    per_other_word = max(1, -(-2 * per_word // len(OTHER_WORDS)))  # ceil: two classes' worth of _unknown_
    utterances = []  # (word, file name, split, espeak-ng arguments, seed of the clip's randomness)
    for word in WORDS + OTHER_WORDS:
        count = per_word if word in WORDS else per_other_word
        for index, split in enumerate(_splits(count)):
            voice = voices_of[split][rng.integers(len(voices_of[split]))]
            arguments = ["-v", voice, "-s", str(rng.integers(*SPEED_WPM)), "-p", str(rng.integers(*PITCH))]
            name = f"{zlib.crc32(voice.encode()):08x}_nohash_{index}.wav"
            utterances.append((word, name, split, arguments, int(rng.integers(2**31))))
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # espeak-ng processes run side by side
        spoken = pool.map(lambda u: _speak(u[0], u[3]), utterances)
        for (word, name, split, _, clip_seed), speech in zip(utterances, spoken):
            (folder / word).mkdir(exist_ok=True)
            audio.write_wav(folder / word / name, _clip(speech, noise, np.random.default_rng(clip_seed)))
    for split, list_name in (("validation", VALIDATION_LIST), ("test", TESTING_LIST)):
        lines = [f"{word}/{name}\n" for word, name, s, _, _ in utterances if s == split]
        (folder / list_name).write_text("".join(lines))
    (folder / "README.txt").write_text(_readme(per_word, per_other_word, seed, version))


def _splits(count: int) -> list:
    """The split of each of `count` utterances of a word: SPLIT_SHARES of them in validation and test, the rest
    in train, at least one in each (so three for a `count` below three)."""
    n_validation, n_test = (max(1, round(count * share)) for share in SPLIT_SHARES.values())
    return ["validation"] * n_validation + ["test"] * n_test + ["train"] * max(1, count - n_validation - n_test)


def _speak(word: str, arguments: list) -> np.ndarray:
    """espeak-ng's speech of `word` at 16 kHz, trimmed of the silence around it."""
    command = ["espeak-ng", *arguments, "--stdout", word]
    result = subprocess.run(command, capture_output=True)
    if result.returncode or not result.stdout:
        raise UdcError(f"{' '.join(command)} failed ({result.stderr.decode(errors='replace').strip()}); "
                       "reinstall it: sudo apt-get install --reinstall espeak-ng espeak-ng-data")
    samples, rate = audio.decode_wav(io.BytesIO(result.stdout), f"the output of {' '.join(command)}")
    speech = audio.resample(samples, rate)
    loud = np.flatnonzero(np.abs(speech) > TRIM_LEVEL * np.abs(speech).max())
    return speech[loud[0]:loud[-1] + 1]


def _clip(speech: np.ndarray, noise: dict, rng) -> np.ndarray:
    """1 s of `speech` at a random peak and place, over a random stretch of noise at a random SNR."""
    speech = speech[: audio.CLIP_SAMPLES] * (10 ** (rng.uniform(*PEAK_DB) / 20) / np.abs(speech).max())
    clip = np.zeros(audio.CLIP_SAMPLES, np.float32)
    start = rng.integers(audio.CLIP_SAMPLES - len(speech) + 1)
    clip[start:start + len(speech)] = speech
    background = noise[list(noise)[rng.integers(len(noise))]]
    offset = rng.integers(len(background) - audio.CLIP_SAMPLES + 1)
    stretch = background[offset:offset + audio.CLIP_SAMPLES]
    noise_rms = np.sqrt(np.mean(speech**2)) / 10 ** (rng.uniform(*SNR_DB) / 20)
    return clip + stretch * (noise_rms / np.sqrt(np.mean(stretch**2)))


def _coloured_noise(exponent: float, rng) -> np.ndarray:
    """NOISE_SECONDS of noise whose power falls as 1 / f ** exponent, at NOISE_RMS."""
    n = NOISE_SECONDS * audio.SAMPLE_RATE
    frequencies = np.fft.rfftfreq(n, 1 / audio.SAMPLE_RATE)
    spectrum = rng.normal(size=len(frequencies)) + 1j * rng.normal(size=len(frequencies))
    spectrum[1:] /= frequencies[1:] ** (exponent / 2)
    spectrum[0] = 0.0  # no DC offset
    samples = np.fft.irfft(spectrum, n)
    return (samples * (NOISE_RMS / np.sqrt(np.mean(samples**2)))).astype(np.float32)


def _readme(per_word: int, per_other_word: int, seed: int, version: str) -> str:
    return f"""SYNTHETIC keyword set: espeak-ng speech, NOT human recordings.

Generated by udc (udc.data.synthetic_keywords, generator version {GENERATOR_VERSION}) with {version}.
Accuracy on this set says little about accuracy on people's speech.

Layout as Google Speech Commands': one folder per word of 1 s, 16 kHz mono 16-bit WAV files,
validation_list.txt and testing_list.txt, and {NOISE_FOLDER}/ (white, pink and brown noise made with numpy).

Words: {', '.join(WORDS)} ({per_word} utterances each);
other words for the _unknown_ class: {', '.join(OTHER_WORDS)} ({per_other_word} each).
Voices: {len(VOICES)} ({len(ACCENTS)} accents x {len(VARIANTS)} variants); no voice speaks in two splits.
Speed {SPEED_WPM[0]}-{SPEED_WPM[1]} words per minute, pitch {PITCH[0]}-{PITCH[1]},
peak {PEAK_DB[0]:g} to {PEAK_DB[1]:g} dBFS, random place in the clip,
background noise at {SNR_DB[0]:g}-{SNR_DB[1]:g} dB SNR. Seed {seed}.
"""
