"""The keyword-spotting front end of MLPerf Tiny and Arm ML-zoo's DS-CNN: 49x10 MFCCs of a 1 s clip.

A 1 s clip at 16 kHz is cut into 49 frames of 40 ms (640 samples, Hann window) every 20 ms (320
samples); each frame's magnitude spectrum (1,024-point FFT) is pooled into 40 mel bins from 20 Hz to
4 kHz, its log taken (plus 1e-6, so that digital silence stays finite) and its DCT's first 10
coefficients kept: 49x10 features, computed with `tf.signal` in batches.

udc's pipeline takes uint8 images and divides them by 255, so the features are stored as
(N, 49, 10, 1) uint8 through one fixed affine map: FEATURE_MIN..FEATURE_MAX onto 0..255, values
outside clipped. Nothing is lost that the device keeps: the exported model's int8 input has 256
levels over the same [0, 1], so a device computes the same MFCCs and feeds
round((mfcc - FEATURE_MIN) / FEATURE_STEP) - 128. FEATURE_MIN is the first coefficient of digital
silence (2 * 40 * ln(1e-6) / sqrt(80) = -123.6, the lowest any coefficient reaches in practice) and
FEATURE_MAX leaves room for a loud clip's first coefficient; the other nine stay well inside.
"""

import numpy as np

from udc.data.audio import CLIP_SAMPLES, SAMPLE_RATE

WINDOW_SAMPLES = 640  # 40 ms
STRIDE_SAMPLES = 320  # 20 ms
FFT_LENGTH = 1024  # the power of two above the window, as tf.signal.stft picks
MEL_BINS = 40
LOWER_HZ, UPPER_HZ = 20.0, 4000.0
LOG_OFFSET = 1e-6
COEFFICIENTS = 10
FRAMES = 1 + (CLIP_SAMPLES - WINDOW_SAMPLES) // STRIDE_SAMPLES  # 49
FEATURE_MIN, FEATURE_MAX = -124.0, 36.0
FEATURE_STEP = (FEATURE_MAX - FEATURE_MIN) / 255.0
BATCH = 512  # clips per tf.signal call: fast, and a few tens of MB

# What the features depend on: a cache of features keeps these beside them.
FRONT_END = {"sample_rate": SAMPLE_RATE, "clip_samples": CLIP_SAMPLES, "window": WINDOW_SAMPLES,
             "stride": STRIDE_SAMPLES, "fft_length": FFT_LENGTH, "mel_bins": MEL_BINS, "lower_hz": LOWER_HZ,
             "upper_hz": UPPER_HZ, "log_offset": LOG_OFFSET, "coefficients": COEFFICIENTS,
             "feature_range": [FEATURE_MIN, FEATURE_MAX]}


def mfccs(clips: np.ndarray) -> np.ndarray:
    """(N, 49, 10) float32 MFCCs of (N, 16000) float clips in [-1, 1]."""
    from udc.compat import tf

    mel_matrix = tf.signal.linear_to_mel_weight_matrix(MEL_BINS, FFT_LENGTH // 2 + 1, SAMPLE_RATE, LOWER_HZ, UPPER_HZ)
    batches = []
    for start in range(0, len(clips), BATCH):
        spectra = tf.abs(tf.signal.stft(tf.constant(clips[start:start + BATCH], tf.float32), WINDOW_SAMPLES,
                                        STRIDE_SAMPLES, FFT_LENGTH, window_fn=tf.signal.hann_window))
        log_mel = tf.math.log(tf.tensordot(spectra, mel_matrix, 1) + LOG_OFFSET)
        batches.append(tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :COEFFICIENTS].numpy())
    return np.concatenate(batches) if batches else np.zeros((0, FRAMES, COEFFICIENTS), np.float32)


def to_uint8(features: np.ndarray) -> np.ndarray:
    """MFCCs (N, 49, 10) as the uint8 images (N, 49, 10, 1) udc trains on: FEATURE_MIN -> 0, FEATURE_MAX -> 255."""
    levels = np.round((np.clip(features, FEATURE_MIN, FEATURE_MAX) - FEATURE_MIN) / FEATURE_STEP)
    return levels.astype(np.uint8)[..., None]


def uint8_features(clips: np.ndarray) -> np.ndarray:
    """(N, 49, 10, 1) uint8 features of (N, 16000) float clips."""
    return to_uint8(mfccs(clips))
