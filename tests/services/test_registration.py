"""The bot's own registration against a registrar that answers with non-ASCII digits
(``"²".isdigit()`` is true, ``int("²")`` raises): the registration carries on."""

from __future__ import annotations

import asyncio

from bot.config import Config
from bot.services.registration import Registration
from bot.sip import Request, Response, make_response
from bot.sip.transaction import TimerConfig
from bot.sip.uri import SipUri
from bot.sip.validation import UasPolicy
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint

FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


async def test_non_ascii_digits_from_the_registrar_are_not_numbers() -> None:
    seen: asyncio.Queue[Request] = asyncio.Queue()
    answers = iter([423, 200])

    def registrar(incoming: ServerRequest) -> Response:
        request = incoming.request
        seen.put_nowait(request)
        if request.method != "REGISTER":
            return make_response(request, 200)
        response = make_response(request, next(answers, 200))
        if response.status == 423:
            response.headers.add("Min-Expires", "²")
        else:
            contact = request.headers.get("contact") or ""
            response.headers.add("Contact", f"{contact};expires=²")
            response.headers.add("Expires", "²")
        return response

    server = EndpointConfig(
        listen=(Listen(host="127.0.0.1", port=0),),
        timers=FAST,
        policy=UasPolicy(methods=frozenset({"REGISTER", "OPTIONS"})),
    )
    async with SipEndpoint(server, handler=registrar) as remote:
        host, port = remote.address()
        config = Config(
            sip={"mode": "external"},
            registrar={"server": f"sip:{host}:{port}", "retry_min": 0.05, "keepalive": 0.1},
        )
        bot = EndpointConfig(
            listen=(Listen(host="127.0.0.1", port=0),),
            timers=FAST,
            outbound_proxy=SipUri(host=host, port=port),  # as bot.runtime sets it up
        )
        async with SipEndpoint(bot) as endpoint:
            registration = Registration(endpoint, config)
            registration.start()
            try:
                methods = [(await asyncio.wait_for(seen.get(), 5)).method for _ in range(3)]
                # 423 (unreadable Min-Expires: a failure, retried), 200, then the keep-alive
                # probe: the registration task is alive and registered
                assert methods == ["REGISTER", "REGISTER", "OPTIONS"]
                assert registration.registered and registration.binding.expires == 600
            finally:
                await registration.stop()
