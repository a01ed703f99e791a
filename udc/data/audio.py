"""WAV files as keyword-spotting audio: mono float samples at 16 kHz, fitted to 1 s clips.

Files are read with Python's `wave` module (integer PCM of 8 to 32 bits). What is not the 1 s, 16 kHz,
mono recording Speech Commands holds is made to fit, not refused: a stereo (or wider) file gives its
first channel, another sample rate is resampled to 16 kHz (scipy's polyphase filter, which filters
out what would alias), and a clip shorter than 1 s is padded with zeros at its end, a longer one cut
after its first second. A file `wave` cannot decode raises BadDatasetError naming it.
"""

import math
import wave

import numpy as np

from udc.errors import BadDatasetError

SAMPLE_RATE = 16_000
CLIP_SAMPLES = SAMPLE_RATE  # 1 s


def decode_wav(data, where: str) -> tuple[np.ndarray, int]:
    """(first channel as float32 in [-1, 1), sample rate) of a WAV file's path or file object;
    BadDatasetError naming `where` if it is not integer PCM."""
    try:
        with wave.open(data, "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.readframes(f.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise BadDatasetError(f"{where} is not a readable PCM WAV file ({e}); replace it with a good copy "
                              "(16-bit PCM, 16 kHz mono) or delete it") from None
    if not 1 <= width <= 4 or channels < 1 or rate < 1:
        raise BadDatasetError(f"{where} has {8 * width}-bit samples, {channels} channels at {rate} Hz; "
                              "convert it to 16-bit PCM, 16 kHz mono")
    count = len(frames) // (width * channels)  # a truncated file ends in part of a frame
    first_channel = np.frombuffer(frames, np.uint8)[: count * width * channels].reshape(count, channels, width)[:, 0]
    if width == 1:
        first_channel = first_channel ^ 0x80  # 8-bit WAV samples are unsigned: make them two's complement
    # Each sample's little-endian bytes become the top bytes of an int32: one path for every width.
    as_int32 = np.zeros((count, 4), np.uint8)
    as_int32[:, 4 - width:] = first_channel
    return as_int32.view("<i4")[:, 0].astype(np.float32) / 2.0**31, rate


def read_wav(path) -> np.ndarray:
    """The first channel of the WAV file at `path`, as float32 samples at 16 kHz (resampled if need be)."""
    samples, rate = decode_wav(str(path), str(path))
    return resample(samples, rate)


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return samples
    from scipy.signal import resample_poly

    common = math.gcd(rate, SAMPLE_RATE)
    return resample_poly(samples, SAMPLE_RATE // common, rate // common).astype(np.float32)


def fit_clip(samples: np.ndarray) -> np.ndarray:
    """`samples` as exactly 1 s: zeros appended to a shorter clip, a longer one cut after 1 s."""
    clip = np.zeros(CLIP_SAMPLES, np.float32)
    clip[: min(len(samples), CLIP_SAMPLES)] = samples[:CLIP_SAMPLES]
    return clip


def write_wav(path, samples: np.ndarray) -> None:
    """Writes float samples (clipped to [-1, 1]) as a 16-bit PCM, 16 kHz mono WAV file."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())
