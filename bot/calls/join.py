"""Joining a conference to be heard in it: a standards focus (RFC 4579) or a Lync / Skype for
Business focus (MS-CONFBAS, MS-CONFAV; LYNC.md §2.2, §2.3, §2.6).

- standards (RFC 4579 §5.1): INVITE the conference URI with audio; when the 2xx shows a focus
  (``isfocus`` in its Contact, §3.3, or ``conference`` in Allow-Events) subscribe to the
  conference event package (RFC 4575) for the roster;
- Lync, a URI with ``opaque=app:conf:focus:…``: INVITE the focus with a C3P addUser (the
  granted role is read back; ``Supported: ms-sender``, our Contact, and From with the bot's
  one ``epid``, as pidgin-sipe sends them, LYNC.md §2.6), ACK, SUBSCRIBE ``Event: conference``
  (the same ``epid``; the first state in the 2xx), then INVITE the A/V MCU of ``conf-uris``
  (purpose ``audio-video``; else the focus URI with ``:focus:`` → ``:audio-video:``, as
  pidgin-sipe derives it) with the Lync audio offer (``calls.call(…, lync=True)``: G.722
  first, SRTP keys on RTP/AVP, ICE, the same ``epid``);
- leaving, in pidgin-sipe's order (LYNC.md §2.6): BYE the A/V MCU, unsubscribe
  (``Expires: 0``), BYE the focus.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from bot.calls.audio import AudioCall
from bot.calls.calls import Calls
from bot.calls.invite import InviteSession
from bot.calls.subscription import (
    ConferenceSubscription,
    OnChange,
    Router,
    SubscriptionFailed,
)
from bot.conferencing.c3p_join import (
    CONTENT_TYPE,
    FOCUS_HEADERS,
    AddUser,
    AddUserError,
    new_endpoint,
    parse_add_user_response,
)
from bot.conferencing.models import Conference
from bot.conferencing.roster import Roster
from bot.config import Config
from bot.errors import Refusal
from bot.sip.message import Response
from bot.sip.uri import SipUri, parse_uri

log = structlog.get_logger("bot.calls.join")
_request_ids = itertools.count(1)


class JoinFailed(Refusal):
    """The conference would not have us (the message is the sentence for a person)."""


@dataclass
class Joined:
    """A conference the bot is in: its audio call and, when the focus offers one, its roster."""

    call: AudioCall
    roster: Roster | None
    where: str
    focus: InviteSession | None = None
    subscription: ConferenceSubscription | None = None
    role: str | None = None
    """The role a Lync focus granted (``presenter`` for a trusted application)."""
    _left: bool = field(default=False, repr=False)

    async def leave(self) -> None:
        """Hang up everything, in LYNC.md §2.6's order; idempotent, never raises."""
        if self._left:
            return
        self._left = True
        for step in (self.call.hangup, self._unsubscribe, self._bye_focus):
            try:
                await step()
            except Exception:
                log.exception("join.leave_step_failed", where=self.where)
        log.info("join.left", where=self.where)

    async def _unsubscribe(self) -> None:
        if self.subscription is not None:
            await self.subscription.close()

    async def _bye_focus(self) -> None:
        if self.focus is not None:
            await self.focus.bye()


class Joiner:
    def __init__(self, calls: Calls, router: Router, config: Config):
        self.calls = calls
        self.router = router
        self.config = config

    @property
    def me(self) -> str:
        return f"sip:{self.config.sip.user}@{self.config.sip.domain}"

    async def join(
        self, conference: Conference | str, *, on_roster: OnChange | None = None
    ) -> Joined:
        """Join ``conference`` with audio; :class:`JoinFailed` (or the call's ``CallFailed``)
        with a sentence when that cannot be done."""
        uri = conference.uri if isinstance(conference, Conference) else conference
        if is_lync_focus(uri):
            return await self._join_lync(uri, on_roster)
        return await self._join_standard(uri, on_roster)

    # --- RFC 4579 -----------------------------------------------------------------------------

    async def _join_standard(self, uri: str, on_roster: OnChange | None) -> Joined:
        call = await self.calls.call(uri)
        joined = Joined(call=call, roster=None, where=uri)
        focus = focus_of(call.invite.response)
        if focus is not None:
            subscription = self._subscription(focus, lync=False, on_roster=on_roster)
            try:
                await subscription.start()
            except (SubscriptionFailed, OSError) as exc:
                log.info("join.no_roster", where=uri, error=str(exc))
            else:
                joined.subscription, joined.roster = subscription, subscription.roster
        log.info("join.joined", where=uri, lync=False, roster=joined.roster is not None)
        return joined

    # --- Lync ---------------------------------------------------------------------------------

    async def _join_lync(self, focus_uri: str, on_roster: OnChange | None) -> Joined:
        add = AddUser(
            focus=focus_uri, user=self.me, request_id=next(_request_ids), endpoint=new_endpoint()
        )
        focus = await self.calls.invite(
            focus_uri, body=add.body(), content_type=CONTENT_TYPE, headers=FOCUS_HEADERS, lync=True
        )
        undo: list[Callable[[], Awaitable[None]]] = [focus.bye]
        try:
            role = self._granted(focus, add)
            subscription = self._subscription(focus_uri, lync=True, on_roster=on_roster)
            try:
                await subscription.start()
            except (SubscriptionFailed, OSError) as exc:
                # the A/V MCU still takes us (a "direct media INVITE", LYNC.md §2.3)
                log.info("join.no_roster", where=focus_uri, error=str(exc))
                roster = None
            else:
                undo.insert(0, subscription.close)
                roster = subscription.roster
            av_uri = (roster.conf_uris.get("audio-video") if roster else None) or av_mcu_uri(
                focus_uri
            )
            call = await self.calls.call(av_uri, lync=True)
        except BaseException:
            for step in undo:
                with contextlib.suppress(Exception):
                    await step()
            raise
        log.info("join.joined", where=focus_uri, lync=True, role=role, av=av_uri)
        return Joined(
            call=call,
            roster=roster,
            where=focus_uri,
            focus=focus,
            subscription=subscription if roster is not None else None,
            role=role,
        )

    def _granted(self, focus: InviteSession, add: AddUser) -> str | None:
        try:
            body = focus.response.body if focus.response is not None else b""
            granted = parse_add_user_response(body, add)
        except AddUserError as exc:
            log.warning("join.add_user_unreadable", where=add.focus, error=str(exc))
            raise JoinFailed(
                "The conference server's answer made no sense, so I stayed out."
            ) from None
        if not granted.success:
            log.info("join.add_user_failed", where=add.focus, reason=granted.reason)
            raise JoinFailed(f"The conference server would not let me in ({granted.reason}).")
        if granted.in_lobby:
            raise JoinFailed("The conference put me in the lobby; someone has to admit me.")
        return granted.roles[0] if granted.roles else None

    def _subscription(
        self, uri: str, *, lync: bool, on_roster: OnChange | None
    ) -> ConferenceSubscription:
        endpoint = self.calls.endpoint
        return ConferenceSubscription(
            endpoint,
            self.router,
            uri,
            local=self.me,
            contact=endpoint.contact(self.config.sip.user),
            lync=lync,
            on_change=on_roster,
            epid=self.calls.epid if lync else None,
        )


def is_lync_focus(uri: str) -> bool:
    """A Lync focus URI: ``…;opaque=app:conf:focus:…`` (LYNC.md §2.1)."""
    parsed = _sip(uri)
    opaque = parsed.param("opaque") if parsed is not None else None
    return bool(opaque) and str(opaque).lower().startswith("app:conf:focus")


def av_mcu_uri(focus_uri: str) -> str:
    """pidgin-sipe's ``sipe_conf_build_uri``: the focus URI with ``:focus:`` → ``:audio-video:``."""
    return focus_uri.replace("app:conf:focus:", "app:conf:audio-video:", 1)


def focus_of(response: Response | None) -> str | None:
    """Where to subscribe for the roster, or None when the answer shows no focus. RFC 4579
    §3.3: the focus marks its Contact with ``isfocus`` and that Contact is the conference URI;
    a server that offers the conference event package says so in Allow-Events (RFC 6665
    §8.2.2), and is asked at its Contact, the dialog's remote target."""
    if response is None:
        return None
    contacts = response.contacts
    for contact in contacts:
        marked = any(name.lower() == "isfocus" for name, _ in contact.params)
        if marked or (isinstance(contact.uri, SipUri) and contact.uri.has_param("isfocus")):
            return str(contact.uri)
    events = ",".join(response.headers.values("allow-events")).lower()
    if contacts and "conference" in (e.strip() for e in events.split(",")):
        return str(contacts[0].uri)
    return None


def _sip(uri: str) -> SipUri | None:
    try:
        parsed = parse_uri(uri)
    except ValueError:
        return None
    return parsed if isinstance(parsed, SipUri) else None
