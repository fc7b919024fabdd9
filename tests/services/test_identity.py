"""The identity gate (bot.services.identity) on its own: one decision, per mode and per path."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.config import Config
from bot.sender import Sender
from bot.services.identity import Identified, IdentityGate, Refused, asserted_identity
from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer

PROXY = Peer("UDP", "192.0.2.1", 5060)
USER = Peer("UDP", "192.0.2.50", 40000)
ALICE = Sender("alice", "example.test")


@dataclass
class Incoming:
    request: Request
    peer: Peer
    sent: list[tuple[float, Response]] = field(default_factory=list)

    def respond_after(self, delay: float, response: Response) -> None:
        self.sent.append((delay, response))

    def respond_stateless(self, response: Response) -> None:
        self.sent.append((0.0, response))


def message(sender: str = "alice", *asserted: str) -> Request:
    headers = Headers.of(
        ("From", f"<sip:{sender}@example.test>;tag={new_tag()}"),
        ("To", "<sip:bot@example.test>"),
        ("Call-ID", new_tag()),
        ("CSeq", "1 MESSAGE"),
    )
    for value in asserted:
        headers.add("P-Asserted-Identity", value)
    return Request("MESSAGE", parse_uri("sip:bot@example.test"), headers, b"help")


def behind(proxies: list[str]) -> IdentityGate:
    return IdentityGate(
        Config(sip={"mode": "external", "trusted_proxies": proxies}, registrar={"server": None})
    )


def status(outcome: Identified | Refused) -> int:
    assert isinstance(outcome, Refused), outcome
    return outcome.response.status


def test_one_identity_gate_decides_every_request_path() -> None:
    """Embedded: the digest user, never From; behind proxies: only a proxy's
    P-Asserted-Identity; no proxies: the From; in a dialog: its identity on its own flow."""
    embedded = IdentityGate(Config())
    claim = Incoming(message("alice"), USER)
    assert status(embedded.identify(claim, 0.0)) == 401  # From alone proves nothing
    challenge = claim.request.copy()
    first = Incoming(challenge, USER)
    refused = embedded.identify(first, 0.0)
    assert isinstance(refused, Refused)
    retry = claim.request.copy()
    assert DigestClient("bob", "bob-demo").authorize(retry, refused.response)
    assert embedded.identify(Incoming(retry, USER), 1.0) == Identified(
        Sender("bob", "example.test")
    )

    gate = behind(["192.0.2.1"])
    assert (
        status(gate.identify(Incoming(message("alice", "<sip:alice@example.test>"), USER), 0))
        == 403
    )
    relayed = gate.identify(Incoming(message("alice", "<sip:bob@example.test>"), PROXY), 0.0)
    assert relayed == Identified(Sender("bob", "example.test"))

    open_gate = IdentityGate(Config(sip={"mode": "external"}, registrar={"server": None}))
    assert open_gate.identify(Incoming(message("carol"), USER), 0.0) == Identified(
        Sender("carol", "example.test")
    )

    # in a dialog: believed on its flow or from a proxy, identified afresh from elsewhere
    # (on its flow the dialog's own Identified comes back: made once, not per request)
    dialog = Identified(ALICE)
    inside = Incoming(message("mallory"), USER)
    assert embedded.in_dialog(inside, dialog, USER, 0.0) is dialog
    elsewhere = Incoming(message("alice"), Peer("UDP", "192.0.2.50", 40001))
    assert status(embedded.in_dialog(elsewhere, dialog, USER, 0.0)) == 401
    assert status(gate.in_dialog(elsewhere, dialog, USER, 0.0)) == 403
    assert gate.in_dialog(Incoming(message("x"), PROXY), dialog, USER, 0.0) is dialog
    assert status(open_gate.in_dialog(Incoming(message("bob"), PROXY), dialog, USER, 0.0)) == 403


@pytest.mark.parametrize(
    ("rows", "user"),
    [
        (['"Doe, John" <sip:john@example.test>'], "john"),
        (['"Doe, John" <sip:john@example.test>, <tel:+15551234>'], "john"),
        (["<tel:+15551234>", "sip:john@example.test"], "john"),
        (['"Doe, John" <sip:john@example.test>, <sip:eve@example.test>'], None),  # two sip
        (["<tel:+1>, <tel:+2>, <sip:john@example.test>"], None),  # two tel (RFC 3325 §9.1)
        (["<tel:+15551234>"], None),  # no SIP user to act for
        (['"Doe, John <sip:john@example.test>'], None),  # unterminated quote
        (["<mailto:john@example.test>"], None),
        ([], None),
    ],
)
def test_p_asserted_identity_lists_are_read_with_quotes(rows: list[str], user: str | None) -> None:
    uri = asserted_identity(rows)
    assert (uri.user if uri is not None else None) == user


def test_p_asserted_identity_fails_closed() -> None:
    """Item 3: a trusted proxy's request whose identity cannot be read is refused 403, never
    attributed to its From."""
    gate = behind(["192.0.2.1"])
    for rows in ([], ['"Doe, John <sip:john@example.test>'], ["<sip:a@x.test>, <sip:b@x.test>"]):
        refused = gate.identify(Incoming(message("alice", *rows), PROXY), 0.0)
        assert status(refused) == 403
    quoted = gate.identify(Incoming(message("alice", '"Doe, John" <sip:john@x.test>'), PROXY), 0)
    assert quoted == Identified(Sender("john", "x.test"))


def test_in_dialog_credentials_must_name_the_sessions_user() -> None:
    gate = IdentityGate(Config())
    elsewhere = Peer("UDP", "192.0.2.51", 40000)
    request = message("alice")
    dialog = Identified(ALICE)
    first = gate.in_dialog(Incoming(request, elsewhere), dialog, USER, 0.0)
    assert isinstance(first, Refused) and first.response.status == 401
    as_bob = request.copy()
    assert DigestClient("bob", "bob-demo").authorize(as_bob, first.response)
    assert status(gate.in_dialog(Incoming(as_bob, elsewhere), dialog, USER, 1.0)) == 403
    again = gate.in_dialog(Incoming(request, elsewhere), dialog, USER, 1.0)
    assert isinstance(again, Refused)
    as_alice = request.copy()
    assert DigestClient("alice", "alice-demo").authorize(as_alice, again.response)
    assert gate.in_dialog(Incoming(as_alice, elsewhere), dialog, USER, 1.0) == dialog


def test_no_credentials_or_another_realm_s_get_a_fresh_challenge_and_count_for_nothing() -> None:
    """RFC 3261 §22.1: a request without credentials for our realm - none at all, as every
    client's first, or another realm's only - is challenged at once (401, one challenge per
    algorithm, no hold), and is no failed attempt (bot.services.guard)."""
    gate = IdentityGate(Config(registrar={"digest_algorithms": ["SHA-256", "MD5"]}))
    bare = message("alice")
    foreign = message("alice")
    foreign.headers.add("Authorization", 'Digest username="alice", realm="elsewhere.test", '
                        'nonce="n", uri="sip:bot@example.test", response="00"')  # fmt: skip
    foreign.headers.add("Proxy-Authorization", 'Digest username="alice", realm="other.test", '
                        'nonce="n", uri="sip:bot@example.test", response="00"')  # fmt: skip
    for request in (bare, foreign):
        refused = gate.identify(Incoming(request, USER), 0.0)
        assert isinstance(refused, Refused) and refused.delay == 0.0
        assert refused.response.status == 401
        challenges = refused.response.headers.rows("www-authenticate")
        assert [value.split("algorithm=")[1].split(",")[0] for value in challenges] == [
            "SHA-256",
            "MD5",
        ]
        assert all('realm="example.test"' in value for value in challenges)
    assert not gate.guard.failures_total
