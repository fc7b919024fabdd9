"""DigestClient.retry: the sans-IO decision whether a challenged request is sent again
(RFC 3261 §22.2: one answer to a fresh challenge, once more only for stale=true)."""

from __future__ import annotations

from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.digest import DigestClient, DigestServer
from bot.sip.digest_client import MAX_CHAINS

PASSWORDS = {"alice": "wonderland"}
SRC = "192.0.2.5"


def register(seq: int = 1, call_id: str = "call-1") -> Request:
    return Request(
        "REGISTER",
        parse_uri("sip:example.test"),
        Headers.of(
            ("From", "<sip:alice@example.test>;tag=1"),
            ("To", "<sip:alice@example.test>"),
            ("Call-ID", call_id),
            ("CSeq", f"{seq} REGISTER"),
        ),
    )


def challenge(server: DigestServer, *, stale: bool = False, status: int = 401) -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    values = server.challenges(0.0, source=SRC, stale=stale)
    return Response(status, headers=Headers.of(*[(header, v) for v in values]))


def test_a_fresh_challenge_is_answered_once_with_the_cseq_raised() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    first = register()
    retry = client.retry(first, challenge(server))
    assert retry is not None
    assert retry.cseq.seq == 2 and retry.call_id == "call-1"
    assert "authorization" not in first.headers  # the original is left as it was
    assert server.verify(retry, PASSWORDS.get, 0.0, source=SRC).ok
    # RFC 3261 §22.2: challenged again, the credentials are wrong: give up
    assert client.retry(retry, challenge(server)) is None


def test_a_stale_nonce_earns_exactly_one_more_try() -> None:
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    retry = client.retry(register(), challenge(server))
    assert retry is not None
    again = client.retry(retry, challenge(server, stale=True))
    assert again is not None and again.cseq.seq == 3
    assert server.verify(again, PASSWORDS.get, 0.0, source=SRC).ok
    assert client.retry(again, challenge(server, stale=True)) is None


def test_a_preauthorized_request_refused_gets_its_answer() -> None:
    """Credentials reused before being asked are no answer yet: a challenge to them is
    answered (the server may simply have forgotten the old nonce)."""
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    assert client.retry(register(), challenge(server)) is not None
    later = register(seq=7, call_id="call-2")
    assert client.preauthorize(later)
    retry = client.retry(later, challenge(server))
    assert retry is not None and retry.cseq.seq == 8
    assert len(retry.headers.values("authorization")) == 1


def test_a_407_is_answered_in_proxy_authorization() -> None:
    server = DigestServer("proxy.test")
    retry = DigestClient("alice", "wonderland").retry(register(), challenge(server, status=407))
    assert retry is not None
    assert "proxy-authorization" in retry.headers and "authorization" not in retry.headers
    assert server.verify(retry, PASSWORDS.get, 0.0, source=SRC, proxy=True).ok


def test_no_retry_for_other_answers_or_unanswerable_challenges() -> None:
    client = DigestClient("alice", "wonderland")
    assert client.retry(register(), Response(200)) is None
    assert client.retry(register(), Response(403)) is None
    assert client.retry(register(), Response(401)) is None  # no challenge at all
    basic = Response(401, headers=Headers.of(("WWW-Authenticate", 'Basic realm="x"')))
    assert client.retry(register(), basic) is None
    unknown = Response(
        401, headers=Headers.of(("WWW-Authenticate", 'Digest realm="x", nonce="n", algorithm=X'))
    )
    assert client.retry(register(), unknown) is None


def test_the_latest_chains_are_remembered_the_oldest_forgotten() -> None:
    """What a client remembers per answered request is bounded (MAX_CHAINS): a flood of
    requests answered and never challenged again pushes the oldest out, not memory up."""
    server = DigestServer("example.test")
    client = DigestClient("alice", "wonderland")
    retries = [client.retry(register(call_id=f"c{n}"), challenge(server)) for n in range(1000)]
    assert all(r is not None for r in retries)
    newest, oldest = retries[-1], retries[0]
    assert newest is not None and oldest is not None
    assert client.retry(newest, challenge(server)) is None  # still known as an answer
    assert client.retry(oldest, challenge(server)) is not None  # forgotten: treated as fresh
    assert MAX_CHAINS < 1000
