"""ConferenceSubscription (RFC 6665 + RFC 4575) over real sockets: against SIPp acting as an
RFC 4579 focus (full, partial, a version gap → re-SUBSCRIBE), and against the Lync focus
double (state in the 2xx, BENOTIFY unanswered, refresh before expiry, unsubscribe) - on the
bot's real endpoint and DialogRouter (tests/calls/join_bot.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.calls.subscription import ConferenceSubscription, SubscriptionFailed
from bot.conferencing.c3p_join import CONTENT_TYPE, FOCUS_HEADERS, AddUser, new_endpoint
from bot.conferencing.roster import Roster, RosterChange
from bot.sip.dialog import Dialog
from bot.sip.message import Request, Response, make_response, new_tag
from bot.sip.transaction import Peer, TimerConfig
from bot.transport.endpoint import EndpointConfig, Listen, ServerRequest, SipEndpoint
from tests.calls.join_bot import BOT, SCENARIOS, JoinBot, join_bot, join_config, until
from tests.doubles.lync_focus import LyncFocus
from tests.peers.conftest import Process, free_port, listening, processes, start

__all__ = ["processes"]  # the fixture, from tests/peers
FAST = TimerConfig(t1=0.05, t2=0.4, t4=0.5)


class Seen:
    """The on_change callback: every change, in order."""

    def __init__(self) -> None:
        self.changes: list[RosterChange] = []

    def __call__(self, change: RosterChange, roster: Roster) -> None:
        self.changes.append(change)

    @property
    def joined(self) -> list[str]:
        return [entity for change in self.changes for entity in change.joined]


@pytest.mark.peer
async def test_sipp_focus_full_partial_and_a_gap(processes: list[Process]) -> None:
    port = free_port()
    sipp = await start(
        "sipp", "-sf", str(SCENARIOS / "focus_conference.xml"), "-m", "1", "-i", "127.0.0.1",
        "-p", str(port), "-nostdin", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    processes.append(sipp)
    await listening(port)
    async with join_bot(join_config(Peer("UDP", "127.0.0.1", port))) as bot:
        seen = Seen()
        subscription = ConferenceSubscription(
            bot.endpoint,
            bot.router,
            f"sip:conf42@127.0.0.1:{port}",
            local=BOT,
            contact=bot.endpoint.contact("bot"),
            on_change=seen,
            expires=600,
            linger=0.2,  # the scenario sends no NOTIFY after the unsubscribe
        )
        await subscription.start()
        await until(lambda: subscription.roster.version == 5, "the full state after the gap")
        assert [c.version for c in seen.changes] == [1, 2, 5]
        assert seen.joined == [
            "sip:alice@example.test",
            "sip:bob@example.test",
            "sip:dave@example.test",  # learnt from the full state the re-SUBSCRIBE brought
        ]
        assert subscription.roster.subject == "Standup"
        await subscription.close()
        assert await sipp.wait(30) == 0, sipp.text
        assert subscription.ended.is_set()
        await until(lambda: len(bot.router) == 0, "the dialog forgotten after its linger")


@pytest.fixture
async def lync() -> AsyncIterator[tuple[LyncFocus, JoinBot]]:
    focus = LyncFocus(timers=FAST)
    peer = await focus.start()
    try:
        async with join_bot(join_config(peer)) as bot:
            # only a user in the conference may subscribe: join the focus first
            add = AddUser(focus=focus.focus_uri, user=BOT, request_id=1, endpoint=new_endpoint())
            await bot.calls.invite(
                focus.focus_uri, body=add.body(), content_type=CONTENT_TYPE, headers=FOCUS_HEADERS
            )
            yield focus, bot
    finally:
        await focus.close()


def subscription_to(focus: LyncFocus, bot: JoinBot, **options: object) -> ConferenceSubscription:
    return ConferenceSubscription(
        bot.endpoint,
        bot.router,
        focus.focus_uri,
        local=BOT,
        contact=bot.endpoint.contact("bot"),
        **options,  # type: ignore[arg-type]
    )


async def test_lync_state_in_the_2xx_then_benotify_unanswered(
    lync: tuple[LyncFocus, JoinBot],
) -> None:
    focus, bot = lync
    seen = Seen()
    subscription = subscription_to(focus, bot, lync=True, on_change=seen)
    await subscription.start()
    # ms-piggyback-first-notify: the state is there as soon as start() returns
    assert subscription.roster.conf_uris == {"audio-video": focus.av_uri}
    assert "sip:bot@contoso.com" in subscription.roster.users
    assert not any(e.startswith("NOTIFY") for e in focus.log)
    focus.add_participant("sip:carol@contoso.com", "Carol")
    await until(lambda: "sip:carol@contoso.com" in seen.joined, "carol's BENOTIFY")
    assert "BENOTIFY 3" in focus.log and focus.notify_statuses == []  # never answered
    await subscription.close()
    assert focus.log[-2:] == ["SUBSCRIBE expires=0", "NOTIFY 3"]  # terminated NOTIFY
    await until(lambda: focus.notify_statuses == [200], "the terminated NOTIFY answered")
    assert len(bot.router) == 1  # the focus INVITE's dialog alone


async def test_without_piggyback_the_state_comes_in_a_notify(
    lync: tuple[LyncFocus, JoinBot],
) -> None:
    focus, bot = lync
    focus.piggyback = False
    seen = Seen()
    subscription = subscription_to(focus, bot, lync=False, on_change=seen)
    await subscription.start()
    await until(lambda: seen.changes != [], "the first NOTIFY")
    assert seen.changes[0].full and focus.notify_statuses == [200]
    await subscription.close()


async def test_refreshed_before_it_expires(
    lync: tuple[LyncFocus, JoinBot],
) -> None:
    focus, bot = lync
    subscription = subscription_to(focus, bot, expires=1, min_refresh=0.2)
    await subscription.start()
    await until(lambda: focus.log.count("SUBSCRIBE refresh") >= 2, "two refreshes")
    assert subscription.active and not subscription.ended.is_set()
    await subscription.close()
    assert subscription.end_reason == "closed"


async def test_a_refused_subscription_is_a_sentence_and_leaves_nothing(
    lync: tuple[LyncFocus, JoinBot],
) -> None:
    focus, bot = lync
    focus.granted.clear()  # as if we had never joined the focus
    subscription = subscription_to(focus, bot)
    with pytest.raises(SubscriptionFailed, match="Failed authorization"):
        await subscription.start()
    assert len(bot.router) == 1  # the focus INVITE's dialog alone


class EagerNotifier:
    """A notifier whose first NOTIFY beats the SUBSCRIBE's 2xx (RFC 6665 §4.1.2.4)."""

    def __init__(self) -> None:
        self.endpoint: SipEndpoint | None = None
        self.notify_status = 0

    async def __call__(self, incoming: ServerRequest) -> Response:
        request: Request = incoming.request
        assert self.endpoint is not None
        tag = new_tag()
        notify = Dialog.as_uas(request, tag).create_request(
            "NOTIFY",
            contact=self.endpoint.contact("conf"),
            body=(
                Path(__file__).parent.parent / "data/conference-info/rfc4575-6.1-full.xml"
            ).read_bytes(),
            content_type="application/conference-info+xml",
        )
        notify.headers.add("Event", "conference")
        notify.headers.add("Subscription-State", "active;expires=600")
        self.notify_status = (await self.endpoint.request(notify)).status
        response = make_response(request, 200, to_tag=tag)
        response.headers.add("Expires", "600")
        return response


async def test_a_notify_before_the_2xx_creates_the_dialog() -> None:
    notifier = EagerNotifier()
    server = SipEndpoint(
        EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST), handler=notifier
    )
    notifier.endpoint = server
    await server.start()
    try:
        async with join_bot(join_config(Peer("UDP", *server.address()))) as bot:
            subscription = ConferenceSubscription(
                bot.endpoint,
                bot.router,
                f"sip:conf@127.0.0.1:{server.address()[1]}",
                local=BOT,
                contact=bot.endpoint.contact("bot"),
                linger=0.2,
            )
            await subscription.start()
            assert notifier.notify_status == 200
            assert subscription.roster.version == 1 and len(subscription.roster.users) == 2
            assert len(bot.router) == 1
            await subscription.close()
            assert len(bot.router) == 1  # for the NOTIFY that follows (RFC 6665 §4.1.2.3)
            await until(lambda: len(bot.router) == 0, "the dialog forgotten after its linger")
    finally:
        await server.close()


class Notifier:
    """A focus on 127.0.0.1 and an impostor on 127.0.0.2 who knows the subscription's Call-ID
    and tags: the impostor's NOTIFY goes first, before the 2xx (RFC 6665 §4.1.2.4) and again
    inside the dialog; the focus's own follow."""

    def __init__(self, focus: SipEndpoint, impostor: SipEndpoint) -> None:
        self.focus = focus
        self.impostor = impostor
        self.dialog: Dialog | None = None
        self.statuses: list[tuple[str, int]] = []

    async def notify(self, sender: str, body: str, *, to: Peer) -> None:
        assert self.dialog is not None
        endpoint = self.focus if sender == "focus" else self.impostor
        notify = self.dialog.create_request(
            "NOTIFY",
            contact=endpoint.contact("conf"),
            body=(DATA / body).read_bytes(),
            content_type="application/conference-info+xml",
        )
        notify.headers.add("Event", "conference")
        notify.headers.add("Subscription-State", "active;expires=600")
        self.statuses.append((sender, (await endpoint.request(notify, destination=to)).status))

    async def __call__(self, incoming: ServerRequest) -> Response:
        request: Request = incoming.request
        tag = new_tag()
        if request.to.tag is None:
            self.dialog = Dialog.as_uas(request, tag)
            await self.notify("impostor", "rfc4575-6.1-full.xml", to=incoming.peer)
            await self.notify("focus", "rfc4575-6.1-full.xml", to=incoming.peer)
        response = make_response(request, 200, to_tag=None if request.to.tag else tag)
        response.headers.add("Expires", "0" if request.headers.get("expires") == "0" else "600")
        return response


DATA = Path(__file__).parent.parent / "data/conference-info"


@pytest.mark.parametrize(
    ("sip", "refused"),
    [({"mode": "embedded"}, 401), ({"trusted_proxies": ["127.0.0.1"]}, 403)],
    ids=["embedded: challenged", "behind a proxy: only through it"],
)
async def test_a_notify_from_elsewhere_than_the_focus_is_refused(
    sip: dict[str, object], refused: int
) -> None:
    """The subscription's dialog passes the identity gate's dialog-flow decision, as a call's
    does (bot.services.identity): a NOTIFY from 127.0.0.2 is not the focus at 127.0.0.1."""
    config = EndpointConfig(listen=(Listen(host="127.0.0.1", port=0),), timers=FAST)
    other = EndpointConfig(listen=(Listen(host="127.0.0.2", port=0),), timers=FAST)
    async with SipEndpoint(config) as focus, SipEndpoint(other) as impostor:
        notifier = Notifier(focus, impostor)
        focus.handler = notifier
        server = Peer("UDP", *focus.address())
        async with join_bot(join_config(server, sip=sip)) as bot:
            subscription = ConferenceSubscription(
                bot.endpoint,
                bot.router,
                f"sip:conf@127.0.0.1:{server.port}",
                local=BOT,
                contact=bot.endpoint.contact("bot"),
                destination=server,
                linger=0.2,
            )
            await subscription.start()
            to = Peer("UDP", *bot.endpoint.address())
            await notifier.notify("impostor", "rfc4575-partial-v2.xml", to=to)
            await notifier.notify("focus", "rfc4575-partial-v2.xml", to=to)
            assert notifier.statuses == [
                ("impostor", refused),  # before the 2xx: the pending dialog is gated too
                ("focus", 200),
                ("impostor", refused),
                ("focus", 200),
            ]
            assert subscription.roster.version == 2  # only the focus's documents
            await subscription.close()
