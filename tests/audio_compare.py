"""Yardsticks for "did the far end hear what we played" (test helper, not shipped).

- ``active_length``: how long a recording is *sounding*, from the first to the last 10 ms frame
  whose energy is within ``floor_db`` of the loudest frame; silence before and after does not
  count, pauses between words do. A burst (audio sent faster than real time) is short here.
- ``envelope_correlation``: how alike two recordings' loudness contours are, whatever their rates
  and codecs: both resampled to 8 kHz, RMS over 10 ms frames, aligned by the lag (within ±1 s)
  that best correlates them, then Pearson's correlation of the aligned envelopes (silence padded
  where one is longer, so a recording that is too long or too short scores low).
"""

from __future__ import annotations

import numpy as np
import soxr  # type: ignore[import-untyped]
from numpy.typing import NDArray

FRAME = 0.010
"""Seconds per envelope frame."""
RATE = 8000
"""Both recordings are compared at the narrowband telephone rate."""
MAX_LAG = 1.0
"""Seconds either way the recordings may be shifted to align them."""


def envelope(samples: NDArray[np.generic], rate: int) -> NDArray[np.float64]:
    """RMS of each whole 10 ms frame of ``samples`` (mono) at ``rate`` Hz."""
    signal = np.asarray(samples, dtype=np.float64)
    size = round(FRAME * rate)
    frames = signal[: len(signal) // size * size].reshape(-1, size)
    rms: NDArray[np.float64] = np.sqrt(np.mean(frames**2, axis=1))
    return rms


def active_length(samples: NDArray[np.generic], rate: int, *, floor_db: float = -30.0) -> float:
    """Seconds from the first to the last frame within ``floor_db`` of the loudest frame (0.0 for
    silence)."""
    rms = envelope(samples, rate)
    if rms.size == 0 or rms.max() == 0:
        return 0.0
    active = np.flatnonzero(rms >= rms.max() * 10 ** (floor_db / 20))
    return float((active[-1] - active[0] + 1) * FRAME)


def envelope_correlation(
    a: NDArray[np.generic], rate_a: int, b: NDArray[np.generic], rate_b: int
) -> float:
    """Pearson's correlation of the two envelopes at their best alignment within ±1 s."""
    env_a = envelope(_at_8k(a, rate_a), RATE)
    env_b = envelope(_at_8k(b, rate_b), RATE)
    lag = round(MAX_LAG / FRAME)
    length = max(env_a.size, env_b.size) + 2 * lag
    padded_a = np.zeros(length)
    padded_a[lag : lag + env_a.size] = env_a
    best = -1.0
    for shift in range(2 * lag + 1):
        padded_b = np.zeros(length)
        padded_b[shift : shift + env_b.size] = env_b
        if padded_a.std() == 0 or padded_b.std() == 0:
            return 0.0
        best = max(best, float(np.corrcoef(padded_a, padded_b)[0, 1]))
    return best


def _at_8k(samples: NDArray[np.generic], rate: int) -> NDArray[np.float64]:
    signal = np.asarray(samples, dtype=np.float64)
    resampled: NDArray[np.float64] = signal if rate == RATE else soxr.resample(signal, rate, RATE)
    return resampled
