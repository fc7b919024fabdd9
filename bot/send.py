"""``sipbot send``: a small user agent that registers, sends one text to the bot and prints
the reply. For demos and smoke tests; it needs the bot's address, domain and the user's
password - from the options, or leniently from the config file."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from bot.config import Config, Keep
from bot.im.bodies import UnsupportedBody, text_of
from bot.services.register_client import RegisterClient
from bot.sip.digest import DigestClient
from bot.sip.message import Response, make_response, new_call_id, new_request
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from bot.transport.sockets import REFUSED


class SendError(Exception):
    """Why no reply came: shown to the user, exit status 1."""


UNREGISTER_WAIT = 2.0
"""Seconds the closing un-REGISTER may take; the reply is already printed by then."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BotAddress:
    """What the client knows of the bot: its domain and URI, and where to send."""

    domain: str
    uri: str
    server: Peer
    timers: TimerConfig = TimerConfig()

    @classmethod
    def of(cls, config: Config) -> BotAddress:
        first = config.sip.listen[0]
        host = first.host if first.host not in ("0.0.0.0", "::") else "127.0.0.1"
        timers = config.sip.timers
        return cls(
            domain=config.sip.domain,
            uri=config.sip.identity,
            server=Peer(first.transport.upper(), host, first.port),
            timers=TimerConfig(t1=timers.t1, t2=timers.t2, t4=timers.t4),
        )


def client_part(user: str) -> Keep:
    """What ``sipbot send --as USER`` reads of a config file: the bot's address and domain,
    and USER's password - nothing else, so the server's other settings (an unset
    ``${SIPBOT_ADMIN_TOKEN}``, say) are none of its business."""

    def keep(data: dict[str, Any]) -> dict[str, Any]:
        sip = data.get("sip")
        picked: dict[str, Any] = {}
        if isinstance(sip, dict):
            wanted = ("domain", "user", "listen", "tls", "timers")
            picked["sip"] = {key: sip[key] for key in wanted if key in sip}
        registrar = data.get("registrar")
        if isinstance(registrar, dict) and isinstance(registrar.get("users"), dict):
            users = registrar["users"]
            picked["registrar"] = {"users": {user: users[user]} if user in users else {}}
        return picked

    return keep


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOptions:
    user: str
    password: str
    text: str
    to: str | None = None
    server: Peer | None = None
    """Where to send (the bot, or a proxy); by default the bot's first listen address."""
    timeout: float = 10.0
    """Seconds for all of it: registration, the message and the reply."""
    local_host: str | None = None
    """The address to send from; by default loopback of the destination's family."""


async def send(bot: BotAddress | Config, options: SendOptions) -> str:
    """Register as the user, send the text to the bot, return its reply."""
    if isinstance(bot, Config):
        bot = BotAddress.of(bot)
    destination = options.server or bot.server
    loop = asyncio.get_running_loop()
    deadline = loop.time() + options.timeout
    reply: asyncio.Future[str] = loop.create_future()

    def on_request(incoming: ServerRequest) -> Response:
        request = incoming.request
        if request.method != "MESSAGE":
            return make_response(request, 405)
        try:
            text = text_of(request.headers.get("content-type"), request.body)
        except UnsupportedBody:
            return make_response(request, 415)
        if text is not None and not reply.done():
            reply.set_result(text)
        return make_response(request, 200)

    local = options.local_host or _local_host(destination)
    listen = Listen(transport=destination.transport, host=local, port=0)
    async with SipEndpoint(
        EndpointConfig(listen=(listen,), timers=bot.timers), handler=on_request
    ) as endpoint:
        binding = RegisterClient(
            endpoint,
            user=options.user,
            domain=bot.domain,
            credentials=DigestClient(options.user, options.password),
            expires=300,
            destination=destination,
            transport=destination.transport,
        )
        aor = f"<sip:{options.user}@{bot.domain}>"
        try:
            async with asyncio.timeout_at(deadline):
                registered = await binding.register()
        except TimeoutError:
            raise SendError(_silence(destination, options.timeout)) from None
        if registered.status == 408:  # RFC 3261 §8.1.3.1: our own timeout (Timer F)
            raise SendError(_silence(destination, options.timeout))
        if registered.status == 503 and REFUSED in registered.reason:  # ICMP unreachable
            raise SendError(f"nothing listens at {_where(destination)} (is `sipbot run` running?)")
        if binding.granted is None:
            raise SendError(
                f"registration as {options.user} failed: {registered.status} {registered.reason}"
            )
        try:
            async with asyncio.timeout_at(deadline):
                target = parse_uri(options.to or bot.uri)
                message = new_request(
                    "MESSAGE",
                    target,
                    from_=aor,
                    to=f"<{target}>",
                    call_id=new_call_id("sipbot-send"),
                    contact=endpoint.contact(options.user, destination.transport),
                    content_type="text/plain;charset=UTF-8",
                    body=options.text.encode("utf-8"),
                )
                sent = await endpoint.request(
                    message, destination=destination, credentials=binding.credentials
                )
                if not 200 <= sent.status < 300:
                    raise SendError(f"the message was refused: {sent.status} {sent.reason}")
                return await reply
        except TimeoutError:
            raise SendError(f"no reply within {options.timeout:g} s") from None
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(UNREGISTER_WAIT):
                    await binding.unregister()  # RFC 3261 §10.2.2


def _where(destination: Peer) -> str:
    if ":" in destination.host:
        return f"[{destination.host}]:{destination.port}"
    return f"{destination.host}:{destination.port}"


def _silence(destination: Peer, timeout: float) -> str:
    return (
        f"no SIP server answered at {_where(destination)} within {timeout:g} s (is `sipbot run` "
        "running, or is this address banned? `sipbot bans` tells)"
    )


def _local_host(destination: Peer) -> str:
    return "::1" if ":" in destination.host else "127.0.0.1"
