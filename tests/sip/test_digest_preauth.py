"""Pre-authorization (RFC 7616 §3.4, RFC 2617 §3.2.2): the next request with the last nonce and a
higher nonce count passes without a challenge; replays, lower counts and other sources do not;
an expired nonce is stale; the next nonce is offered near expiry (RFC 7616 §3.5); the record of
counts stays bounded whatever is sent."""

from __future__ import annotations

from bot.config import Config
from bot.services.identity import Identified, IdentityGate, Refused
from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.challenge import Challenge, compute_response, parse_auth_params
from bot.sip.digest_server import NC_TRACKED, DigestServer, Verdict
from bot.sip.transaction import Peer
from tests.services.test_identity import Incoming

SRC = "192.0.2.5"
PASSWORD = "wonderland"
LIFETIME = 300.0


def nonce_for(server: DigestServer, now: float = 0.0, source: str = SRC) -> str:
    return Challenge.parse(server.challenges(now, source=source)[0]).nonce


def pager(nonce: str, nc: int, *, realm: str = "example.test", password: str = PASSWORD) -> Request:
    """alice's MESSAGE answering ``nonce`` with nonce count ``nc`` (as a client computes it)."""
    uri = "sip:bot@example.test"
    nc_text = f"{nc:08x}"
    response = compute_response(algorithm="MD5", username="alice", realm=realm, password=password,
                                method="MESSAGE", uri=uri, nonce=nonce, nc=nc_text,
                                cnonce="c0ffee", qop="auth")  # fmt: skip
    credentials = (
        f'Digest username="alice", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, qop=auth, nc={nc_text}, cnonce="c0ffee"'
    )
    headers = Headers.of(
        ("From", "<sip:alice@example.test>;tag=1"),
        ("To", "<sip:bot@example.test>"),
        ("Call-ID", f"c{nc}"),
        ("CSeq", f"{nc} MESSAGE"),
        ("Authorization", credentials),
    )
    return Request("MESSAGE", parse_uri(uri), headers, b"help")


def check(server: DigestServer, request: Request, now: float, source: str = SRC) -> Verdict:
    return server.verify(request, {"alice": PASSWORD}.get, now, source=source)


def test_rising_counts_pass_and_replayed_or_lower_counts_do_not() -> None:
    server = DigestServer("example.test", nonce_lifetime=LIFETIME)
    nonce = nonce_for(server)
    assert check(server, pager(nonce, 1), 1.0).ok  # the answer to the challenge
    assert check(server, pager(nonce, 2), 2.0).ok  # pre-authorized: no challenge round
    replay = check(server, pager(nonce, 2), 3.0)
    assert not replay.ok and replay.reason == "nonce count replayed"
    assert not replay.stale and not replay.wrong_answer  # a replay is nobody's guess
    lower = check(server, pager(nonce, 1), 4.0)
    assert not lower.ok and lower.reason == "nonce count replayed"
    assert check(server, pager(nonce, 7), 5.0).ok  # counts may skip, never go back
    assert not check(server, pager(nonce, 5), 6.0).ok
    assert server.verdicts == {"accepted": 1, "preauthorized": 2, "replayed": 3}


def test_a_nonce_from_another_source_is_refused_however_right_the_answer() -> None:
    server = DigestServer("example.test", nonce_lifetime=LIFETIME)
    nonce = nonce_for(server)
    assert check(server, pager(nonce, 1), 1.0).ok
    stolen = check(server, pager(nonce, 2), 2.0, source="192.0.2.99")
    assert not stolen.ok and stolen.reason == "nonce not ours" and not stolen.wrong_answer
    assert check(server, pager(nonce, 2), 3.0).ok  # the count was not used up by the thief


def test_an_expired_nonce_is_stale_and_the_next_nonce_comes_before_expiry() -> None:
    server = DigestServer("example.test", nonce_lifetime=LIFETIME)
    nonce = nonce_for(server, 0.0)
    early = check(server, pager(nonce, 1), LIFETIME * 0.5)
    assert early.ok and early.next_nonce is None and early.authentication_info is None
    late = check(server, pager(nonce, 2), LIFETIME * 0.8)  # less than a quarter left
    assert late.ok and late.next_nonce is not None and late.next_nonce != nonce
    assert late.authentication_info == f'nextnonce="{late.next_nonce}"'
    assert server.next_nonces == 1
    # the client moves to the next nonce, count 1 again: accepted, and long after the first
    # nonce expired, which is stale (the client retries unasked, RFC 7616 §3.3)
    assert check(server, pager(late.next_nonce, 1), LIFETIME * 1.5).ok
    expired = check(server, pager(nonce, 3), LIFETIME * 1.5)
    assert not expired.ok and expired.stale and not expired.wrong_answer
    # the next nonce is bound to the source too
    assert check(server, pager(late.next_nonce, 2), LIFETIME, source="192.0.2.99").reason == (
        "nonce not ours"
    )


def test_a_flood_of_nonces_stays_bounded_and_a_forgotten_count_is_never_replayable() -> None:
    """An authenticated client answering ever new nonces (or ever higher counts) cannot grow
    the record past NC_TRACKED; a nonce whose count was dropped to make room is stale from then
    on - its old requests cannot be replayed - and its client simply takes a new one."""
    server = DigestServer("example.test", nonce_lifetime=LIFETIME)
    first = nonce_for(server, 0.0)
    assert check(server, pager(first, 1), 0.0).ok
    for n in range(NC_TRACKED + 10):
        now = 1.0 + n * 1e-3  # all within one lifetime: only the cap can bound them
        assert check(server, pager(nonce_for(server, now), 1), now).ok
        assert server.tracked <= NC_TRACKED
    assert server.tracked >= NC_TRACKED // 2  # the cap trims, it does not forget everything
    replay = check(server, pager(first, 1), 30.0)  # its count was forgotten (least recent)
    assert not replay.ok and replay.stale
    assert not check(server, pager(first, 2), 30.0).ok  # stale for any count
    fresh = nonce_for(server, 31.0)  # the client's retry: a new nonce, accepted
    assert check(server, pager(fresh, 1), 31.0).ok

    one = nonce_for(server, 40.0)
    before = server.tracked
    for nc in range(1, 5000):  # ever higher counts of one nonce: one record
        assert check(server, pager(one, nc), 40.0).ok
    assert server.tracked == before + 1
    # a lifetime later, the next answer sweeps every expired count away
    assert check(server, pager(nonce_for(server, 400.0), 1), 400.0).ok
    assert server.tracked == 1


def test_the_identity_gate_passes_pre_authorized_requests_and_offers_the_next_nonce() -> None:
    """Through the gate the pager path uses: the 200 carries Authentication-Info near expiry;
    an expired nonce gets a ``stale=true`` challenge, without counting as a failure."""
    config = Config()
    gate = IdentityGate(config)
    peer = Peer("UDP", SRC, 40000)
    nonce = nonce_for(gate.digest)
    lifetime = gate.digest.nonce_lifetime

    def alice(nc: int, now: float) -> Identified | Refused:
        password = config.registrar.users["alice"].password
        request = pager(nonce, nc, realm=gate.digest.realm, password=password)
        return gate.identify(Incoming(request, peer), now)

    assert isinstance(alice(1, 1.0), Identified)
    assert isinstance(alice(2, 2.0), Identified)  # pre-authorized, nothing to add yet
    replayed = alice(2, 3.0)  # the same count again: a fresh challenge, not stale
    assert isinstance(replayed, Refused) and replayed.response.status == 401
    assert "stale" not in (replayed.response.headers.get("www-authenticate") or "")
    late = alice(3, lifetime * 0.9)
    assert isinstance(late, Identified) and late.auth_info is not None
    ok = late.answered(Response(200, headers=Headers.of(("CSeq", "2 MESSAGE"))))
    assert ok is not None and ok.headers.get("authentication-info") == late.auth_info
    assert late.answered(Response(403)) is not None  # only a 2xx carries it
    stale = alice(4, lifetime * 2)
    assert isinstance(stale, Refused) and stale.response.status == 401
    _, params = parse_auth_params(stale.response.headers.get("www-authenticate") or "")
    assert params.get("stale") == "true"
    assert not gate.guard.failures_total  # neither stale nor replay is a guess
