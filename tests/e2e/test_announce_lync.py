"""Issue 17, the Lync path end to end through the running bot: ``conferences.backend: c3p``
against the focus factory double (tests/doubles/focus_factory.py), whose conference's focus is
the Lync focus + A/V MCU double (tests/doubles/lync_focus.py) on the same pool address, found
by DNS SRV as a Lync pool is. alice (the bot's own ``sipbot send`` client, over SIP) asks for
``my meetings``, then ``announce 1 <sentence>``: the bot joins the focus (addUser), subscribes,
calls the A/V MCU (ICE checks answered, SRTP, G.722), speaks, and leaves in LYNC.md §2.6's
order. The MCU decodes what it heard, compared with espeak-ng's own rendering."""

from __future__ import annotations

import asyncio
import io
import re
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from bot.config import Config
from bot.runtime import Runtime
from bot.sip.message import Response
from bot.transport.endpoint import ServerRequest
from tests.audio_compare import active_length, envelope_correlation
from tests.calls.join_bot import until
from tests.doubles.dns import serving
from tests.doubles.focus_factory import FocusFactory, Stored
from tests.doubles.lync_focus import LyncFocus
from tests.peers.conftest import free_port

from .conftest import alice_says

SENTENCE = "The quarterly review moves to room four at three o'clock."


@dataclass
class Pool:
    """A Lync pool: the focus factory (C3P SERVICE) and the conference's focus and A/V MCU
    behind one SIP address."""

    factory: FocusFactory
    focus: LyncFocus

    def handle(self, incoming: ServerRequest) -> Response | None:
        if incoming.request.method == "SERVICE":
            return self.factory.handle(incoming)
        return self.focus.handle(incoming)


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    focus = LyncFocus()  # alice@contoso.com's conference JL3GPNYP
    factory = FocusFactory()
    expiry = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    factory.conferences[focus.organizer] = {
        focus.conference_id: Stored(
            conference_id=focus.conference_id,
            subject="Weekly sync",
            policy="openAuthenticated",
            expiry=expiry,
            locked=False,
            mcus=("audio-video", "chat"),
        )
    }
    await focus.start()
    assert focus.endpoint is not None
    pool = Pool(factory, focus)
    focus.endpoint.handler = pool.handle
    try:
        yield pool
    finally:
        await focus.close()


@pytest.fixture
async def bot(pool: Pool, tmp_path: Path) -> AsyncIterator[Runtime]:
    assert pool.focus.endpoint is not None
    host, port = pool.focus.endpoint.address()
    zone = {  # RFC 3263 §4.2: contoso.com's SIP over UDP is the pool
        ("_sip._udp.contoso.com.", "SRV"): [f"0 0 {port} pool.contoso.com."],
        ("pool.contoso.com.", "A"): [host],
    }
    async with serving(zone) as (_, dns_port):
        config = Config.model_validate(
            {
                "sip": {
                    "domain": "contoso.com",
                    "listen": [{"transport": "udp", "host": "127.0.0.1", "port": free_port()}],
                    "dns": {"nameservers": ["127.0.0.1"], "port": dns_port},
                },
                "acl": {"allowed_domains": ["contoso.com"]},
                "conferences": {
                    "backend": "c3p",
                    "c3p": {"server": f"sip:{host}:{port}"},
                    "database_url": f"sqlite+aiosqlite:///{tmp_path / 'db'}",
                },
            }
        )
        runtime = Runtime(config, data_dir=tmp_path)
        await runtime.start()
        try:
            yield runtime
        finally:
            await runtime.stop()


async def espeak(text: str) -> tuple[NDArray[np.int16], int]:
    """espeak-ng's own rendering of ``text`` with the bot's default voice and speed."""
    process = await asyncio.create_subprocess_exec(
        "espeak-ng", "-v", "en", "-s", "160", "--stdout", text,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    with wave.open(io.BytesIO(out)) as wav:
        frames = wav.readframes(wav.getnframes())
        return np.frombuffer(frames, dtype="<i2").astype(np.int16), wav.getframerate()


async def test_announce_into_a_lync_conference(pool: Pool, bot: Runtime) -> None:
    listing = await alice_says(bot.config, "my meetings", timeout=20)
    assert re.search(r"^1\. Weekly sync\b", listing, re.M), listing

    reply = await alice_says(bot.config, f"announce 1 {SENTENCE}", timeout=60)
    said = re.fullmatch(r"Announced in 'Weekly sync' \((\d+(?:\.\d+)?) s\)\.", reply.strip())
    assert said is not None, reply

    focus = pool.focus
    media = focus.media
    assert media is not None and media.offer is not None
    assert media.offer.codec == "G722" and media.sample_rate == 16000
    assert media.checks_answered.is_set()  # ICE: the bot's host candidate answered
    assert media.packets > 0 and media.rejected == 0  # every packet authenticated (SRTP)
    heard = media.received_audio()
    reference, rate = await espeak(SENTENCE)
    played = active_length(heard, 16000)
    spoken = active_length(reference, rate)
    assert abs(played - spoken) <= 0.05 * spoken, (played, spoken)
    assert envelope_correlation(heard, 16000, reference, rate) >= 0.8
    assert float(said.group(1)) >= spoken  # in real time, with its lead and trail silence

    dialogs = [e for e in focus.log if not e.startswith(("NOTIFY", "BENOTIFY"))]
    assert dialogs == [
        "INVITE focus", "ACK focus", "SUBSCRIBE", "INVITE av", "ACK av",
        "BYE av", "SUBSCRIBE expires=0", "BYE focus",
    ], focus.log  # fmt: skip
    # the NOTIFY that ends the subscription is answered, then nothing of the join is left
    await until(lambda: focus.notify_statuses == [200], "the terminated NOTIFY answered")
    await until(lambda: len(bot.router) == 0, "every dialog of the join gone")
    assert len(bot.calls) == 0
