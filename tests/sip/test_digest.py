"""Digest authentication: published vectors, client and server together, replay refusal."""

from __future__ import annotations

import pytest

from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.digest import (
    Challenge,
    DigestClient,
    DigestServer,
    compute_response,
    parse_auth_params,
)


@pytest.mark.parametrize(
    ("algorithm", "realm", "password", "nonce", "cnonce", "expected"),
    [
        # RFC 2617 §3.5
        (
            "MD5",
            "testrealm@host.com",
            "Circle Of Life",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "0a4f113b",
            "6629fae49393a05397450978507c4ef1",
        ),
        # RFC 7616 §3.9.1, MD5 and SHA-256
        (
            "MD5",
            "http-auth@example.org",
            "Circle of Life",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "8ca523f5e9506fed4657c9700eebdbec",
        ),
        (
            "SHA-256",
            "http-auth@example.org",
            "Circle of Life",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ],
)
def test_published_vectors(
    algorithm: str, realm: str, password: str, nonce: str, cnonce: str, expected: str
) -> None:
    assert (
        compute_response(
            algorithm=algorithm,
            username="Mufasa",
            realm=realm,
            password=password,
            method="GET",
            uri="/dir/index.html",
            nonce=nonce,
            nc="00000001",
            cnonce=cnonce,
            qop="auth",
        )
        == expected
    )


def test_sha256_cross_checked_against_hashlib() -> None:
    import hashlib

    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = h("alice:example.test:pw")
    ha2 = h("REGISTER:sip:example.test")
    expected = h(f"{ha1}:n1:0000000a:c1:auth:{ha2}")
    assert (
        compute_response(
            algorithm="SHA-256",
            username="alice",
            realm="example.test",
            password="pw",
            method="REGISTER",
            uri="sip:example.test",
            nonce="n1",
            nc="0000000a",
            cnonce="c1",
            qop="auth",
        )
        == expected
    )
    sess_ha1 = h(f"{ha1}:n1:c1")
    assert compute_response(
        algorithm="SHA-256-sess",
        username="alice",
        realm="example.test",
        password="pw",
        method="REGISTER",
        uri="sip:example.test",
        nonce="n1",
        nc="0000000a",
        cnonce="c1",
        qop="auth",
    ) == h(f"{sess_ha1}:n1:0000000a:c1:auth:{ha2}")


def test_challenge_parsing_keeps_commas_inside_quotes() -> None:
    scheme, params = parse_auth_params(
        'Digest realm="a, b", nonce="x", qop="auth,auth-int", algorithm=SHA-256, stale=TRUE'
    )
    assert scheme == "Digest" and params["realm"] == "a, b"
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth,auth-int", stale=true')
    assert challenge.qop == ("auth", "auth-int") and challenge.stale
    assert Challenge.parse(challenge.header_value()) == challenge


def request(method: str = "REGISTER", body: bytes = b"") -> Request:
    return Request(
        method,
        parse_uri("sip:example.test"),
        Headers.of(
            ("From", "<sip:alice@example.test>;tag=1"),
            ("To", "<sip:alice@example.test>"),
            ("Call-ID", "c"),
            ("CSeq", f"1 {method}"),
        ),
        body,
    )


def challenge_response(server: DigestServer, now: float = 0.0, *, status: int = 401) -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return Response(
        status, headers=Headers.of(*[(header, v) for v in server.challenges(now, source=SRC)])
    )


PASSWORDS = {"alice": "wonderland"}
SRC = "192.0.2.5"


def test_client_and_server_agree_and_nc_is_8_hex_digits() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland", cnonce=lambda: "abc")
    first = request()
    assert client.authorize(first, challenge_response(server))
    value = first.headers.get("authorization") or ""
    assert "nc=00000001" in value and 'cnonce="abc"' in value and "qop=auth" in value
    assert server.verify(first, PASSWORDS.get, 1.0, source=SRC).ok


def test_replayed_credentials_are_refused_and_rising_nc_is_accepted() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    challenge = challenge_response(server)
    first = request()
    client.authorize(first, challenge)
    assert server.verify(first, PASSWORDS.get, 1.0, source=SRC).ok
    replay = server.verify(first, PASSWORDS.get, 2.0, source=SRC)
    assert not replay.ok and replay.reason == "nonce count replayed"
    second = request()
    second.headers.add(
        "Authorization",
        client.credentials(
            Challenge.parse(challenge.headers.get("www-authenticate") or ""), second
        ),
    )
    assert "nc=00000002" in (second.headers.get("authorization") or "")
    assert server.verify(second, PASSWORDS.get, 3.0, source=SRC).ok


def test_credentials_only_count_for_their_own_request_uri() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    original = request()
    client.authorize(original, challenge_response(server))
    moved = Request("REGISTER", parse_uri("sip:other.test"), original.headers.copy())
    verdict = server.verify(moved, PASSWORDS.get, 1.0, source=SRC)
    assert not verdict.ok and "Request-URI" in verdict.reason


def test_wrong_password_and_unknown_user_look_the_same() -> None:
    server = DigestServer("example.test")
    wrong = request()
    DigestClient("alice", "guess").authorize(wrong, challenge_response(server))
    unknown = request()
    DigestClient("mallory", "guess").authorize(unknown, challenge_response(server))
    assert server.verify(wrong, PASSWORDS.get, 1.0, source=SRC).reason == "wrong credentials"
    assert server.verify(unknown, PASSWORDS.get, 1.0, source=SRC).reason == "wrong credentials"


def test_expired_nonce_is_stale_and_forged_nonce_is_not_ours() -> None:
    server = DigestServer("example.test", nonce_lifetime=30)
    client = DigestClient("alice", "wonderland")
    old = request()
    client.authorize(old, challenge_response(server, now=0.0))
    verdict = server.verify(old, PASSWORDS.get, 31.0, source=SRC)
    assert verdict.stale and not verdict.ok
    other_server = DigestServer("example.test")
    forged = request()
    DigestClient("alice", "wonderland").authorize(forged, challenge_response(other_server))
    assert server.verify(forged, PASSWORDS.get, 1.0, source=SRC).reason == "nonce not ours"


def test_preauthorize_reuses_the_last_challenge_with_a_rising_count_and_stale_is_seen() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    assert not client.preauthorize(request())  # nothing to reuse yet
    first = request()
    assert client.authorize(first, challenge_response(server))
    assert server.verify(first, PASSWORDS.get, 1.0, source=SRC).ok
    again = request()
    assert client.preauthorize(again)
    assert "nc=00000002" in (again.headers.get("authorization") or "")
    assert server.verify(again, PASSWORDS.get, 2.0, source=SRC).ok
    assert not DigestClient.is_stale(challenge_response(server))
    stale = Response(
        401,
        headers=Headers.of(("WWW-Authenticate", server.challenges(0, source=SRC, stale=True)[0])),
    )
    assert DigestClient.is_stale(stale)


def test_auth_int_hashes_the_body() -> None:
    server = DigestServer("example.test", qop=("auth-int",))
    client = DigestClient("alice", "wonderland")
    message = request("MESSAGE", b"hello")
    client.authorize(message, challenge_response(server))
    assert "qop=auth-int" in (message.headers.get("authorization") or "")
    assert server.verify(message, PASSWORDS.get, 1.0, source=SRC).ok
    message.body = b"HELLO"
    message.headers.set(
        "Authorization",
        (message.headers.get("authorization") or "").replace("nc=00000001", "nc=00000002"),
    )
    assert not server.verify(message, PASSWORDS.get, 1.0, source=SRC).ok


def test_several_challenges_pick_the_strongest_per_realm_and_answer_every_realm() -> None:
    response = Response(
        407,
        headers=Headers.of(
            ("Proxy-Authenticate", 'Digest realm="a", nonce="1", algorithm=MD5, qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="a", nonce="2", algorithm=SHA-256, qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="b", nonce="3", qop="auth"'),
            ("Proxy-Authenticate", 'Digest realm="c", nonce="4", algorithm=UNKNOWN-HASH'),
            ("Proxy-Authenticate", 'Basic realm="d"'),
        ),
    )
    message = request()
    assert DigestClient("alice", "wonderland").authorize(message, response)
    rows = message.headers.rows("proxy-authorization")
    assert len(rows) == 2
    assert 'realm="a"' in rows[0] and "algorithm=SHA-256" in rows[0]
    assert 'realm="b"' in rows[1] and "algorithm=MD5" in rows[1]


def test_md5_sess_without_qop() -> None:
    response = Response(
        401,
        headers=Headers.of(("WWW-Authenticate", 'Digest realm="r", nonce="n", algorithm=MD5-sess')),
    )
    message = request()
    client = DigestClient("alice", "pw", cnonce=lambda: "cc")
    assert client.authorize(message, response)
    value = message.headers.get("authorization") or ""
    assert "nc=" not in value and 'cnonce="cc"' in value
    expected = compute_response(
        algorithm="MD5-sess",
        username="alice",
        realm="r",
        password="pw",
        method="REGISTER",
        uri="sip:example.test",
        nonce="n",
        cnonce="cc",
    )
    assert f'response="{expected}"' in value


def test_a_nonce_answered_from_another_address_is_not_ours() -> None:
    server = DigestServer("example.test")
    answered = request()
    DigestClient("alice", "guess").authorize(answered, challenge_response(server))
    verdict = server.verify(answered, PASSWORDS.get, 1.0, source="192.0.2.6")
    assert verdict.reason == "nonce not ours" and not verdict.wrong_answer
    assert server.verify(answered, PASSWORDS.get, 1.0, source=SRC).wrong_answer
