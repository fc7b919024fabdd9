"""baresip (Debian baresip-core 1.0) as a user's softphone that answers by itself and records
what it hears, for the announcement tests (see PEERS.md's notes, summed up here):

- ``answermode=auto`` answers every call; there is then no "incoming call" line, only
  ``Call established`` and ``closed``;
- the ``sndfile`` audio filter writes ``dump-<time>-dec.wav`` (what it received, 16-bit at the
  codec's rate) into ``snd_path``; the WAV header is finished when the call closes;
- ``mediaenc=srtp`` takes plain RTP/AVP and SDES offers, ``srtp-mand`` only RTP/SAVP with
  ``a=crypto`` (it answers a plain offer with 488);
- no audio device: ``audio_player``/``audio_source`` empty, the receive path still decodes;
- ``answermode=manual`` rings; ``ctrl_tcp``'s ``hangup`` then refuses the call with 486 (a busy
  person, ``busy()``); a call that ends before it is established prints "session closed".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.conftest import free_port
from tests.peers.console import Console

REGISTERED = r"\{0/UDP/v4\} 200 OK"
"""What baresip prints when its REGISTER is answered 200."""
CLOSED = r"terminated \(duration: \d+ secs?\)|: session closed: "
"""What baresip prints when a call ends, established or not."""


def listen_port() -> int:
    """A port for baresip's ``sip_listen``: it also binds TCP port + 1 for TLS (PEERS.md), so
    that one must be free too."""
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for baresip")


@dataclass
class RecordingPhone:
    """A running baresip registered as ``user``; its recordings land in ``recordings``."""

    console: Console
    user: str
    recordings: Path
    control: int | None = None
    """Port of its ``ctrl_tcp`` module (netstring-framed JSON commands and events); None for a
    baresip set up otherwise (the README's, in its test)."""

    @classmethod
    async def start(
        cls,
        folder: Path,
        *,
        user: str,
        password: str,
        registrar: tuple[str, int],
        domain: str = "example.test",
        codecs: str = "pcmu,pcma",
        mediaenc: str | None = None,
        answermode: str = "auto",
    ) -> RecordingPhone:
        """Start baresip in ``folder`` registered as ``user`` through ``registrar`` (an
        address, used as outbound proxy so that ``domain`` is never resolved) and wait until
        the registration succeeded. ``answermode="manual"``: it rings and never answers (no
        one is there to pick up)."""
        home = folder / "home"
        config = home / ".baresip"
        recordings = folder / "recordings"
        config.mkdir(parents=True)
        recordings.mkdir()
        sip_port, control = free_port(), free_port()
        while control == sip_port + 1:  # sip_listen takes the TCP port above for TLS
            control = free_port()
        (config / "config").write_text(
            "\n".join([
                "module_path /usr/lib/baresip/modules",
                f"sip_listen 127.0.0.1:{sip_port}",
                "net_interface 127.0.0.1",
                "dns_server 127.0.0.1:53",
                "audio_player",
                "audio_source",
                "audio_alert",
                "module g711.so",
                "module g722.so",
                "module srtp.so",
                "module sndfile.so",
                "module_app account.so",
                "module_app menu.so",
                "module_app ctrl_tcp.so",
                f"ctrl_tcp_listen 127.0.0.1:{control}",
                f"snd_path {recordings}",
                "statmode_default off",
                "jitter_buffer_delay 1-10",
                "",
            ])
        )  # fmt: skip
        host, port = registrar
        account = (
            f"<sip:{user}@{domain}>;auth_pass={password};"
            f'outbound="sip:{host}:{port};transport=udp";answermode={answermode};'
            f"audio_codecs={codecs};ptime=20;regint=600"
        )
        if mediaenc is not None:
            account += f";mediaenc={mediaenc}"
        (config / "accounts").write_text(account + "\n")
        (config / "contacts").write_text("")
        console = await Console.start(["baresip", "-f", str(config)], cwd=folder, home=home)
        phone = cls(console, user, recordings, control)
        await console.expect(REGISTERED, timeout=20)
        return phone

    async def call_closed(self, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until ``count`` calls have ended: baresip prints "Call with <peer> terminated
        (duration: N secs)" whoever hung up, or "<peer>: session closed: <why>" for a call
        that ended before it was established on its side (a CANCEL, or a BYE before the ACK)."""
        await self.console.expect(CLOSED, count=count, timeout=timeout)

    @property
    def log(self) -> str:
        """Everything baresip printed so far (its log: registrations, calls, "srtp: audio: SRTP
        is Enabled (cryptosuite=...)" when a call's media is encrypted)."""
        return self.console.output

    def heard(self) -> list[Path]:
        """The WAV files of what it received, oldest first."""
        return sorted(self.recordings.glob("dump-*-dec.wav"))

    @contextlib.asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Meanwhile, every call that rings (``answermode="manual"``) is hung up at once, as a
        person who is busy does: baresip 1.0 then answers the INVITE with 486."""
        assert self.control is not None, "this baresip has no ctrl_tcp"
        reader, writer = await asyncio.open_connection("127.0.0.1", self.control)
        refusing = asyncio.ensure_future(_hang_up_ringing(reader, writer))
        try:
            yield
        finally:
            refusing.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await refusing
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def close(self) -> int:
        """SIGTERM: baresip hangs up, un-registers, finishes its WAV files and exits (it reads
        no commands: no stdio module)."""
        proc = self.console.proc
        if proc.returncode is None:
            proc.terminate()
        try:
            return await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise AssertionError(f"baresip did not exit:\n{self.console.tail}") from None


async def _hang_up_ringing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """ctrl_tcp: on each ``CALL_INCOMING`` event, the menu's ``hangup`` command."""
    while True:
        length = int((await reader.readuntil(b":"))[:-1])
        message = json.loads((await reader.readexactly(length + 1))[:-1])
        if message.get("event") and message.get("type") == "CALL_INCOMING":
            command = json.dumps({"command": "hangup", "token": "busy"}).encode()
            writer.write(b"%d:%s," % (len(command), command))
            await writer.drain()
