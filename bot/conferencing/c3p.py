"""C3P (CCCP) conference provisioning with a Lync / Skype for Business focus factory
(MS-CONFPRO): the ``c3p`` conference backend.

Each request is a SIP SERVICE, out of dialog, to ``sip:<organizer>;gruu;opaque=app:conf:
focusfactory`` (deleteConference: to the conference's focus, MS-CONFBAS §2.2.3.14) with
``Content-Type: application/cccp+xml`` (MS-CONFPRO §2.2.2). Like pidgin-sipe, whose requests
real servers accept, it carries ``Supported: ms-sender``, a Contact and ``;epid=`` on From.
The bodies are bot.conferencing.c3p_wire's, the answers are read by bot.conferencing.c3p_read;
start and end times, which C3P does not carry, are kept by the bot (c3p_schedules).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Callable
from datetime import datetime
from xml.etree.ElementTree import Element

import structlog

from bot.conferencing.c3p_read import (
    REASONS,
    C3pError,
    conferences_in,
    mcu_types_in,
    parse_response,
)
from bot.conferencing.c3p_schedules import MemorySchedules, Schedule, Schedules
from bot.conferencing.c3p_wire import (
    CONTENT_TYPE,
    WANTED_MCUS,
    add_conference,
    build_request,
    delete_conference,
    focus_uri,
    get_available_mcu_types,
    get_conference,
    get_conferences,
)
from bot.conferencing.models import Conference, soonest_first
from bot.conferencing.services import EXPIRY_AFTER_END, ConferenceError, NewConference
from bot.sip.digest import DigestClient
from bot.sip.message import Response, make_response, new_request
from bot.sip.transaction import Peer
from bot.sip.uri import parse_uri
from bot.transport.endpoint import SipEndpoint

__all__ = ["CONTENT_TYPE", "C3pBackend", "build_request", "get_conferences"]
log = structlog.get_logger("bot.c3p")
GONE = "conferenceDoesNotExist"


class C3pBackend:
    """Conference services from a focus factory, asked as the organizer, to ``server``.
    Trusted (no ``credentials``): the SERVICE carries the organizer in From and
    P-Asserted-Identity, which the server believes because it trusts the bot's address (a
    trusted application over mutual TLS, as UCMA is to Lync / SfB). Registered: it answers
    the server's Digest challenges with the organizer's own credentials instead (standards
    servers such as Kamailio or Asterisk: Lync / SfB never take Digest, MS-SIPAE)."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        server: Peer,
        *,
        timeout: float = 5.0,
        credentials: Callable[[str], DigestClient | None] | None = None,
        schedules: Schedules | None = None,
    ):
        self.endpoint = endpoint
        self.server = server
        self.timeout = timeout
        self.credentials = credentials
        self.schedules: Schedules = schedules if schedules is not None else MemorySchedules()
        self.epid = secrets.token_hex(5)
        """This endpoint's id on From, as pidgin-sipe sends it (MS-CONFPRO §4.5 has one too)."""
        self._mcus: tuple[str, ...] | None = None

    async def summaries(self, organizer: str, now: datetime) -> list[Conference]:
        command = await self._ask(organizer, get_conferences(), "list your conferences")
        listed = await self._scheduled(organizer, conferences_in(command, organizer))
        return sorted((c for c in listed if c.expiry > now), key=soonest_first)

    async def details(self, organizer: str, conference_id: str) -> Conference | None:
        try:
            command = await self._ask(organizer, get_conference(conference_id), "find it")
        except _Failure as failure:
            if failure.reason == GONE:
                return None
            raise
        found = await self._scheduled(organizer, conferences_in(command, organizer))
        return found[0] if found else None

    async def schedule(self, organizer: str, new: NewConference) -> Conference:
        mcus = await self._mcu_types(organizer)
        conference_id = secrets.token_hex(16).upper()  # MS-CONFPRO §2.2.1.2: 8-32 alphanumerics
        command = await self._ask(
            organizer, add_conference(conference_id, new, mcus), "schedule it"
        )
        end = new.start + new.duration
        await self.schedules.keep_schedule(organizer, conference_id, new.start, end)
        # pidgin-sipe reads addConference/conference-info/@entity as the new focus URI
        entity = next(
            (e.get("entity") for e in command.iter() if e.tag.endswith("}conference-info")), None
        )
        return Conference(
            conference_id=conference_id,
            organizer=organizer,
            subject=new.subject,
            uri=entity or focus_uri(organizer, conference_id),
            access_level=new.access_level,
            start=new.start,
            end=end,
            expiry=end + EXPIRY_AFTER_END,
        )

    async def cancel(self, organizer: str, conference_id: str) -> bool:
        """deleteConference to the focus (MS-CONFBAS §2.2.3.14); a focus that is not there
        (404) or says conferenceDoesNotExist means the organizer has no such conference."""
        focus = focus_uri(organizer, conference_id)
        try:
            await self._ask(organizer, delete_conference(focus), "cancel it", to=focus)
        except _Failure as failure:
            if failure.reason == GONE:
                return False
            raise
        await self.schedules.forget_schedule(organizer, conference_id)
        return True

    async def _mcu_types(self, organizer: str) -> tuple[str, ...]:
        """The MCUs a new conference gets views for: those of WANTED_MCUS the server has
        (getAvailableMcuTypes, MS-CONFPRO §4.7; asked once)."""
        if self._mcus is None:
            command = await self._ask(organizer, get_available_mcu_types(), "schedule it")
            available = mcu_types_in(command)
            self._mcus = tuple(mcu for mcu in WANTED_MCUS if mcu in available)
        return self._mcus

    async def _scheduled(self, organizer: str, found: list[Conference]) -> list[Conference]:
        """``found`` with the start and end the bot keeps for them."""
        kept: dict[str, Schedule] = await self.schedules.schedules_of(organizer)
        return [
            dataclasses.replace(c, start=kept[c.conference_id][0], end=kept[c.conference_id][1])
            if c.conference_id in kept
            else c
            for c in found
        ]

    async def _ask(
        self, organizer: str, command: str, doing: str, to: str | None = None
    ) -> Element:
        """Send one C3P command as ``organizer`` (to the focus factory, or ``to``); the command
        element of a success. Raises ConferenceError (or _Failure, for the caller to judge)
        with words for a person."""
        target, body = build_request(organizer, command, to)
        request = new_request(
            "SERVICE",
            parse_uri(target),
            from_=f"<sip:{organizer}>;epid={self.epid}",
            to=f"<{target}>",
            contact=self.endpoint.contact(None, self.server.transport),
            content_type=CONTENT_TYPE,
            body=body,
            headers=(("Supported", "ms-sender"),),
        )
        credentials = self.credentials(organizer) if self.credentials else None
        if self.credentials is None:
            request.headers.add("P-Asserted-Identity", f"<sip:{organizer}>")
        sent = self.endpoint.request(request, destination=self.server, credentials=credentials)
        try:
            response = await asyncio.wait_for(sent, self.timeout)
        except TimeoutError:
            response = make_response(request, 408)
        if response.status == 404 and to is not None:
            raise _Failure(GONE, REASONS[GONE])  # no such focus
        if response.status != 200:
            diagnostics = response.headers.get("ms-diagnostics")
            log.warning(
                "c3p.refused", organizer=organizer, status=response.status, diagnostics=diagnostics
            )
            raise ConferenceError(_sip_failure(response, doing))
        try:
            answer = parse_response(response.body)
        except C3pError as exc:
            log.warning("c3p.unreadable", organizer=organizer, error=str(exc))
            raise ConferenceError(
                f"The conference server's answer made no sense, so I could not {doing}."
            ) from None
        if answer.code == "failure":
            reason = answer.reason or "otherFailure"
            log.info("c3p.failure", organizer=organizer, reason=reason)
            told = REASONS.get(reason, f"The conference server could not {doing} ({reason}).")
            raise _Failure(reason, told)
        if answer.command is None:
            raise ConferenceError(f"The conference server sent nothing back; I could not {doing}.")
        return answer.command


class _Failure(ConferenceError):
    """A C3P ``code="failure"``; ``reason`` as the server wrote it."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _sip_failure(response: Response, doing: str) -> str:
    if response.status == 408:
        return f"The conference server did not answer in time, so I could not {doing}."
    if response.status == 503:
        return f"The conference server cannot be reached right now, so I could not {doing}."
    diagnostics = response.headers.get("ms-diagnostics") or ""
    said = diagnostics.partition('reason="')[2].partition('"')[0].rstrip(".")
    detail = f": {said}" if said else f" ({response.status} {response.reason})"
    return f"The conference server refused{detail}. I could not {doing}."
