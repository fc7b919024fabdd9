"""``sipbot send``: a small user agent that registers, sends one text to the bot and prints
the reply. For demos and smoke tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.config import Config
from bot.im.bodies import UnsupportedBody, text_of
from bot.sip.digest import DigestClient
from bot.sip.headers import Headers
from bot.sip.message import Request, Response, make_response, new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.sip.uri import SipUri, parse_uri
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint


class SendError(Exception):
    """Why no reply came: shown to the user, exit status 1."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendOptions:
    user: str
    password: str
    text: str
    to: str | None = None
    server: Peer | None = None
    """Where to send (the bot, or a proxy); by default the bot's first listen address."""
    timeout: float = 10.0
    local_host: str | None = None
    """The address to send from; by default loopback of the destination's family."""


async def send(config: Config, options: SendOptions) -> str:
    domain = config.sip.domain
    destination = options.server or _bot_address(config)
    loop = asyncio.get_running_loop()
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

    timers = TimerConfig(t1=config.sip.timers.t1, t2=config.sip.timers.t2, t4=config.sip.timers.t4)
    local = options.local_host or _local_host(destination)
    listen = Listen(transport=destination.transport, host=local, port=0)
    async with SipEndpoint(
        EndpointConfig(listen=(listen,), timers=timers), handler=on_request
    ) as endpoint:
        credentials = DigestClient(options.user, options.password)
        aor = f"<sip:{options.user}@{domain}>"
        contact = str(endpoint.contact(options.user, destination.transport))
        register = _request("REGISTER", SipUri(host=domain), aor, aor, contact)
        register.headers.add("Expires", "300")
        registered = await endpoint.request(
            register, destination=destination, credentials=credentials
        )
        if registered.status != 200:
            raise SendError(
                f"registration as {options.user} failed: {registered.status} {registered.reason}"
            )
        try:
            target = parse_uri(options.to or config.sip.identity)
            message = _request("MESSAGE", target, aor, f"<{target}>", contact)
            message.headers.add("Content-Type", "text/plain;charset=UTF-8")
            message.body = options.text.encode("utf-8")
            sent = await endpoint.request(message, destination=destination, credentials=credentials)
            if not 200 <= sent.status < 300:
                raise SendError(f"the message was refused: {sent.status} {sent.reason}")
            try:
                return await asyncio.wait_for(reply, options.timeout)
            except TimeoutError:
                raise SendError(f"no reply within {options.timeout:g} s") from None
        finally:
            unregister = _request("REGISTER", SipUri(host=domain), aor, aor, contact)
            unregister.headers.add("Expires", "0")
            await endpoint.request(unregister, destination=destination, credentials=credentials)


def _request(method: str, uri: object, from_: str, to: str, contact: str) -> Request:
    headers = Headers.of(
        ("From", f"{from_};tag={new_tag()}"),
        ("To", to),
        ("Call-ID", f"{new_tag()}{new_tag()}@sipbot-send"),
        ("CSeq", f"1 {method}"),
        ("Contact", contact),
    )
    return Request(method, uri, headers)  # type: ignore[arg-type]


def _bot_address(config: Config) -> Peer:
    first = config.sip.listen[0]
    host = first.host if first.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return Peer(first.transport.upper(), host, first.port)


def _local_host(destination: Peer) -> str:
    return "::1" if ":" in destination.host else "127.0.0.1"
