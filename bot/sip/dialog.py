"""Dialogs (RFC 3261 §12, §13; RFC 6665 §4 for SUBSCRIBE/NOTIFY).

A :class:`Dialog` holds the state of §12.1 and builds in-dialog requests (§12.2.1.1); a
:class:`DialogTable` finds the dialog of an incoming request and answers 481 for an unknown one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from bot.sip.errors import SipParseError
from bot.sip.headers import Address, Headers, Via
from bot.sip.message import Request, Response, make_response
from bot.sip.uri import SipUri, Uri

_MAX_FORWARDS = ("max-forwards", "Max-Forwards", "70")  # RFC 3261 §8.1.1.6
"""The Max-Forwards row of every in-dialog request (a Headers row: key, name, value)."""
# Methods whose requests and 2xx refresh the remote target (RFC 3261 §12.2; RFC 3311; RFC 6665)
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag) - RFC 3261 §12."""


@dataclass(slots=True, kw_only=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local: Address
    """Our URI (From of our requests), with our tag."""
    remote: Address
    """Their URI (To of our requests), with their tag."""
    remote_target: Uri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    secure: bool = False
    confirmed: bool = True
    """False while early (a 1xx with a tag, §12.1); True once a 2xx (or NOTIFY) arrived."""
    usage: str = "INVITE"
    """The method that created it: INVITE or SUBSCRIBE."""
    _written: tuple[Address, Address, tuple[str, str, str], tuple[str, str, str]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    """``local`` and ``remote`` and their From and To header rows; written again when either
    is replaced (Address is frozen: the same object always reads the same)."""
    id: DialogId = field(init=False, repr=False, compare=False)
    """(Call-ID, local tag, remote tag): fixed when the dialog is created (RFC 3261 §12),
    read for every request of it."""

    def __post_init__(self) -> None:
        self.id = (self.call_id, self.local_tag, self.remote_tag)

    # --- creation ----------------------------------------------------------------------------

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """Dialog from our INVITE/SUBSCRIBE and a 1xx/2xx with a To tag (RFC 3261 §12.1.2)."""
        remote_tag = response.to.tag
        local_tag = request.from_.tag
        if not remote_tag or not local_tag:
            raise SipParseError("a dialog needs tags on both sides", status=None)
        contacts = response.contacts
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local=request.from_,
            remote=response.to,
            remote_target=target,
            # §12.1.2: "the route set MUST be set to the list of URIs in the Record-Route
            # header field from the response, taken in reverse order"
            route_set=list(reversed(response.headers.values("record-route"))),
            local_seq=request.cseq.seq,
            secure=_secure(request),
            confirmed=200 <= response.status < 300,
            usage=request.method,
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """Dialog from a request we answer with a 2xx carrying ``local_tag`` (§12.1.1)."""
        remote_tag = request.from_.tag
        if not remote_tag:
            raise SipParseError("request without From tag cannot start a dialog")
        contacts = request.contacts
        if not contacts:
            raise SipParseError("request without Contact cannot start a dialog")
        to = request.to
        local = Address(
            uri=to.uri,
            display_name=to.display_name,
            params=(*[(k, v) for k, v in to.params if k != "tag"], ("tag", local_tag)),
        )
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local=local,
            remote=request.from_,
            remote_target=contacts[0].uri,
            route_set=list(request.headers.values("record-route")),
            local_seq=secrets.randbelow(2**31 - 1) + 1,
            remote_seq=request.cseq.seq,
            secure=_secure(request),
            usage=request.method,
        )

    @classmethod
    def from_notify(cls, subscribe: Request, notify: Request) -> Dialog:
        """A subscription dialog created by a NOTIFY that beat the 2xx (RFC 6665 §4.1.2.4)."""
        dialog = cls.as_uas(notify, subscribe.from_.tag or "")
        dialog.local = subscribe.from_
        dialog.local_seq = subscribe.cseq.seq
        dialog.usage = "SUBSCRIBE"
        return dialog

    # --- in-dialog requests --------------------------------------------------------------------

    def create_request(
        self,
        method: str,
        *,
        via: Via | None = None,
        contact: Address | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request (RFC 3261 §12.2.1.1). ACK and CANCEL pass the INVITE's ``cseq``;
        other methods take the next local sequence number. Without ``via`` the request has no
        Via yet: whoever sends it adds its own (RFC 3261 §8.1.1.7)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        written = self._written
        if written is None or written[0] is not self.local or written[1] is not self.remote:
            written = self._written = (
                self.local,
                self.remote,
                ("from", "From", str(self.local)),
                ("to", "To", str(self.remote)),
            )
        # built at once, in wire order, as Headers rows (key, name, value): one of these per
        # message the bot sends, each name's key (header_key) written here, not looked up
        rows = [] if via is None else [("via", "Via", str(via))]
        rows.append(_MAX_FORWARDS)
        if self.route_set:
            uri, routes = self._request_target()
            rows += [("route", "Route", route) for route in routes]
        else:
            uri = self.remote_target
        rows += (
            written[2],
            written[3],
            ("call-id", "Call-ID", self.call_id),
            ("cseq", "CSeq", f"{cseq} {method}"),
        )
        if contact is not None and method in TARGET_REFRESH:
            rows.append(("contact", "Contact", str(contact)))
        if content_type is not None:
            rows.append(("content-type", "Content-Type", content_type))
        return Request(method, uri, Headers(rows), body)

    def create_ack(self, invite_cseq: int, *, via: Via | None = None, body: bytes = b"") -> Request:
        """The ACK for a 2xx to an INVITE of this dialog (RFC 3261 §13.2.2.4)."""
        return self.create_request(
            "ACK",
            via=via,
            body=body,
            cseq=invite_cseq,
            content_type="application/sdp" if body else None,
        )

    def _request_target(self) -> tuple[Uri, list[str]]:
        """Request-URI and Route of a request with a route set (RFC 3261 §12.2.1.1); without
        one, the remote target and no Route."""
        first = Address.parse(self.route_set[0]).uri
        if isinstance(first, SipUri) and first.has_param("lr"):
            return self.remote_target, list(self.route_set)
        # §12.2.1.1 strict routing: the first route becomes the Request-URI and the remote
        # target goes to the end of the Route list
        return first, [*self.route_set[1:], f"<{self.remote_target}>"]

    # --- incoming ----------------------------------------------------------------------------

    def receive_request(self, request: Request) -> Response | None:
        """Check and absorb an in-dialog request (RFC 3261 §12.2.2); an error response when it
        must be refused (500 for an out-of-order CSeq)."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            # "If the remote sequence number was not empty, but the sequence number of the
            # request is lower than the remote sequence number, ... rejected with a 500"
            if self.remote_seq is not None and seq < self.remote_seq:
                return make_response(request, 500, "Server Internal Error (CSeq out of order)")
            self.remote_seq = seq
        if request.method in TARGET_REFRESH:
            contacts = request.contacts
            if contacts:
                self.remote_target = contacts[0].uri
        if request.method == "NOTIFY":
            self.confirmed = True
        return None

    def receive_response(self, request: Request, response: Response) -> None:
        """Absorb the response to one of our in-dialog requests (target refresh, §12.2.1.2)."""
        if 200 <= response.status < 300:
            self.confirmed = True
            if request.method in TARGET_REFRESH:
                contacts = response.contacts
                if contacts:
                    self.remote_target = contacts[0].uri


def _secure(request: Request) -> bool:
    # §12.1.1: secure when the request came over TLS and the Request-URI is a SIPS URI
    return isinstance(request.uri, SipUri) and request.uri.secure


class DialogTable:
    """Dialogs by id; matching of incoming requests and the 481 for unknown ones."""

    def __init__(self) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def add(self, dialog: Dialog) -> None:
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.id, None)

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def match_request(self, request: Request) -> Dialog | None:
        """The dialog an incoming request belongs to: our tag is in To, theirs in From."""
        local_tag = request.to.tag
        remote_tag = request.from_.tag
        if local_tag is None or remote_tag is None:
            return None
        return self._dialogs.get((request.call_id, local_tag, remote_tag))

    def route(self, request: Request) -> tuple[Dialog | None, Response | None]:
        """(dialog, None) for a request in a known dialog; (None, 481) for a request that names
        a dialog we do not have (RFC 3261 §12.2.2); (None, None) outside any dialog."""
        if request.to.tag is None:
            return None, None
        dialog = self.match_request(request)
        if dialog is None:
            if request.method == "ACK":
                return None, None  # an ACK is never answered (RFC 3261 §17.1.1.3)
            return None, make_response(request, 481)
        error = dialog.receive_request(request)
        return dialog, error
