"""Answering ICE connectivity checks (RFC 8445 §7.3, RFC 5389 §10.1), checked with aioice."""

from __future__ import annotations

import random

from aioice import stun

from bot.media.ice import IceCredentials, is_stun

PEER = ("192.0.2.7", 50002)


def check(username: str, pwd: str, *, integrity: bool = True) -> bytes:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = username
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = 0x1234
    if integrity:
        request.add_message_integrity(pwd.encode())
    request.add_fingerprint()
    return bytes(request)


def test_credentials_are_long_enough_ice_chars() -> None:
    ours = IceCredentials()
    assert len(ours.ufrag) >= 4 and len(ours.pwd) >= 22  # RFC 8445 §5.3
    assert ours != IceCredentials()


def test_a_binding_request_gets_an_authenticated_success() -> None:
    ours = IceCredentials()
    data = check(f"{ours.ufrag}:theirs", ours.pwd)
    assert is_stun(data)
    reply = ours.answer(data, PEER)
    assert reply is not None
    response = stun.parse_message(reply)  # raises if the FINGERPRINT is wrong
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == stun.parse_message(data).transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == PEER
    assert response.check_message_integrity(ours.pwd.encode())
    assert "FINGERPRINT" in response.attributes


def test_wrong_ufrag_or_password_gets_401_and_no_integrity_gets_400() -> None:
    ours = IceCredentials()
    for data in (check(f"other:{ours.ufrag}", ours.pwd), check(f"{ours.ufrag}:x", "wrong" * 5)):
        response = stun.parse_message(ours.answer(data, PEER) or b"")
        assert response.message_class == stun.Class.ERROR
        assert response.attributes["ERROR-CODE"][0] == 401
    bare = ours.answer(check(f"{ours.ufrag}:x", ours.pwd, integrity=False), PEER)
    assert stun.parse_message(bare or b"").attributes["ERROR-CODE"][0] == 400


def test_anything_but_a_binding_request_is_not_answered() -> None:
    ours = IceCredentials()
    indication = stun.Message(
        message_method=stun.Method.BINDING, message_class=stun.Class.INDICATION
    )
    assert ours.answer(bytes(indication), PEER) is None
    assert ours.answer(b"\x00\x01\x00\x00\x21\x12\xa4\x42" + bytes(11), PEER) is None
    assert not is_stun(b"\x80" + bytes(30))


def test_mangled_checks_never_raise() -> None:
    """Nothing a remote sends may raise: truncated or corrupted STUN (aioice raises
    struct.error on truncated attributes) is dropped."""
    ours = IceCredentials()
    base = check(f"{ours.ufrag}:x", ours.pwd)
    rng = random.Random(17)
    answered = 0
    for _ in range(20_000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        answered += ours.answer(bytes(data), PEER) is not None
    assert answered  # some survive as requests (answered 401/400) and are answered
