"""The embedded registrar (RFC 3261 §10.3) driven with real requests and digest answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Config
from bot.services.identity import Refused
from bot.services.registrar import Registrar
from bot.sip import Headers, Request, Response, parse_uri
from bot.sip.digest import DigestClient
from bot.sip.message import new_tag
from bot.sip.transaction import Peer

PEER = Peer("UDP", "127.0.0.1", 40000)


@dataclass
class Incoming:
    """What the registrar needs of the endpoint's ServerRequest."""

    request: Request
    peer: Peer = PEER
    late: list[tuple[float, Response]] = field(default_factory=list)

    def respond_after(self, delay: float, response: Response) -> None:
        self.late.append((delay, response))

    def respond_stateless(self, response: Response) -> None:
        self.late.append((0.0, response))


def answer(registrar: Registrar, request: Request, now: float, peer: Peer = PEER) -> Response:
    incoming = Incoming(request, peer)
    response = registrar.register(incoming, now)
    if response is None:
        assert len(incoming.late) == 1
        response = incoming.late[0][1]
    return response


def register(
    user: str,
    contact: str | None = "<sip:{user}@127.0.0.1:40000>",
    expires: str | None = "300",
    call_id: str = "reg-1",
    cseq: int = 1,
    to_user: str | None = None,
) -> Request:
    headers = Headers.of(
        ("From", f"<sip:{user}@example.test>;tag={new_tag()}"),
        ("To", f"<sip:{to_user or user}@example.test>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
    )
    if contact is not None:
        headers.add("Contact", contact.format(user=user))
    if expires is not None:
        headers.add("Expires", expires)
    return Request("REGISTER", parse_uri("sip:example.test"), headers)


def with_credentials(
    registrar: Registrar, request: Request, password: str, now: float = 0.0
) -> Response:
    challenge = answer(registrar, request, now)
    assert challenge.status == 401
    retry = request.copy()
    retry.headers.set("CSeq", f"{request.cseq.seq + 1} REGISTER")
    user = request.from_.sip_uri.user or ""
    assert DigestClient(user, password).authorize(retry, challenge)
    return answer(registrar, retry, now)


def test_register_lookup_and_expiry() -> None:
    registrar = Registrar(Config())
    response = with_credentials(registrar, register("alice"), "alice-demo", now=0.0)
    assert response.status == 200
    assert response.headers.values("contact") == ["<sip:alice@127.0.0.1:40000>;expires=300"]
    [binding] = registrar.lookup("alice", 10.0)
    assert binding.peer == PEER and binding.uri.port == 40000
    assert registrar.lookup("alice", 301.0) == []


def test_wrong_password_and_unknown_user_get_the_same_challenge() -> None:
    registrar = Registrar(Config())
    wrong = with_credentials(registrar, register("alice"), "guess")
    unknown = with_credentials(registrar, register("zed"), "guess")
    assert wrong.status == unknown.status == 401
    assert [k for k, _ in wrong.headers] == [k for k, _ in unknown.headers]


def test_only_your_own_address_of_record() -> None:
    registrar = Registrar(Config())
    response = with_credentials(registrar, register("alice", to_user="bob"), "alice-demo")
    assert response.status == 403


def test_interval_too_brief_and_cap() -> None:
    registrar = Registrar(Config())
    brief = with_credentials(registrar, register("alice", expires="10"), "alice-demo")
    assert brief.status == 423 and brief.headers.get("min-expires") == "60"
    long = with_credentials(
        registrar, register("alice", expires="999999", call_id="c2"), "alice-demo"
    )
    assert long.headers.values("contact") == ["<sip:alice@127.0.0.1:40000>;expires=3600"]


def test_unregister_one_and_all() -> None:
    registrar = Registrar(Config())
    with_credentials(registrar, register("alice"), "alice-demo")
    with_credentials(
        registrar, register("alice", contact="<sip:alice@127.0.0.1:40001>", cseq=3), "alice-demo"
    )
    assert len(registrar.lookup("alice", 1.0)) == 2
    gone = with_credentials(registrar, register("alice", expires="0", cseq=5), "alice-demo")
    assert gone.headers.values("contact") == ["<sip:alice@127.0.0.1:40001>;expires=300"]
    star = with_credentials(
        registrar, register("alice", contact="*", expires="0", cseq=7), "alice-demo"
    )
    assert star.status == 200 and registrar.lookup("alice", 1.0) == []
    bad_star = with_credentials(
        registrar, register("alice", contact="*", expires="60", cseq=9), "alice-demo"
    )
    assert bad_star.status == 400


def test_out_of_order_register_is_refused() -> None:
    registrar = Registrar(Config())
    with_credentials(registrar, register("alice", cseq=10), "alice-demo")
    old = with_credentials(registrar, register("alice", cseq=4), "alice-demo")
    assert old.status == 500


def test_other_domains_are_not_served() -> None:
    request = register("alice")
    request.uri = parse_uri("sip:elsewhere.test")
    assert answer(Registrar(Config()), request, 0.0).status == 404


# --- captured credentials (RFC 7616 §3.3, §3.4.6, §5.5) --------------------------------------


def authorized(registrar: Registrar, request: Request, now: float = 0.0) -> Request:
    """``request`` answered to a fresh challenge, as a client would send it."""
    challenge = answer(registrar, request, now)
    retry = request.copy()
    retry.headers.set("CSeq", f"{request.cseq.seq + 1} {request.method}")
    assert DigestClient("alice", "alice-demo").authorize(retry, challenge)
    return retry


def test_a_captured_authorization_replayed_as_it_is_is_refused() -> None:
    registrar = Registrar(Config())
    good = authorized(registrar, register("alice"))
    assert answer(registrar, good, 1.0).status == 200
    replay = good.copy()  # same nonce, same nonce count
    replay.headers.set("CSeq", "9 REGISTER")
    assert answer(registrar, replay, 2.0).status == 401


def test_credentials_count_only_for_their_own_request_uri_and_method() -> None:
    registrar = Registrar(Config())
    elsewhere = authorized(registrar, register("alice"))
    elsewhere.uri = parse_uri("sip:127.0.0.1")  # an alias the registrar serves, another URI
    assert answer(registrar, elsewhere, 1.0).status == 401
    good = authorized(registrar, register("alice", call_id="reg-2"))
    as_invite = Request("INVITE", good.uri, good.headers.copy())
    as_invite.headers.set("CSeq", "3 INVITE")
    refused = registrar.gate.identify(Incoming(as_invite), 1.0)
    assert isinstance(refused, Refused) and refused.response.status == 401


def test_an_expired_nonce_is_stale_and_the_clients_retry_succeeds() -> None:
    registrar = Registrar(Config(security={"auth": {"nonce_lifetime": 300}}))
    old = authorized(registrar, register("alice"), now=0.0)
    stale = answer(registrar, old, 301.0)
    assert stale.status == 401
    assert "stale=true" in (stale.headers.get("www-authenticate") or "").lower()
    client = DigestClient("alice", "alice-demo")
    assert client.is_stale(stale)
    retry = old.copy()
    retry.headers.set("CSeq", "5 REGISTER")
    assert client.authorize(retry, stale)
    assert answer(registrar, retry, 302.0).status == 200


def test_failed_answers_for_a_much_guessed_user_are_held_back_not_refused() -> None:
    registrar = Registrar(Config(security={"auth": {"user_max_failures": 3, "user_delay": 2}}))
    assert (
        answer(registrar, authorized(registrar, register("alice", call_id="a")), 0.5).status == 200
    )
    delays = []
    for n in range(4):
        peer = Peer("UDP", f"192.0.2.{n + 1}", 5060)  # from four addresses: no ban
        incoming = Incoming(authorized_with(registrar, "guess", peer), peer)
        now = registrar.register(incoming, 1.0)
        if now is None:  # answered later
            delay, response = incoming.late[0]
        else:
            delay, response = 0.0, now
        assert response.status == 401
        delays.append(delay)
    assert delays == [0.0, 0.0, 0.0, 2.0]  # paced from the third failure on
    # alice herself, answering right from where she registered before, is neither delayed
    # nor refused
    right = Incoming(authorized(registrar, register("alice", call_id="real")), PEER)
    response = registrar.register(right, 2.0)
    assert response is not None and response.status == 200 and not right.late


def authorized_with(registrar: Registrar, password: str, peer: Peer) -> Request:
    request = register("alice", call_id=new_tag())
    challenge = answer(registrar, request, 0.0, peer)
    retry = request.copy()
    retry.headers.set("CSeq", "2 REGISTER")
    assert DigestClient("alice", password).authorize(retry, challenge)
    return retry


# --- bounded bindings (issue 15 item 10) ----------------------------------------------------


def contacts(first: int, count: int) -> str:
    return ", ".join(f"<sip:alice@127.0.0.1:{port}>" for port in range(first, first + count))


def test_registrar_bindings_are_capped_and_only_sip_contacts_kept() -> None:
    registrar = Registrar(Config(registrar={"max_bindings": 3}))
    many = with_credentials(registrar, register("alice", contact=contacts(41000, 4)), "alice-demo")
    assert many.status == 403 and registrar.lookup("alice", 1.0) == []
    three = register("alice", contact=contacts(41000, 3), call_id="c1")
    assert with_credentials(registrar, three, "alice-demo").status == 200
    one_more = register("alice", contact=contacts(42000, 1), call_id="c2")
    assert with_credentials(registrar, one_more, "alice-demo").status == 403
    assert len(registrar.lookup("alice", 1.0)) == 3
    again = register("alice", contact=contacts(41000, 3), call_id="c1", cseq=5)  # a refresh
    assert with_credentials(registrar, again, "alice-demo").status == 200
    tel = register("alice", contact="<tel:+15551234>", call_id="c3")
    assert with_credentials(registrar, tel, "alice-demo").status == 400
    assert all(b.uri.scheme in ("sip", "sips") for b in registrar.lookup("alice", 1.0))


def test_non_ascii_digits_in_expires_are_not_numbers() -> None:
    registrar = Registrar(Config())
    response = with_credentials(registrar, register("alice", expires="²"), "alice-demo")
    assert response.status == 200  # unreadable Expires: the default applies, nothing raised
    [binding] = registrar.lookup("alice", 0.0)
    assert binding.expires_at == 600.0


def test_a_correct_guess_under_a_heavy_attack_is_answered_no_sooner() -> None:
    """Parallel guessing is not sped up by the right password: from a new address, its 200
    waits in the same per-user pace as the wrong answers (bot.services.guard)."""
    registrar = Registrar(Config(security={"auth": {"user_max_failures": 3, "user_delay": 2}}))
    for n in range(3):
        peer = Peer("UDP", f"192.0.2.{n + 1}", 5060)
        registrar.register(Incoming(authorized_with(registrar, "guess", peer), peer), 1.0)
    attacker = Peer("UDP", "192.0.2.99", 5060)
    right = Incoming(authorized_with(registrar, "alice-demo", attacker), attacker)
    assert registrar.register(right, 1.0) is None
    [(delay, response)] = right.late
    assert response.status == 200 and delay >= 2.0
