"""G.711 against reference values: ITU-T G.711 (11/88) Tables 1 (A-law) and 2 (µ-law) as the
decoder tables of tests/data/g711/decode.json, and the encoder of the ITU-T G.191 Software Tool
Library (``g711.c``), whose negative inputs take the one's complement (so -1 codes like 0 with
the sign bit cleared)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

TABLES = json.loads((Path(__file__).parents[1] / "data" / "g711" / "decode.json").read_text())
ALL_CODES = bytes(range(256))
EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


def pcm(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int16)


@pytest.mark.parametrize(
    ("sample", "code"),
    [(0, 0xFF), (-1, 0x7F), (1, 0xFF), (100, 0xF2), (-100, 0x73), (32767, 0x80), (-32768, 0x00)],
)
def test_ulaw_encodes_reference_values(sample: int, code: int) -> None:
    assert ulaw_encode(pcm(sample)) == bytes([code])


@pytest.mark.parametrize(
    ("sample", "code"),
    [(0, 0xD5), (-1, 0x55), (15, 0xD5), (16, 0xD4), (32767, 0xAA), (-32768, 0x2A)],
)
def test_alaw_encodes_reference_values(sample: int, code: int) -> None:
    # A-law: even bits inverted on the wire (G.711 §3), so silence is 0xD5, not 0x80
    assert alaw_encode(pcm(sample)) == bytes([code])


def test_decoders_match_the_g711_tables() -> None:
    assert ulaw_decode(ALL_CODES).tolist() == TABLES["ulaw"]
    assert alaw_decode(ALL_CODES).tolist() == TABLES["alaw"]
    assert ulaw_decode(bytes([0xFF, 0x00, 0x80])).tolist() == [0, -32124, 32124]
    assert alaw_decode(bytes([0xD5, 0x55, 0xAA])).tolist() == [8, -8, 32256]


def test_every_code_word_survives_decode_then_encode() -> None:
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # µ-law has two zeros: 0x7F ("negative zero") comes back as 0xFF
    expected = bytes(0xFF if code == 0x7F else code for code in ALL_CODES)
    assert ulaw_encode(ulaw_decode(ALL_CODES)) == expected


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_every_sample_round_trips_within_its_segment_step(encode, decode) -> None:  # type: ignore[no-untyped-def]
    decoded = decode(encode(EVERY_SAMPLE)).astype(np.int32)
    error = np.abs(decoded - EVERY_SAMPLE.astype(np.int32))
    magnitude = np.abs(EVERY_SAMPLE.astype(np.int32))
    # the step doubles with each segment: half a step (+ the G.191 one's-complement unit)
    assert np.all(error <= np.maximum(magnitude // 16, 16) + 8)
    # and the mapping is monotonic: a louder input never decodes quieter
    assert np.all(np.diff(decoded) >= 0)


def test_encoders_take_any_int16_view_and_keep_the_length() -> None:
    samples = pcm(0, 1000, -1000, 5)[::2]  # not contiguous
    assert len(ulaw_encode(samples)) == 2
    assert len(alaw_encode(samples)) == 2
