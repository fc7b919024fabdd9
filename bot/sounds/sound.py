"""A sound: mono 16-bit samples and their rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr  # type: ignore[import-untyped]  # no stubs, no py.typed
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True, eq=False)
class Sound:
    """Mono signed 16-bit samples at ``rate`` Hz. The samples are read-only: a sound is shared
    (the speech cache hands the same one to every caller)."""

    samples: NDArray[np.int16]
    """Mono, native byte order."""
    rate: int
    """Samples per second (Hz)."""

    def __post_init__(self) -> None:
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            shape = f"{self.samples.dtype} {self.samples.shape}"
            raise ValueError(f"a Sound is mono int16, not {shape}")
        if self.rate <= 0:
            raise ValueError(f"a Sound's rate is positive, not {self.rate}")
        view = self.samples.view()
        view.flags.writeable = False
        object.__setattr__(self, "samples", view)

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / self.rate

    def at(self, rate: int) -> NDArray[np.int16]:
        """The samples at ``rate`` Hz (band-limited resampling by soxr, its "HQ" quality: the
        pitch and the duration stay; frequencies above the new Nyquist are filtered out)."""
        if rate == self.rate:
            return self.samples
        if rate <= 0:
            raise ValueError(f"a rate is positive, not {rate}")
        resampled: NDArray[np.int16] = soxr.resample(self.samples, self.rate, rate)
        return resampled

    def padded(self, lead: float, trail: float) -> Sound:
        """This sound with ``lead`` seconds of silence before it and ``trail`` after it."""
        before = np.zeros(round(lead * self.rate), dtype=np.int16)
        after = np.zeros(round(trail * self.rate), dtype=np.int16)
        return Sound(np.concatenate([before, self.samples, after]), self.rate)
