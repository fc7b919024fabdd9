"""The codec table of RFC 3551 §4.5 (Table 4) and G.722 through the G722 module."""

from __future__ import annotations

import numpy as np
import pytest

from bot.media.codecs import codec


def tone(rate: int, seconds: float, hz: float = 1000.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 10000).astype(np.int16)


@pytest.mark.parametrize(
    ("name", "payload_type", "sample_rate"),
    [("PCMU", 0, 8000), ("pcma", 8, 8000), ("G722", 9, 16000)],
)
def test_static_payload_types_and_rates(name: str, payload_type: int, sample_rate: int) -> None:
    chosen = codec(name)
    assert chosen.payload_type == payload_type
    assert chosen.sample_rate == sample_rate
    # RFC 3551 §4.5.2: G.722's RTP clock is 8000 Hz although it samples at 16 kHz
    assert chosen.clock_rate == 8000
    assert chosen.timestamp_step(20) == 160
    assert chosen.samples_per_packet(20) == sample_rate // 50
    assert chosen.octets(chosen.samples_per_packet(20)) == 160  # 64 kbit/s, 20 ms


def test_unknown_codec_is_refused() -> None:
    with pytest.raises(ValueError, match="OPUS"):
        codec("OPUS")


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_codecs_round_trip_a_tone(name: str) -> None:
    chosen = codec(name)
    sound = tone(8000, 0.1)
    data = chosen.encode(sound)
    assert len(data) == 800
    back = chosen.decode(data).astype(np.float64)
    noise = back - sound
    assert 10 * np.log10(np.sum(sound.astype(np.float64) ** 2) / np.sum(noise**2)) > 30


def test_g722_encodes_16khz_at_64kbits_and_decodes_the_tone_back() -> None:
    chosen = codec("G722")
    sound = tone(16000, 0.5)
    data = chosen.encode(sound)
    assert len(data) == 4000  # 8000 octets per second
    back = chosen.decode(data).astype(np.float64)
    assert len(back) == len(sound)
    # the QMF filters delay the signal: align before comparing (ITU-T G.722 §1.4)
    ref = sound.astype(np.float64)[1000:7000]
    delay = max(range(60), key=lambda d: float(np.dot(back[1000 + d : 7000 + d], ref)))
    correlation = np.corrcoef(back[1000 + delay : 7000 + delay], ref)[0, 1]
    assert correlation > 0.99


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "G722"])
def test_payloads_are_the_whole_encoding_cut_into_packets(name: str) -> None:
    chosen = codec(name)
    sound = tone(chosen.sample_rate, 2.51)  # 2.51 s: several chunks, the last packet partial
    payloads = list(chosen.payloads(sound, 20))
    assert len(payloads) == 126
    assert {len(p) for p in payloads} == {160}
    padded = np.concatenate(
        [sound, np.zeros(126 * chosen.sample_rate // 50 - len(sound), np.int16)]
    )
    # one encoder state runs through the chunks: the same octets as encoding at once
    assert b"".join(payloads) == chosen.encode(padded)
