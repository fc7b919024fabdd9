"""The conference roster (RFC 4575) from published and constructed conference-info bodies
(tests/data/conference-info/README.md names their sources)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conferencing.roster import MAX_BODY, MAX_USERS, Roster, RosterError

DATA = Path(__file__).parent.parent / "data" / "conference-info"


def body(name: str) -> bytes:
    return (DATA / name).read_bytes()


def partial(version: int, users: str = "") -> bytes:
    return (
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" '
        f'entity="sips:conf233@example.com" state="partial" version="{version}">'
        f'<users state="partial">{users}</users></conference-info>'
    ).encode()


def test_rfc4575_basic_example_gives_users_endpoints_and_who_is_in() -> None:
    roster = Roster()
    change = roster.apply(body("rfc4575-6.1-full.xml"))
    assert change.full and change.version == 1 and not change.resync
    assert roster.entity == "sips:conf233@example.com"
    assert roster.subject == "Agenda: This month's goals"
    assert list(roster.users) == ["sip:bob@example.com", "sip:alice@example.com"]
    bob = roster.users["sip:bob@example.com"]
    assert bob.display_text == "Bob Hoskins" and not bob.connected
    laptop = bob.endpoints["sip:bob@pc33.example.com"]
    assert (laptop.status, laptop.media) == ("disconnected", ("audio",))
    alice = roster.users["sip:alice@example.com"]
    endpoint = alice.endpoints["sip:4kfk4j392jsu@example.com;grid=433kj4j3u"]
    assert endpoint.joining_method == "dialed-out" and alice.connected
    # only the connected user "joined"; Bob is listed but departed
    assert change.joined == ("sip:alice@example.com",)
    assert roster.conf_uris == {}  # service-uris are web pages, not MCUs


def test_partial_next_version_merges_by_entity_and_state() -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    change = roster.apply(body("rfc4575-partial-v2.xml"))
    assert (change.version, change.full, change.resync, change.stale) == (2, False, False, False)
    assert roster.version == 2
    assert change.joined == ("sip:bob@example.com", "sip:carol@example.com")
    assert change.left == ("sip:alice@example.com",)
    assert list(roster.users) == ["sip:bob@example.com", "sip:carol@example.com"]
    bob = roster.users["sip:bob@example.com"]
    # a partial endpoint keeps what it does not mention (display text, media)
    laptop = bob.endpoints["sip:bob@pc33.example.com"]
    assert laptop.display_text == "Bob's Laptop" and laptop.media == ("audio",)
    assert laptop.status == "connected" and laptop.joining_method == "dialed-in"
    assert bob.display_text == "Bob Hoskins"
    assert roster.users["sip:carol@example.com"].roles == ("participant",)
    assert roster.subject == "Agenda: This month's goals"  # description not sent: kept


def test_a_version_gap_asks_for_a_resubscription_and_changes_nothing() -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    change = roster.apply(body("rfc4575-partial-v4.xml"))
    assert change.resync and change.joined == ()
    assert roster.version == 1 and "sip:dave@example.com" not in roster.users


def test_a_partial_before_any_full_state_asks_for_a_resubscription() -> None:
    assert Roster().apply(body("rfc4575-partial-v2.xml")).resync


def test_an_old_or_repeated_version_is_dropped() -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    roster.apply(body("rfc4575-partial-v2.xml"))
    again = roster.apply(body("rfc4575-partial-v2.xml"))
    assert again.stale and not again.resync and again.joined == ()
    assert roster.version == 2


def test_a_full_state_after_a_resubscription_replaces_everything() -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    roster.apply(body("rfc4575-partial-v2.xml"))
    change = roster.apply(body("rfc4575-6.1-full.xml"))  # versions restart per subscription
    assert change.full and roster.version == 1
    assert list(roster.users) == ["sip:bob@example.com", "sip:alice@example.com"]
    assert change.joined == ("sip:alice@example.com",)
    assert set(change.left) == {"sip:bob@example.com", "sip:carol@example.com"}


def test_endpoint_and_user_deletion_in_partials() -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    change = roster.apply(
        partial(
            2,
            '<user entity="sip:alice@example.com" state="partial">'
            '<endpoint entity="sip:4kfk4j392jsu@example.com;grid=433kj4j3u" state="deleted"/>'
            "</user>",
        )
    )
    assert change.left == ("sip:alice@example.com",)
    assert roster.users["sip:alice@example.com"].endpoints == {}


def test_lync_conf_uris_roles_and_session_types() -> None:
    roster = Roster()
    change = roster.apply(body("lync-full-v1.xml"))
    assert roster.conf_uris == {
        "chat": "sip:alice@contoso.com;gruu;opaque=app:conf:chat:id:JL3GPNYP",
        "audio-video": "sip:alice@contoso.com;gruu;opaque=app:conf:audio-video:id:JL3GPNYP",
    }
    alice = roster.users["sip:alice@contoso.com"]
    assert alice.roles == ("presenter",)
    assert {e.session_type for e in alice.endpoints.values()} == {"focus", "audio-video"}
    assert roster.locked is False and roster.subject == "Weekly sync"
    assert change.joined == ("sip:alice@contoso.com",)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<conference-info", "not XML"),
        (b'<x xmlns="urn:ietf:params:xml:ns:conference-info" version="1"/>', "not a conference"),
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" state="full"/>',
            "version",
        ),
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="-1"/>',
            "version",
        ),
        (
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1" '
            b'state="sideways"/>',
            "state",
        ),
        (
            b'<!DOCTYPE x [<!ENTITY a "aaaa">]><conference-info '
            b'xmlns="urn:ietf:params:xml:ns:conference-info" version="1">&a;</conference-info>',
            "not XML",
        ),
        (b" " * (MAX_BODY + 1), "bytes"),
    ],
)
def test_bodies_that_are_refused_leave_the_roster_alone(data: bytes, why: str) -> None:
    roster = Roster()
    roster.apply(body("rfc4575-6.1-full.xml"))
    with pytest.raises(RosterError, match=why):
        roster.apply(data)
    assert roster.version == 1 and len(roster.users) == 2


def test_more_users_than_the_bound_is_refused() -> None:
    users = "".join(f'<user entity="{i}"/>' for i in range(MAX_USERS + 1))
    document = (
        '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1">'
        f"<users>{users}</users></conference-info>"
    ).encode()
    assert len(document) <= MAX_BODY
    roster = Roster()
    with pytest.raises(RosterError, match="users"):
        roster.apply(document)
    assert roster.users == {} and roster.version is None
